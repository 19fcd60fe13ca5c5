"""The blocks of the docs that tests paste into a shell or apply, as a reader would copy them.

A fenced block is pasted by a test when an HTML comment right before it says so:
`<!-- pasted by tests/e2e/test_doc_install.py -->`; a block no test can run here says why instead:
`<!-- not pasted by a test: it needs Docker -->` (tests/unit/test_doc_blocks.py holds every block of the
docs it lists to one of the two)."""

from __future__ import annotations

import re

from .harness import REPO

_MARKED = re.compile(r"<!-- pasted by (tests/e2e/[\w/]+\.py) -->\s*```(\w+)\n(.*?)```", re.DOTALL)


def pasted(doc: str, test: str) -> list[str]:
    """The blocks of `doc` (a path from the repository's root) marked for `test` (a path too), in order,
    with the indentation of a list item removed."""
    text = (REPO / doc).read_text()
    found = [body for marked, _, body in _MARKED.findall(text) if marked == test]
    assert found, f"{doc} marks no block for {test}"
    return [re.sub(r"^ {3}", "", body, flags=re.MULTILINE) for body in found]


def block(doc: str, test: str, holding: str) -> str:
    """The one block of `doc` marked for `test` that holds `holding`."""
    (found,) = [b for b in pasted(doc, test) if holding in b]
    return found
