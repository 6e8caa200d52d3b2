#!/usr/bin/env bash
# Provides `ensure_helm`: makes helm v3 available for the chart checks (crates/cli/tests/it/
# deploy_manifests.rs), idempotently. A helm already on PATH or cached in
# $COFFEE_RT_CACHE/bin is used as it is; otherwise helm is built from the Go module proxy with
# `go install` (no container engine or package repository is needed, only Go).
# Sourced after scripts/services.sh (which sets COFFEE_RT_CACHE and defines step/die); it can
# also be sourced alone, or run directly: `scripts/tools/helm.sh` installs and prints the version.

COFFEE_RT_HELM_VERSION="${COFFEE_RT_HELM_VERSION:-v3.22.0}"
# The Kubernetes version helm assumes for `helm template`/`lint` (its Makefile sets it from the
# client-go it is built with: v0.37 for helm v3.22). A plain `go install` would leave helm's
# fallback, v1.20, and every chart asking for a newer cluster would fail to render.
COFFEE_RT_HELM_KUBE_MINOR="${COFFEE_RT_HELM_KUBE_MINOR:-37}"

if ! declare -F step >/dev/null; then
  step_started=${step_started:-$SECONDS}
  step() { printf '\033[1m==> %s (+%s s)\033[0m\n' "$*" "$((SECONDS - step_started))" >&2; }
fi
if ! declare -F die >/dev/null; then
  die() { printf '\033[1;31mcoffee-rt: %s\033[0m\n' "$*" >&2; exit 1; }
fi

ensure_helm() {
  local cache="${COFFEE_RT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffee-rt}"
  local bin="$cache/bin"
  case ":$PATH:" in *":$bin:"*) ;; *) PATH="$bin:$PATH" ;; esac
  export PATH
  # A helm of the machine's own is used as it is; the cached one must be the pinned version.
  if [ -x "$bin/helm" ] && [ "$("$bin/helm" version --template '{{.Version}}' 2>/dev/null)" = "$COFFEE_RT_HELM_VERSION" ]; then return 0; fi
  if [ ! -e "$bin/helm" ] && command -v helm >/dev/null; then return 0; fi
  command -v go >/dev/null || die "helm is missing and Go is not installed to build it (go install helm.sh/helm/v3/cmd/helm@$COFFEE_RT_HELM_VERSION)"
  mkdir -p "$bin"
  step "building helm $COFFEE_RT_HELM_VERSION with go install into $bin (several minutes, once)"
  local started=$SECONDS
  # The ldflags of helm's own Makefile: its version and the Kubernetes version it renders for.
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$COFFEE_RT_HELM_VERSION"
  local k
  for k in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags="$ldflags -X $k.k8sVersionMajor=1 -X $k.k8sVersionMinor=$COFFEE_RT_HELM_KUBE_MINOR"
  done
  GOBIN="$bin" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$COFFEE_RT_HELM_VERSION" \
    || die "go install helm.sh/helm/v3/cmd/helm@$COFFEE_RT_HELM_VERSION failed"
  [ -x "$bin/helm" ] || die "go install did not produce $bin/helm"
  step "helm $("$bin/helm" version --short) built in $((SECONDS - started)) s"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_helm
  helm version --short
fi
