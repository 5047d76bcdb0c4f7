#!/usr/bin/env bash
# Load test: starts the release server on the demo bundle (unless RECSERVE_URL points at one),
# drives it with wrk at several concurrencies with a realistic request mix (known users with and
# without session items, unknown users, anonymous sessions), checks that responses are "ranked",
# and prints requests/s, latency percentiles and the server's CPU time per response (from
# /proc/<pid>/stat: user + system time of the whole process ÷ responses; needs the server's pid,
# known when this script starts it, or RECSERVE_PID). Installs wrk from Debian when missing.
#   scripts/loadtest.sh [duration_s=10] [concurrencies="1 4 16 64"]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONCS="${2:-1 4 16 64}"
OUT="${RECSERVE_LOADTEST_OUT:-out/loadtest}"
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

PID=""
if [ -z "${RECSERVE_URL:-}" ]; then
  eval "$(scripts/setup.sh --env)"
  cargo build --release --bin recserve -q
  BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/recserve"
  PORT="${RECSERVE_PORT:-18080}"
  EVENTS="$(mktemp -d)"
  RUST_LOG=warn RECSERVE_SERVER__ADDR="127.0.0.1:$PORT" RECSERVE_FEEDBACK__LOG__DIR="$EVENTS" \
    RECSERVE_SERVER__BUNDLE="${RECSERVE_BUNDLE:-models/demo}" "$BIN" serve >"$OUT/server.log" 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null || true' EXIT
  RECSERVE_URL="http://127.0.0.1:$PORT"
  for _ in $(seq 1 600); do curl -fs "$RECSERVE_URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
fi
BUNDLE="${RECSERVE_BUNDLE:-models/demo}"

# Request mix: 70% known users, 10% known users with a session, 10% unknown users, 10% anonymous sessions.
python3 - "$BUNDLE" "$OUT/paths.txt" <<'PY'
import random, sys
bundle, out = sys.argv[1], sys.argv[2]
users = open(f"{bundle}/user_ids.txt").read().split()
items = open(f"{bundle}/item_ids.txt").read().split()
rnd = random.Random(7)
with open(out, "w") as f:
    for _ in range(5000):
        r = rnd.random()
        if r < 0.7:
            p = f"/recommendations?user_id={rnd.choice(users)}&n=20"
        elif r < 0.8:
            p = f"/recommendations?user_id={rnd.choice(users)}&n=20&recent={','.join(rnd.sample(items, 3))}"
        elif r < 0.9:
            p = f"/recommendations?user_id=new-user-{rnd.randrange(10**6)}&n=20"
        else:
            p = f"/recommendations?recent={','.join(rnd.sample(items, 2))}&n=20"
        f.write(p + "\n")
PY

cat > "$OUT/mix.lua" <<LUA
local paths = {}
for line in io.lines("$OUT/paths.txt") do paths[#paths + 1] = line end
local i = 0
local bad = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"strategy":"ranked"', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

SERVER_PID="${RECSERVE_PID:-$PID}"
TICKS=$(getconf CLK_TCK)
# The server process's user + system CPU time in clock ticks (fields 14 and 15 of /proc/pid/stat).
cpu_ticks() { [ -n "$SERVER_PID" ] && awk '{print $14 + $15}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo ""; }
echo "concurrency,rps,p50_ms,p90_ms,p99_ms,errors,cpu_us_per_response" > "$OUT/results.csv"
for c in $CONCS; do
  threads=$(( c < 2 ? 1 : 2 ))
  cpu0=$(cpu_ticks)
  line=$(wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency -s "$OUT/mix.lua" "$RECSERVE_URL" | grep '^RESULT')
  rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line"); p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")
  p90=$(sed -E 's/.*p90_ms=([0-9.]+).*/\1/' <<<"$line"); p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
  err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
  reqs=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  cpu1=$(cpu_ticks)
  cpu="n/a"
  if [ -n "$cpu0" ] && [ -n "$cpu1" ] && [ "$reqs" -gt 0 ]; then
    cpu=$(( (cpu1 - cpu0) * 1000000 / TICKS / reqs ))
  fi
  echo "$c,$rps,$p50,$p90,$p99,$err,$cpu" >> "$OUT/results.csv"
  printf 'c=%-4s %8s req/s  p50 %7s ms  p90 %7s ms  p99 %7s ms  errors %s  server CPU %s µs/response\n' "$c" "$rps" "$p50" "$p90" "$p99" "$err" "$cpu"
done
# Check the strategy of a sample of responses (wrk's per-thread Lua state cannot report it reliably).
nonranked=0
for p in $(head -200 "$OUT/paths.txt"); do
  curl -fs "$RECSERVE_URL$p" | grep -q '"strategy":"ranked"' || nonranked=$((nonranked+1))
done
echo "responses not \"ranked\" in a 200-request sample after the run: $nonranked"
curl -fs "$RECSERVE_URL/metrics" > "$OUT/metrics.txt" || true
# Every response's strategy, from the server's own counters (all requests of the run).
python3 - "$OUT/metrics.txt" <<'PY'
import re, sys
counts = {}
for line in open(sys.argv[1]):
    m = re.match(r'recserve_http_requests_total\{([^}]*)\} (\S+)', line)
    if m and 'route="/recommendations"' in m.group(1) and 'status="2xx"' in m.group(1):
        strategy = re.search(r'strategy="([^"]*)"', m.group(1)).group(1)
        counts[strategy] = counts.get(strategy, 0) + float(m.group(2))
total = sum(counts.values())
print("responses by strategy over the whole run:", {k: int(v) for k, v in sorted(counts.items())},
      f"(ranked share {counts.get('ranked', 0) / total:.4f})" if total else "")
PY
echo "results: $OUT/results.csv"
