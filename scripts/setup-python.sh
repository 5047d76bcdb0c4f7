#!/usr/bin/env bash
# numpy + lightgbm (PyPI) in recserve's tools venv, so tests can check that bundles are readable
# by the tools users already have; schemathesis (fuzzes the real binary against its OpenAPI
# document) and selenium (drives headless Chromium through the demo page). Idempotent.
set -euo pipefail
TOOLS="${RECSERVE_TOOLS:-$HOME/.cache/recserve/tools}"
if [ ! -x "$TOOLS/venv/bin/python" ]; then
  "$(dirname "$0")/setup.sh" >/dev/null
fi
if ! "$TOOLS/venv/bin/python" -c 'import numpy, lightgbm, schemathesis, selenium' >/dev/null 2>&1; then
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check numpy lightgbm 'schemathesis>=4.3,<5' 'selenium>=4.20' >&2
fi
echo "$TOOLS/venv/bin/python"
