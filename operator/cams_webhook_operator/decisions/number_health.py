"""A number's health as WhatsApp rates it, from the space reads the operator makes anyway (never a call of
its own): the `NumberHealthy` condition, and an Event when the quality rating or the number's status
changes. Pure.

`NumberHealthy` never touches `Ready`: Ready says whether CAMS holds the webhook configuration, which is what
GitOps health judges; a quality rating moves with customers' feedback, and a sync must not turn Degraded
with it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from cams_webhook_operator.api.status_models import LiveWebhook, PhoneWebhookStatus
from cams_webhook_operator.decisions.plans import Plan
from cams_webhook_operator.decisions.state import Event, ObjectState
from cams_webhook_operator.decisions.status import condition

CONDITION: Final = "NumberHealthy"
QUALITY_RANK = {"RED": 0, "YELLOW": 1, "GREEN": 2}
# A number in service. VERIFIED is what the API's own example shows for a number in use.
IN_SERVICE = frozenset({"CONNECTED", "VERIFIED"})


def judge(live: LiveWebhook) -> tuple[bool, str, str] | None:
    """(healthy, reason, message), or None when the read says nothing about the number's health."""
    if not live.found or not (live.quality_rating or live.number_status):
        return None
    problems: list[tuple[str, str]] = []
    if live.quality_rating == "RED":
        problems.append(("QualityRed", "quality rating RED: WhatsApp may lower the number's messaging limit"))
    if live.number_status and live.number_status not in IN_SERVICE:
        problems.append(("NumberNotConnected", f"number status {live.number_status}, not CONNECTED"))
    if live.name_status.lower() == "rejected":
        problems.append(("NameRejected", "the verified name was rejected"))
    if problems:
        return False, problems[0][0], "; ".join(message for _, message in problems)
    facts = [
        f"quality {live.quality_rating or 'unknown'}",
        f"status {live.number_status or 'unknown'}",
        *([f"tier {live.messaging_limit_tier}"] if live.messaging_limit_tier else []),
    ]
    return True, "Healthy", ", ".join(facts)


def changes(before: LiveWebhook | None, after: LiveWebhook, phone_number: str) -> tuple[Event, ...]:
    """One Event per change of the quality rating or of the number's status between two reads: Warning
    when it got worse, Normal when it recovered. Nothing on the first read (nothing changed)."""
    if before is None or not before.found or not after.found:
        return ()
    events: list[Event] = []
    old, new = before.quality_rating, after.quality_rating
    if old and new and old != new:
        worse = QUALITY_RANK.get(new, -1) < QUALITY_RANK.get(old, -1)
        events.append(
            Event(
                "Warning" if worse else "Normal",
                "QualityDegraded" if worse else "QualityRecovered",
                f"The quality rating of {phone_number} changed from {old} to {new}",
            )
        )
    old, new = before.number_status, after.number_status
    if old and new and old != new:
        worse = new not in IN_SERVICE
        events.append(
            Event(
                "Warning" if worse else "Normal",
                "NumberStatusChanged",
                f"The status of {phone_number} changed from {old} to {new}",
            )
        )
    return tuple(events)


def with_health_condition(
    before: PhoneWebhookStatus, status: PhoneWebhookStatus, *, now: datetime, generation: int
) -> PhoneWebhookStatus:
    """`status` with its NumberHealthy condition judged from its `live` (none when the read says nothing),
    keeping lastTransitionTime from `before` while the verdict holds."""
    others = [c for c in status.conditions if c.type != CONDITION]
    verdict = judge(status.live) if status.live is not None else None
    if verdict is None:
        return status.model_copy(update={"conditions": others})
    healthy, reason, message = verdict
    judged = condition(
        before.conditions, CONDITION, healthy, reason=reason, message=message, now=now, generation=generation
    )
    return status.model_copy(update={"conditions": [*others, judged]})


def with_number_health(state: ObjectState, decided: Plan, now: datetime) -> Plan:
    """A plan's status with the number's health from the last read, and an Event for a change of rating or
    status since the status last decided. Every plan gets it: `plan`, `after_call` and
    `unavailable` end with it."""
    status = decided.status
    if status is None or status.live is None:
        return decided
    before = state.status
    judged = with_health_condition(before, status, now=now, generation=state.snapshot.generation)
    changed = changes(
        before.live, status.live, state.snapshot.spec.phone_number if state.snapshot.spec else ""
    )
    return replace(decided, status=judged, events=(*decided.events, *changed))
