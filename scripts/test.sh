#!/usr/bin/env bash
# The whole test suite: installs build prerequisites (scripts/setup.sh) and the Python tools the
# interop test uses (numpy + lightgbm from PyPI, in a private venv), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh --env)"
scripts/setup-python.sh >/dev/null
export RECSERVE_PYTHON="${RECSERVE_TOOLS:-$HOME/.cache/recserve/tools}/venv/bin/python"
cargo test --all-targets "$@"
