#!/usr/bin/env bash
# Installs what building recserve needs on a fresh Debian machine, idempotently:
#   - libclang + clang's resource headers (Debian: libclang1-14, libclang-common-14-dev) for bindgen;
#   - CMake >= 3.28 (Debian bookworm ships 3.25): the `cmake` package from PyPI, in a private venv
#     under ~/.cache/recserve/tools (needs python3 + venv; installed from Debian when missing).
# Prints `export CMAKE=...` lines when sourced-by-eval: `eval "$(scripts/setup.sh --env)"`.
set -euo pipefail

TOOLS="${RECSERVE_TOOLS:-$HOME/.cache/recserve/tools}"
want_env=0
[ "${1:-}" = "--env" ] && want_env=1
log() { [ "$want_env" = 1 ] && echo "$*" >&2 || echo "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_install() {
  log "setup: apt-get install $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# 1. libclang with its headers (bindgen fails with "'stddef.h' file not found" without the headers)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/include/stddef.h >/dev/null 2>&1; then
  apt_install libclang1-14 libclang-common-14-dev
fi

# 2. a C++ toolchain (the Rust image normally has it)
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  apt_install g++ make
fi

# 3. CMake >= 3.28
cmake_ok() { # $1 = cmake binary
  local v; v=$("$1" --version 2>/dev/null | head -1 | sed -E 's/[^0-9]*([0-9]+)\.([0-9]+).*/\1 \2/') || return 1
  set -- $v; [ "${1:-0}" -gt 3 ] || { [ "${1:-0}" -eq 3 ] && [ "${2:-0}" -ge 28 ]; }
}
CMAKE_BIN=""
if command -v cmake >/dev/null 2>&1 && cmake_ok "$(command -v cmake)"; then
  CMAKE_BIN="$(command -v cmake)"
elif [ -x "$TOOLS/venv/bin/cmake" ] && cmake_ok "$TOOLS/venv/bin/cmake"; then
  CMAKE_BIN="$TOOLS/venv/bin/cmake"
else
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
  fi
  log "setup: installing cmake from PyPI into $TOOLS/venv"
  mkdir -p "$TOOLS"
  python3 -m venv "$TOOLS/venv" >&2
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check 'cmake>=3.28' >&2
  CMAKE_BIN="$TOOLS/venv/bin/cmake"
fi

if [ "$want_env" = 1 ]; then
  echo "export CMAKE='$CMAKE_BIN'"
  echo "export PATH='$(dirname "$CMAKE_BIN")':\"\$PATH\""
else
  log "setup: ok (cmake: $CMAKE_BIN)"
fi
