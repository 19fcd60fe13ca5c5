#!/usr/bin/env bash
# Regenerate requirements.lock: the operator's runtime dependencies, pinned with hashes, for the image.
# pip-compile (pip-tools) resolves pyproject.toml's dependencies; --generate-hashes makes pip refuse
# anything that is not exactly the file locked here.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"; trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.5.1"
env -u PIP_FIND_LINKS "$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
  --no-emit-find-links --no-emit-index-url --output-file requirements.lock pyproject.toml
