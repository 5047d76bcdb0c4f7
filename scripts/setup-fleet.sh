#!/usr/bin/env bash
# What the multi-replica tests need, from Debian: `redis-server` (a real Redis the tests start
# on a random port; also redis-cli) and `prometheus` (its `promtool` checks deploy/'s alerting
# rules and scrape config). Idempotent: installs only what is missing. Uses sudo when not root.
set -euo pipefail
want=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || want+=(redis-server redis-tools)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
[ "${#want[@]}" = 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
echo "setup: apt-get install ${want[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
