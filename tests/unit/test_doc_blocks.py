"""Every command block of the pages a reader pastes from is either pasted by a named test or says why no
test can run it here (tests/e2e/docs.py reads the markers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/install.md", "docs/operations.md", "docs/upgrading.md", "docs/gitops.md"]
_BLOCK = re.compile(r"(?:<!-- (.*?) -->\s*)?^ *```(sh|bash|console)\n", re.MULTILINE)


@pytest.mark.parametrize("page", PAGES)
def test_every_command_block_is_pasted_by_a_test_or_says_why_not(page: str) -> None:
    text = (REPO / page).read_text()
    blocks = _BLOCK.findall(text)
    assert blocks, f"{page} has no command block"
    if page == "README.md":
        # The README opens with the two commands, unmarked: scripts/test.sh is what CI runs (.ci/run), and
        # the quick start's step 2 runs scripts/demo.sh, pasted by tests/e2e/test_doc_readme.py.
        assert blocks[0] == ("", "sh")
        assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
        blocks = blocks[1:]
    for marker, _ in blocks:
        pasted = re.fullmatch(r"pasted by (tests/e2e/\w+\.py)", marker)
        if pasted:
            test = REPO / pasted.group(1)
            assert test.exists(), f"{page}: {marker}"
            assert Path(page).name in test.read_text(), f"{test.name} never reads {page}"
        else:
            assert re.fullmatch(r"not pasted by a test: .{10,}", marker), (
                f"{page}: an unmarked block ({marker!r})"
            )


def test_the_plan_workflow_shown_in_gitops_md_is_the_one_actionlint_checks() -> None:
    """docs/examples/plan-on-pull-request.yml is linted by actionlint in scripts/test.sh; the page shows
    it whole, so what a reader copies is what was checked."""
    example = (REPO / "docs" / "examples" / "plan-on-pull-request.yml").read_text()
    assert f"```yaml\n{example}```" in (REPO / "docs" / "gitops.md").read_text()
    assert "docs/examples/*.yml" in (REPO / "scripts" / "test.sh").read_text()
