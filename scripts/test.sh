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
.venv/bin/ruff check operator tests benchmarks scripts
.venv/bin/ruff format --check operator tests benchmarks scripts
step "mypy --strict"
.venv/bin/mypy
step "import layering"
.venv/bin/lint-imports
step "hadolint"
.venv/bin/hadolint Dockerfile
step "actionlint (the release and CI workflows, and the docs' example)"
scripts/gotools.sh build
"$(scripts/gotools.sh actionlint)" -shellcheck .venv/bin/shellcheck
"$(scripts/gotools.sh actionlint)" -shellcheck .venv/bin/shellcheck docs/examples/*.yml
step "CRD drift"
.venv/bin/python -m cams_webhook_operator.api.crd --check
step "Local control planes (kube-apiserver + etcd, current and oldest supported)"
scripts/controlplane.sh build
step "pytest"
.venv/bin/python -m pytest "$@"
