#!/usr/bin/env bash
# Simulated power loss under the feedback service, many seeds (default 5,000): the same
# test CI runs with 200 (src/feedback/crash_sim_tests.rs). Prints the totals line.
# Usage: scripts/crash_sim.sh [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
seeds="${1:-5000}"
start=$(date +%s)
RECSERVE_CRASH_SEEDS="$seeds" cargo test --lib crash_sim_tests -- --nocapture 2>&1 \
  | grep -E "crash sim:|test result|panicked|seed [0-9]+"
echo "wall: $(( $(date +%s) - start )) s"
