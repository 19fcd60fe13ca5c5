"""docs/reliability.md shows the one table of CAMS's refusals (cams/outcomes.py REFUSALS) as it is."""

from __future__ import annotations

import re
from pathlib import Path

from cams_webhook_operator.cams.outcomes import REFUSALS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
MARKER = "<!-- refusals: kept equal to REFUSALS by tests/unit/test_refusal_table.py -->"


def _documented() -> dict[str, tuple[str, bool]]:
    """Code -> (reason, tried again soon), from the page's table."""
    table = PAGE.read_text().split(MARKER, 1)[1].strip().split("\n\n", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    return {
        code: (row[1].strip("` "), row[2].startswith("soon"))
        for row in rows
        for code in re.findall(r"`([^`]+)`", row[0])
    }


def test_the_page_shows_every_refusal_with_its_reason_and_retry() -> None:
    table = {code: (refusal.reason, refusal.soon) for code, refusal in REFUSALS.items()}
    assert _documented() == table
