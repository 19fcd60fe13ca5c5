"""The package tree and the module table of docs/architecture.md are the code's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "cams_webhook_operator"


def _top_level() -> set[str]:
    entries = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    entries |= {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    return entries


def _printed_tree() -> set[str]:
    text = (REPO / "docs" / "architecture.md").read_text()
    block = text.split("  cams_webhook_operator/", 1)[1].split("\n  cams_simulator/", 1)[0]
    return {m.group(1) for m in re.finditer(r"^    (\S+)", block, flags=re.M)}


def test_the_printed_tree_lists_every_layer_and_top_module() -> None:
    assert _printed_tree() == _top_level()


def test_the_architecture_page_names_every_module() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    modules = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    missing = [m for m in modules if f"`{m}`" not in page]
    assert not missing, missing
    assert len(modules) > 30


def test_every_layer_says_what_it_is_and_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{init.parent.name}/__init__.py has no docstring"
        assert "May import" in docstring, init.parent.name


# Issue 30's measure of modules small enough to read: every Python file of the operator, its simulator,
# the tests and the benchmarks.
MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 400, 250, 50


def _too_long(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.count("\n")
    found = [f"{path}: {lines} lines"] if lines > MODULE_LINES else []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            most = CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            most = FUNCTION_LINES
        else:
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > most:
            found.append(f"{path}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_module_class_or_function_is_too_long_to_read() -> None:
    roots = (REPO / "operator", REPO / "tests", REPO / "benchmarks")
    files = [p for root in roots for p in root.rglob("*.py") if ".egg-info" not in str(p)]
    assert len(files) > 100, "the walk found the code"
    assert [line for path in files for line in _too_long(path)] == []
