#!/usr/bin/env bash
# What sharing state through Redis costs, and what a second replica buys, on this machine:
#   1. one replica, state.backend = "embedded"            (the baseline)
#   2. one replica, state.backend = "redis" (Redis on the same machine): the history read's
#      p50/p99 cost per request is the difference to 1
#   3. two replicas (redis backend) behind nginx, against 2 through the same nginx with one
#      upstream, so the proxy's own cost is in both
# Each run is scripts/loadtest.sh (wrk, the usual request mix) against the server(s) started
# here. Run it on a quiet machine: everything shares the cores (the load generator too), so on
# 2 cores two replicas cannot beat one by much; with a core per replica (and the generator
# elsewhere) it would scale with the replicas, since nothing on the request path waits on a
# replica's neighbour (the history read is one Redis round trip, ~0.1-0.3 ms locally).
#   scripts/replicas_bench.sh [duration_s=10] [concurrencies="1 16 64"]
# Installs redis-server (scripts/setup-fleet.sh) and nginx-light (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONCS="${2:-1 16 64}"
OUT="${RECSERVE_BENCH_OUT:-out/replicas_bench}"
mkdir -p "$OUT"
scripts/setup-fleet.sh
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
eval "$(scripts/setup.sh --env)"
cargo build --release --bin recserve -q
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/recserve"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

REDIS_PORT=16379
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >"$OUT/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# Seeds every demo user's online history with 10 items so the Redis read returns real data.
python3 - models/demo "$TMP/seed.redis" <<'PY'
import random, sys
bundle, out = sys.argv[1], sys.argv[2]
users = open(f"{bundle}/user_ids.txt").read().split()
items = open(f"{bundle}/item_ids.txt").read().split()
rnd = random.Random(3)
with open(out, "w") as f:
    for u in users:
        args = " ".join(f"{1_780_000_000 + k} {rnd.choice(items)}" for k in range(10))
        f.write(f"ZADD bench:h:{u} {args}\nEXPIRE bench:h:{u} 86400\n")
PY
redis-cli -p "$REDIS_PORT" <"$TMP/seed.redis" >/dev/null

start() { # $1 = name, $2 = port, $3 = backend
  mkdir -p "$TMP/$1"
  RUST_LOG=warn RECSERVE_SERVER__ADDR="127.0.0.1:$2" RECSERVE_FEEDBACK__LOG__DIR="$TMP/$1" \
    RECSERVE_SERVER__BUNDLE=models/demo RECSERVE_STATE__BACKEND="$3" \
    RECSERVE_STATE__REDIS__URL="redis://127.0.0.1:$REDIS_PORT/0" RECSERVE_STATE__REDIS__KEY_PREFIX="bench:" \
    RECSERVE_STATE__REDIS__REPLICA_ID="$1" "$BIN" serve >"$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server $1 never became ready" >&2; exit 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
load() { # $1 = label, $2 = url, $3 = pid (or empty)
  echo "== $1"
  RECSERVE_URL="$2" RECSERVE_PID="${3:-}" RECSERVE_LOADTEST_OUT="$OUT/$1" scripts/loadtest.sh "$DURATION" "$CONCS" | tee "$OUT/$1.txt"
}
nginx_conf() { # $1 = file, then upstream ports
  local f=$1; shift
  { echo "daemon off; worker_processes 1; pid $TMP/nginx-$$.pid; error_log $TMP/nginx-error.log; events {}"
    echo "http { access_log off; upstream r { keepalive 64;"
    for p in "$@"; do echo "  server 127.0.0.1:$p;"; done
    echo "} server { listen 127.0.0.1:18090; location / { proxy_pass http://r; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
  } >"$f"
}

start embedded 18081 embedded; P=$LAST_PID
load 1-embedded http://127.0.0.1:18081 "$P"; stop "$P"
start redis-1 18082 redis; P=$LAST_PID
load 2-redis http://127.0.0.1:18082 "$P"
echo "history read (redis_command_duration_seconds, family=history) on the redis replica:"
curl -fs http://127.0.0.1:18082/metrics | grep 'recserve_redis_command_duration_seconds_\(sum\|count\){family="history"}' || true
start redis-2 18083 redis; P2=$LAST_PID
nginx_conf "$TMP/one.conf" 18082
nginx -c "$TMP/one.conf" -p "$TMP" & NG=$!; PIDS+=($NG); sleep 0.5
load 3-nginx-one-replica http://127.0.0.1:18090 ""
kill "$NG" 2>/dev/null || true; wait "$NG" 2>/dev/null || true
nginx_conf "$TMP/two.conf" 18082 18083
nginx -c "$TMP/two.conf" -p "$TMP" & NG=$!; PIDS+=($NG); sleep 0.5
load 4-nginx-two-replicas http://127.0.0.1:18090 ""
echo "results in $OUT/*.txt"
