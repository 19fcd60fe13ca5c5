"""The operator uses its libraries' public APIs only: a private module (`kopf._core...`) may change in any
release, and a pinned version would then have to stay pinned for that reason alone (issue 29, point 4)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "cams_webhook_operator"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_module_of_kopf_is_imported(path: Path) -> None:
    private = [name for name in _imports(path) if name.startswith("kopf._")]
    assert not private, f"{path.name} imports {private}"
