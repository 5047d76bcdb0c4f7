#!/usr/bin/env bash
# numpy + lightgbm (PyPI) in recserve's tools venv, so tests can check that bundles are readable
# by the tools users already have. Idempotent.
set -euo pipefail
TOOLS="${RECSERVE_TOOLS:-$HOME/.cache/recserve/tools}"
if [ ! -x "$TOOLS/venv/bin/python" ]; then
  "$(dirname "$0")/setup.sh" >/dev/null
fi
if ! "$TOOLS/venv/bin/python" -c 'import numpy, lightgbm' >/dev/null 2>&1; then
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check numpy lightgbm >&2
fi
echo "$TOOLS/venv/bin/python"
