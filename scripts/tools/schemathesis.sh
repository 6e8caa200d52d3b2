#!/usr/bin/env bash
# Makes schemathesis (PyPI) available for the API fuzz test (crates/cli/tests/it/openapi.rs),
# idempotently: a venv under the cache dir with one pinned version, reused when it already has
# that version (a second run takes well under a second). Exports COFFEE_RT_SCHEMATHESIS, the
# path of its `schemathesis` command, which the test reads (falling back to the same path).
#
# Sourced by scripts/test after scripts/services.sh (then its apt_install and step are used), or
# run on its own: scripts/tools/schemathesis.sh
set -euo pipefail

# The version the test's output parsing and check names were written against.
SCHEMATHESIS_VERSION=4.32.5

if ! declare -F step >/dev/null; then
  step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fi
if ! declare -F as_root >/dev/null; then
  as_root() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }
fi
if ! declare -F apt_install >/dev/null; then
  apt_updated=0
  apt_install() {
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  }
fi

ensure_schemathesis() {
  local cache="${COFFEE_RT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffee-rt}"
  local venv="$cache/schemathesis-$SCHEMATHESIS_VERSION"
  export COFFEE_RT_SCHEMATHESIS="$venv/bin/schemathesis"
  # The marker is written last, so a venv left half-built by an interrupted run is rebuilt.
  if [ -x "$COFFEE_RT_SCHEMATHESIS" ] && [ -e "$venv/.installed" ]; then return 0; fi
  step "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $venv"
  command -v python3 >/dev/null || apt_install python3
  # Debian splits venv (and ensurepip) out of python3.
  if command -v dpkg >/dev/null && ! dpkg -s python3-venv >/dev/null 2>&1; then apt_install python3-venv; fi
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  "$COFFEE_RT_SCHEMATHESIS" --version >/dev/null
  touch "$venv/.installed"
  step "schemathesis: $("$COFFEE_RT_SCHEMATHESIS" --version 2>&1 | head -1)"
}

# Run directly rather than sourced: ensure it now.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_schemathesis
fi
