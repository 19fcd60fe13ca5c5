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
# The values Alibaba documents (QueryChatappPhoneNumbers). UNKNOWN, and any value not listed here, is not
# judged: it says nothing about the number, so it neither makes it unhealthy nor raises a Warning.
QUALITY_RANK = {"RED": 0, "YELLOW": 1, "GREEN": 2}
IN_SERVICE = frozenset({"CONNECTED"})
# Sending is limited for a while; the number recovers without anyone acting.
LIMITED = frozenset({"RESTRICTED", "RATE_LIMITED", "FLAGGED"})
# The number cannot send until something is done about it (or ever): the alert fires on these and on RED.
OUT_OF_SERVICE = frozenset(
    {"BANNED", "DISCONNECTED", "DELETED", "PENDING", "UNVERIFIED", "MIGRATED", "OFFLINE", "PAUSED"}
)
JUDGED_STATUSES = IN_SERVICE | LIMITED | OUT_OF_SERVICE


def judge(live: LiveWebhook) -> tuple[bool, str, str] | None:
    """(healthy, reason, message), or None when the read says nothing about the number's health."""
    quality, status = live.quality_rating, live.number_status
    if not live.found or not (quality in QUALITY_RANK or status in JUDGED_STATUSES):
        return None
    problems: list[tuple[str, str]] = []
    if status in OUT_OF_SERVICE:
        problems.append(("NumberOutOfService", f"number status {status}: the number cannot send messages"))
    if quality == "RED":
        problems.append(("QualityRed", "quality rating RED: WhatsApp may lower the number's messaging limit"))
    if status in LIMITED:
        problems.append(("NumberLimited", f"number status {status}: sending is limited for now; it recovers"))
    if live.name_status.lower() == "rejected":
        problems.append(("NameRejected", "the verified name was rejected"))
    if problems:
        return False, problems[0][0], "; ".join(message for _, message in problems)
    facts = [
        f"quality {quality or 'UNKNOWN'}",
        f"status {status or 'UNKNOWN'}",
        *([f"tier {live.messaging_limit_tier}"] if live.messaging_limit_tier else []),
    ]
    return True, "Healthy", ", ".join(facts)


def changes(before: LiveWebhook | None, after: LiveWebhook, phone_number: str) -> tuple[Event, ...]:
    """One Event per change of the quality rating or of the number's status between two reads: Warning
    when it got worse, Normal when it recovered; nothing on the first read (nothing changed) and nothing
    for a change to or from a value that is not judged (UNKNOWN)."""
    if before is None or not before.found or not after.found:
        return ()
    return tuple(
        event
        for event in (
            _quality_change(before.quality_rating, after.quality_rating, phone_number),
            _status_change(before.number_status, after.number_status, phone_number),
        )
        if event is not None
    )


def _quality_change(old: str, new: str, phone_number: str) -> Event | None:
    if old == new or new not in QUALITY_RANK:
        return None
    if old in QUALITY_RANK:
        worse = QUALITY_RANK[new] < QUALITY_RANK[old]
    elif new == "RED":  # from UNKNOWN, only a RED rating is news
        worse = True
    else:
        return None
    return Event(
        "Warning" if worse else "Normal",
        "QualityDegraded" if worse else "QualityRecovered",
        f"The quality rating of {phone_number} changed from {old or 'UNKNOWN'} to {new}",
    )


def _status_change(old: str, new: str, phone_number: str) -> Event | None:
    if old == new or new not in JUDGED_STATUSES:
        return None
    if new in IN_SERVICE and old not in JUDGED_STATUSES:
        return None  # from UNKNOWN (or nothing) to CONNECTED: nothing had gone wrong
    return Event(
        "Normal" if new in IN_SERVICE else "Warning",
        "NumberStatusChanged",
        f"The status of {phone_number} changed from {old} to {new}",
    )


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
