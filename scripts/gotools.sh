#!/usr/bin/env bash
# Go-built test tools, cached like the control plane: helm (for the chart tests), the kstatus helper
# (tests/e2e/kstatus: the real kstatus library that Flux and Helm use to judge health) and promtool (the
# alerts' and the dashboard's queries, checked and unit-tested by Prometheus's own parser and rule engine).
#   scripts/gotools.sh build      build them if missing; prints nothing else
#   scripts/gotools.sh bin-dir    where helm and kstatus are
#   scripts/gotools.sh promtool   the path of promtool
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Prometheus's Go module versions are v0.3XX.Y for Prometheus 3.XX.Y.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE_ROOT="${CAMS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cams-webhook-operator}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# The helper's sources, hashed by content only (not by path): every clone of the same sources shares the cache.
KSTATUS_SUM="$(cat "$REPO/tests/e2e/kstatus/go.mod" "$REPO/tests/e2e/kstatus/go.sum" "$REPO/tests/e2e/kstatus/main.go" | sha256sum | cut -c1-12)"
BIN_DIR="$CACHE_ROOT/gotools/helm-$HELM_VERSION-kstatus-$KSTATUS_SUM"
PROMTOOL_DIR="$CACHE_ROOT/gotools/promtool-$PROMETHEUS_VERSION-nosd"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

die() { echo "gotools: $*" >&2; exit 1; }

build() {
  command -v go >/dev/null || die "Go is not installed. Install Go >= 1.26 (https://go.dev/doc/install)."
  build_helm_kstatus
  build_promtool
}

build_promtool() {
  [[ -x "$PROMTOOL_DIR/promtool" ]] && return 0
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  echo "gotools: building promtool (Prometheus $PROMETHEUS_VERSION; cold: about 5 minutes on 2 cores)" >&2
  # Without the optional service discoveries (Prometheus's own build tag): the rule checks and tests need
  # none, and they are most of its dependencies (cloud SDKs).
  printf 'module local/promtool\ngo 1.26\n' > "$work/go.mod"
  echo 'package tools' > "$work/tools.go"
  mkdir -p "$PROMTOOL_DIR.tmp"
  (cd "$work" && go get "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >/dev/null 2>&1 \
    && go build -trimpath -ldflags=-s -tags remove_all_sd \
      -o "$PROMTOOL_DIR.tmp/promtool" github.com/prometheus/prometheus/cmd/promtool) \
    || die "could not build promtool $PROMETHEUS_VERSION from the Go module proxy"
  rm -rf "$PROMTOOL_DIR"; mv "$PROMTOOL_DIR.tmp" "$PROMTOOL_DIR"
}

build_helm_kstatus() {
  [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kstatus" ]] && return 0
  local work; work="$(mktemp -d)"
  # One-shot: a RETURN trap outlives the function and would fire again, on a `work` no longer set.
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  mkdir -p "$BIN_DIR.tmp"
  echo "gotools: building helm $HELM_VERSION and the kstatus helper (cold: a few minutes)" >&2
  printf 'module local/gotools\ngo 1.26\n' > "$work/go.mod"
  echo 'package tools' > "$work/tools.go"
  (cd "$work" && go get "helm.sh/helm/v3@$HELM_VERSION" >/dev/null 2>&1 \
    && go build -trimpath -ldflags=-s -o "$BIN_DIR.tmp/helm" helm.sh/helm/v3/cmd/helm) \
    || die "could not build helm $HELM_VERSION from the Go module proxy"
  (cd "$REPO/tests/e2e/kstatus" && go build -trimpath -ldflags=-s -o "$BIN_DIR.tmp/kstatus" .) \
    || die "could not build the kstatus helper"
  rm -rf "$BIN_DIR"; mv "$BIN_DIR.tmp" "$BIN_DIR"
}

case "${1:-}" in
  build) build ;;
  bin-dir) echo "$BIN_DIR" ;;
  promtool) echo "$PROMTOOL_DIR/promtool" ;;
  *) echo "usage: $0 build | bin-dir | promtool" >&2; exit 2 ;;
esac
