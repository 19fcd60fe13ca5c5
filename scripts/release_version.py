"""The version of this tree: pyproject.toml's, which Chart.yaml's version and appVersion must equal (the
chart's default image tag is its appVersion).

    python3 scripts/release_version.py               print it
    python3 scripts/release_version.py --check V     fail unless all three are V (the release workflow
                                                     passes the tag's version)

Standard library only: the release workflow runs it before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "cams-webhook-operator" / "Chart.yaml"


def versions() -> dict[str, str]:
    """Each place that names the version, and the version it names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = CHART.read_text()
    found = {"pyproject.toml version": project}
    for key in ("version", "appVersion"):
        match = re.search(rf'^{key}:\s*"?([^"\s]+)"?\s*$', chart, re.MULTILINE)
        found[f"Chart.yaml {key}"] = match.group(1) if match else "(missing)"
    return found


def main(argv: list[str]) -> int:
    found = versions()
    if not argv:
        wanted = found["pyproject.toml version"]
    elif len(argv) == 2 and argv[0] == "--check":
        wanted = argv[1]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    wrong = [f"{where} is {value}" for where, value in found.items() if value != wanted]
    if wrong:
        print(f"release_version: not {wanted}: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
