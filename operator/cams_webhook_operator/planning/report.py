"""A plan as a person or a program reads it: a table for a terminal, JSON, or Markdown for a pull request's
comment. Pure."""

from __future__ import annotations

import json
from typing import Any

from cams_webhook_operator.decisions.preview import SEVERITY, Preview, Totals, Verdict

_ORDER = [*SEVERITY, Verdict.OBSERVED, Verdict.PAUSED, Verdict.IN_SYNC]  # worst first


def _sorted(previews: list[Preview]) -> list[Preview]:
    return sorted(previews, key=lambda p: (_ORDER.index(p.verdict), p.namespace, p.name))


def _detail(preview: Preview) -> str:
    """What would change, field by field; else the message the operator would write, on one line."""
    if preview.verdict in (Verdict.CHANGE, Verdict.OBSERVED):
        return "; ".join(f"{c.field}: {c.held} -> {c.wanted}" for c in preview.changes)
    return preview.message.replace("\n", " ")


def _summary(totals: Totals) -> list[str]:
    counted = ", ".join(f"{totals.verdicts[v]} {v.value}" for v in _ORDER if totals.verdicts.get(v))
    lines = [f"{counted or 'no PhoneWebhook'}; {totals.reads} read(s) of CAMS, no update"]
    for account, calls in sorted(totals.calls_by_account.items()):
        seconds = totals.seconds_by_account[account]
        lines.append(f"{calls} UpdatePhoneWebhook call(s) as {account}: {seconds:.1f} s at its quota")
    return lines


def table(previews: list[Preview], totals: Totals) -> str:
    rows = [("NAMESPACE", "NAME", "PHONE", "PLAN", "REASON", "DETAIL")]
    for p in _sorted(previews):
        rows.append((p.namespace, p.name, p.number, p.verdict.value, p.reason, _detail(p)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "   " + r[5] for r in rows
    ]
    return "\n".join([*(line.rstrip() for line in lines), "", *_summary(totals)]) + "\n"


def as_json(previews: list[Preview], totals: Totals) -> str:
    def one(p: Preview) -> dict[str, Any]:
        return {
            "namespace": p.namespace,
            "name": p.name,
            "custSpaceId": p.space,
            "phoneNumber": p.number,
            "plan": p.verdict.value,
            "reason": p.reason,
            "message": p.message,
            "changes": [{"field": c.field, "held": c.held, "wanted": c.wanted} for c in p.changes],
            "account": p.account,
        }

    body = {
        "objects": [one(p) for p in _sorted(previews)],
        "totals": {
            "plans": {v.value: n for v, n in totals.verdicts.items()},
            "calls": totals.calls_by_account,
            "secondsAtQuota": totals.seconds_by_account,
            "reads": totals.reads,
        },
    }
    return json.dumps(body, indent=2) + "\n"


def markdown(previews: list[Preview], totals: Totals) -> str:
    """For a pull request's comment: the summary first, then one row per object that is not in sync."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["### CAMS webhook plan", "", *(f"- {line}" for line in _summary(totals)), ""]
    shown = [p for p in _sorted(previews) if p.verdict is not Verdict.IN_SYNC]
    if shown:
        lines += ["| Object | Phone | Plan | Reason | Detail |", "|---|---|---|---|---|"]
        for p in shown:
            cells = (f"`{p.namespace}/{p.name}`", p.number, p.verdict.value, p.reason, cell(_detail(p)))
            lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


RENDER = {"table": table, "json": as_json, "markdown": markdown}
