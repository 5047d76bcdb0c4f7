#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian (`chromium`, `chromium-driver`) for the demo
# page's browser test. Idempotent: installs only when /usr/bin/chromium or /usr/bin/chromedriver is
# missing. Uses sudo when not root.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
echo "setup: apt-get install chromium chromium-driver" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
