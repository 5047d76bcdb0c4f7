#!/usr/bin/env bash
# Sets up what building needs (scripts/setup.sh), builds the release binary and serves the bundled
# demo model on 127.0.0.1:8080 (override with RECSERVE_SERVER__ADDR or --addr). Extra arguments go
# to `recserve serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
exec cargo run --release --bin recserve -- serve "$@"
