#!/usr/bin/env bash
# Makes `prometheus` and `promtool` available for the Prometheus bundle's test
# (crates/cli/tests/it/prometheus_bundle.rs), idempotently: if both are on PATH they are used as
# they are; otherwise Debian's `prometheus` package is installed (Debian 12: Prometheus 2.42).
# The package would start a Prometheus service on :9090; this leaves none running, because the
# test starts its own, with its own configuration, storage and port.
#
# Sourced by scripts/test after scripts/services.sh (then its apt_install and step are used), or
# run on its own: scripts/tools/prometheus.sh
set -euo pipefail

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

# Stops the service the package may have started (systemd or SysV init) and keeps it from
# starting at boot. Only the package's own service is touched, through its own init system.
prometheus_service_off() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/prometheus ]; then
    as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
}

ensure_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then return 0; fi
  step "installing Prometheus (Debian's prometheus package; no service is left running)"
  # policy-rc.d answering 101 tells invoke-rc.d and deb-systemd-invoke not to start services
  # during the installation; one the machine already has (as Docker images do) is kept.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    ours=1
  fi
  local rc=0
  # --no-install-recommends: not prometheus-node-exporter, which is another service.
  apt_install --no-install-recommends prometheus || rc=$?
  if [ "$ours" = 1 ]; then as_root rm -f "$policy"; fi
  [ "$rc" = 0 ] || { printf 'coffee-rt: apt-get install prometheus failed\n' >&2; return "$rc"; }
  prometheus_service_off
  command -v prometheus >/dev/null && command -v promtool >/dev/null \
    || { printf 'coffee-rt: the prometheus package did not provide prometheus and promtool\n' >&2; return 1; }
  step "Prometheus: $(prometheus --version 2>&1 | head -1)"
}

# Run directly rather than sourced: ensure it now.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_prometheus
fi
