#!/usr/bin/env bash
# Create the project's virtual environment in .venv and install the operator and the CAMS simulator (with
# test tools if asked).
#   scripts/bootstrap.sh          the operator and the simulator (the demo)
#   scripts/bootstrap.sh test     the operator and everything the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "bootstrap: Python 3.11+ is required" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "bootstrap: Python 3.11+ is required" >&2; exit 1; }
[[ -x .venv/bin/python ]] || python3 -m venv .venv
extra=""; [[ "${1:-}" == "test" ]] && extra="[test]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# The simulator (operator/pyproject.toml, a distribution of its own) serves the demo and the tests.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}" -e ./operator
