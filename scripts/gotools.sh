#!/usr/bin/env bash
# Go-built test tools, cached like the control plane: helm (for the chart tests) and the kstatus helper
# (tests/e2e/kstatus: the real kstatus library that Flux and Helm use to judge health).
#   scripts/gotools.sh build      build both if missing; prints nothing else
#   scripts/gotools.sh bin-dir    where they are
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE_ROOT="${CAMS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cams-webhook-operator}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# The helper's sources, hashed by content only (not by path): every clone of the same sources shares the cache.
KSTATUS_SUM="$(cat "$REPO/tests/e2e/kstatus/go.mod" "$REPO/tests/e2e/kstatus/go.sum" "$REPO/tests/e2e/kstatus/main.go" | sha256sum | cut -c1-12)"
BIN_DIR="$CACHE_ROOT/gotools/helm-$HELM_VERSION-kstatus-$KSTATUS_SUM"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

die() { echo "gotools: $*" >&2; exit 1; }

build() {
  [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kstatus" ]] && return 0
  command -v go >/dev/null || die "Go is not installed. Install Go >= 1.26 (https://go.dev/doc/install)."
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
  *) echo "usage: $0 build | bin-dir" >&2; exit 2 ;;
esac
