"""A plan as printed (planning/report.py): worst first, what would change field by field, and Markdown that a
pull request's comment shows as one row per object that is not in sync."""

from __future__ import annotations

import json

from cams_webhook_operator.decisions import preview as pv
from cams_webhook_operator.planning.report import RENDER

PREVIEWS = [
    pv.Preview("ns", "synced", "space", "8613800000003", pv.Verdict.IN_SYNC, "Applied", "in sync"),
    pv.Preview(
        "ns",
        "new",
        "space",
        "8613800000001",
        pv.Verdict.CHANGE,
        "New",
        changes=(pv.FieldChange("statusCallbackUrl", "(none)", "https://hooks.example/a|b"),),
        account="account 1234",
    ),
    pv.Preview(
        "ns", "refused", "space", "8613800000002", pv.Verdict.REFUSED, "SpaceNotAllowed", "no | way\nat all"
    ),
]
TOTALS = pv.totals(PREVIEWS, qps={"account 1234": 10.0}, reads=1)


def test_the_table_puts_the_worst_first_and_shows_the_change_or_the_message() -> None:
    rows = RENDER["table"](PREVIEWS, TOTALS).splitlines()
    assert [row.split()[1] for row in rows[1:4]] == ["refused", "new", "synced"]
    assert rows[2].endswith("statusCallbackUrl: (none) -> https://hooks.example/a|b")
    assert "1 UpdatePhoneWebhook call(s) as account 1234: 0.1 s at its quota" in rows


def test_markdown_shows_objects_not_in_sync_one_row_each_with_cells_escaped() -> None:
    lines = RENDER["markdown"](PREVIEWS, TOTALS).splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == [
        "| `ns/refused` | 8613800000002 | would be refused | SpaceNotAllowed | no \\| way at all |",
        "| `ns/new` | 8613800000001 | would change | New | "
        "statusCallbackUrl: (none) -> https://hooks.example/a\\|b |",
    ]


def test_json_carries_every_object_and_the_totals() -> None:
    body = json.loads(RENDER["json"](PREVIEWS, TOTALS))
    assert [o["name"] for o in body["objects"]] == ["refused", "new", "synced"]
    assert body["totals"] == {
        "plans": {"in sync": 1, "would change": 1, "would be refused": 1},
        "calls": {"account 1234": 1},
        "secondsAtQuota": {"account 1234": 0.1},
        "reads": 1,
    }
