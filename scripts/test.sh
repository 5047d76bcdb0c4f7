#!/usr/bin/env bash
# The whole test suite: installs build prerequisites (scripts/setup.sh), the Python tools the
# tests use (numpy, lightgbm, schemathesis, selenium from PyPI, in a private venv) and headless
# Chromium with its driver (Debian), redis-server and promtool (Debian, scripts/setup-fleet.sh),
# then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
scripts/setup-python.sh >/dev/null
scripts/setup-browser.sh
scripts/setup-fleet.sh
export RECSERVE_PYTHON="${RECSERVE_TOOLS:-$HOME/.cache/recserve/tools}/venv/bin/python"
cargo test --all-targets "$@"
