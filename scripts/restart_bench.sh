#!/usr/bin/env bash
# Restart cost with 1M events in the event log and a snapshot 10k events before the end.
#  1. In-process (ignored test restart_with_a_million_events): time from opening the feedback
#     service (log recovery included) to ready.
#  2. The real binary (`recserve serve`, demo bundle) started on that same log: time from spawn to
#     the first 200 from /healthz, and to the first 200 from /readyz (bundle loaded AND the log
#     replayed after the snapshot). Polled every 2 ms over fresh connections.
# Test profile (what CI builds; the release binary is faster).
# Usage: scripts/restart_bench.sh   (needs ~300 MB in $RECSERVE_RESTART_DIR or the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
dir="${RECSERVE_RESTART_DIR:-${TMPDIR:-/tmp}/recserve-restart-bench}"
trap 'rm -rf "$dir"' EXIT
RECSERVE_RESTART_DIR="$dir" RECSERVE_RESTART_KEEP=1 \
  cargo test --lib restart_with_a_million_events -- --ignored --nocapture 2>&1 \
  | grep -E "restart bench:|test result|panicked"
cargo build --bin recserve 2>&1 | grep -E "^error" || true
bin="${CARGO_TARGET_DIR:-target}/debug/recserve"
python3 - "$bin" "$dir" <<'EOF'
import os, socket, subprocess, sys, time
binary, log_dir = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()

def status(path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            return int(c.recv(64).split(b" ")[1])
    except (OSError, IndexError, ValueError):
        return None

env = dict(os.environ, RECSERVE_SERVER__ADDR=f"127.0.0.1:{port}",
           RECSERVE_FEEDBACK__LOG__DIR=log_dir, RUST_LOG="warn")
t0 = time.monotonic()
proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
healthz = ready = None
try:
    while time.monotonic() - t0 < 60 and proc.poll() is None:
        if healthz is None and status("/healthz") == 200:
            healthz = time.monotonic() - t0
        if healthz is not None and status("/readyz") == 200:
            ready = time.monotonic() - t0
            break
        time.sleep(0.002)
finally:
    proc.kill(); proc.wait()
fmt = lambda v: "never" if v is None else f"{v * 1000:.0f} ms"
print(f"binary restart on the 1M-event log: /healthz 200 after {fmt(healthz)}, "
      f"/readyz 200 after {fmt(ready)} (from spawn; demo bundle)")
sys.exit(0 if ready is not None else 1)
EOF
