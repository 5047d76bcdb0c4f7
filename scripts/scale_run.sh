#!/usr/bin/env bash
# Scale run: generate a large catalogue, train it (HNSW graphs stored in the bundle), serve it and
# measure start-up to ready, resident memory, and latency/throughput at 8 connections.
#   scripts/scale_run.sh [items=1000000] [users=items] [interactions=10*items]
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS="${1:-1000000}"; USERS="${2:-$ITEMS}"; N="${3:-$(( ITEMS * 10 ))}"
OUT="out/scale-$ITEMS"
mkdir -p "$OUT"
eval "$(scripts/setup.sh --env)"
cargo build --release --bin recserve -q
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/recserve"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

[ -f "$OUT/data/interactions.csv" ] || /usr/bin/time -f "generate: %e s, peak RSS %M KB" \
  "$BIN" generate --out "$OUT/data" --users "$USERS" --items "$ITEMS" --interactions "$N" --seed 3 >/dev/null
if [ ! -f "$OUT/bundle/manifest.json" ]; then
  # Validation of the factorisation scores every item for each sampled user: keep the sample small.
  RECSERVE_TRAIN__FACTORIZATION__EVAL_MAX_USERS=300 RECSERVE_TRAIN__FACTORIZATION__MAX_EPOCHS="${SCALE_MAX_EPOCHS:-30}" /usr/bin/time -f "train: %e s, peak RSS %M KB" \
    "$BIN" train --data "$OUT/data" --out "$OUT/bundle" --quiet --seed 3 | tee "$OUT/train.txt"
fi
du -sh "$OUT/bundle" "$OUT/bundle/index" 2>/dev/null || true

PORT=18090
EVENTS="$(mktemp -d)"
start=$(date +%s%N)
RUST_LOG=warn RECSERVE_SERVER__ADDR="127.0.0.1:$PORT" RECSERVE_SERVER__BUNDLE="$OUT/bundle" \
  RECSERVE_FEEDBACK__LOG__DIR="$EVENTS" "$BIN" serve >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do sleep 0.1; done
end=$(date +%s%N)
echo "start-up to ready: $(( (end - start) / 1000000 )) ms"
curl -fs "http://127.0.0.1:$PORT/readyz"; echo
RECSERVE_URL="http://127.0.0.1:$PORT" RECSERVE_BUNDLE="$OUT/bundle" RECSERVE_LOADTEST_OUT="$OUT/loadtest" \
  scripts/loadtest.sh 10 "8"
grep -E 'VmRSS|VmHWM' "/proc/$PID/status"
