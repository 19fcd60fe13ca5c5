#!/usr/bin/env bash
# Go-built test tools, cached like the control plane: helm (for the chart tests), the kstatus helper
# (tests/e2e/kstatus: the real kstatus library that Flux and Helm use to judge health) and promtool (the
# alerts' and the dashboard's queries, checked and unit-tested by Prometheus's own parser and rule engine).
#   scripts/gotools.sh build      build them if missing; prints nothing else
#   scripts/gotools.sh bin-dir    where helm and kstatus are
#   scripts/gotools.sh promtool   the path of promtool
#   scripts/gotools.sh actionlint the path of actionlint (the forge's workflows, .github/workflows, linted)
#   scripts/gotools.sh sops-dir   where sops and age-keygen are (docs/gitops.md's encryption, pasted by a test)
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Prometheus's Go module versions are v0.3XX.Y for Prometheus 3.XX.Y.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
SOPS_VERSION="${SOPS_VERSION:-v3.13.3}"
AGE_VERSION="${AGE_VERSION:-v1.3.2}"
CACHE_ROOT="${CAMS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cams-webhook-operator}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# The helper's sources, hashed by content only (not by path): every clone of the same sources shares the cache.
KSTATUS_SUM="$(cat "$REPO/tests/e2e/kstatus/go.mod" "$REPO/tests/e2e/kstatus/go.sum" "$REPO/tests/e2e/kstatus/main.go" | sha256sum | cut -c1-12)"
BIN_DIR="$CACHE_ROOT/gotools/helm-$HELM_VERSION-kstatus-$KSTATUS_SUM"
PROMTOOL_DIR="$CACHE_ROOT/gotools/promtool-$PROMETHEUS_VERSION-nosd"
ACTIONLINT_DIR="$CACHE_ROOT/gotools/actionlint-$ACTIONLINT_VERSION"
SOPS_DIR="$CACHE_ROOT/gotools/sops-$SOPS_VERSION-age-$AGE_VERSION"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

die() { echo "gotools: $*" >&2; exit 1; }

build() {
  command -v go >/dev/null || die "Go is not installed. Install Go >= 1.26 (https://go.dev/doc/install)."
  build_helm_kstatus
  build_promtool
  build_actionlint
  build_sops
}

# `go install module@version` builds each with its own go.mod and go.sum, as its authors release it.
build_sops() {
  [[ -x "$SOPS_DIR/sops" && -x "$SOPS_DIR/age-keygen" ]] && return 0
  echo "gotools: building sops $SOPS_VERSION and age-keygen $AGE_VERSION (cold: a few minutes)" >&2
  mkdir -p "$SOPS_DIR.tmp"
  GOBIN="$SOPS_DIR.tmp" go install -trimpath -ldflags=-s "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION" \
    || die "could not build sops $SOPS_VERSION from the Go module proxy"
  GOBIN="$SOPS_DIR.tmp" go install -trimpath -ldflags=-s "filippo.io/age/cmd/age-keygen@$AGE_VERSION" \
    || die "could not build age-keygen $AGE_VERSION from the Go module proxy"
  rm -rf "$SOPS_DIR"; mv "$SOPS_DIR.tmp" "$SOPS_DIR"
}

build_actionlint() {
  [[ -x "$ACTIONLINT_DIR/actionlint" ]] && return 0
  echo "gotools: building actionlint $ACTIONLINT_VERSION (cold: about a minute)" >&2
  mkdir -p "$ACTIONLINT_DIR.tmp"
  GOBIN="$ACTIONLINT_DIR.tmp" go install -trimpath -ldflags=-s \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    || die "could not build actionlint $ACTIONLINT_VERSION from the Go module proxy"
  rm -rf "$ACTIONLINT_DIR"; mv "$ACTIONLINT_DIR.tmp" "$ACTIONLINT_DIR"
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
  actionlint) echo "$ACTIONLINT_DIR/actionlint" ;;
  sops-dir) echo "$SOPS_DIR" ;;
  *) echo "usage: $0 build | bin-dir | promtool | actionlint | sops-dir" >&2; exit 2 ;;
esac
