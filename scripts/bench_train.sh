#!/usr/bin/env bash
# Training wall time on generated data (release build): 100k and 1M interactions by default.
#   scripts/bench_train.sh ["100000 1000000"]
# Prints one line per size with the phases from `recserve train` and /usr/bin/time's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-100000 1000000}"
eval "$(scripts/setup.sh --env)"
cargo build --release --bin recserve -q
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/recserve"
mkdir -p out/bench-train
for n in $SIZES; do
  users=$(( n / 20 )); items=$(( n / 40 ))
  [ "$items" -lt 1000 ] && items=1000
  data="out/bench-train/data-$n"
  [ -f "$data/interactions.csv" ] || "$BIN" generate --out "$data" --users "$users" --items "$items" --interactions "$n" --seed 1 >/dev/null
  echo "== $n interactions ($users users, $items items)"
  start=$(date +%s%N)
  /usr/bin/time -f "peak RSS %M KB" "$BIN" train --data "$data" --out "out/bench-train/bundle-$n" --quiet --seed 1 \
    2>&1 | grep -E '^\s+(read|features|factorization|candidate|ranker|write)|NDCG@10 ranker|peak RSS'
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  printf 'total wall time: %d.%01d s\n' $(( ms / 1000 )) $(( ms % 1000 / 100 ))
done
