#!/usr/bin/env bash
# Restart cost with 1M events in the event log and a snapshot 10k events before the end:
# time from opening the feedback service (log recovery included) to ready.
# Test profile (what CI builds; the release binary is faster). Usage: scripts/restart_bench.sh   (needs ~300 MB in $RECSERVE_RESTART_DIR or the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
cargo test --lib restart_with_a_million_events -- --ignored --nocapture 2>&1 \
  | grep -E "restart bench:|test result|panicked"
