#!/usr/bin/env bash
# Every check and every test tier, from nothing: installs what it needs, builds the local control plane
# (cached in ~/.cache/cams-webhook-operator), then runs lint, types, layering, CRD drift and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "Installing into .venv"
scripts/bootstrap.sh test
step "ruff"
.venv/bin/ruff check operator tests benchmarks
.venv/bin/ruff format --check operator tests benchmarks
step "mypy --strict"
.venv/bin/mypy
step "import layering"
.venv/bin/lint-imports
step "hadolint"
.venv/bin/hadolint Dockerfile
step "CRD drift"
.venv/bin/python -m cams_webhook_operator.api.crd --check
step "Local control plane (kube-apiserver + etcd) and Go test tools (helm, kstatus)"
scripts/controlplane.sh build
scripts/gotools.sh build
step "pytest"
.venv/bin/python -m pytest "$@"
