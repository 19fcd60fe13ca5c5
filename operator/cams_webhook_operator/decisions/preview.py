"""What the operator would do to CAMS for one object, told before it is applied: the `plan` command's verdict
on the plan reconcile.plan made, the change field by field against what a read of the space shows (URLs
redacted as status.live shows them), and the totals. Pure; planning/ gathers the facts and prints this.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass

from cams_webhook_operator.cams.messages import LiveNumber, WebhookUpdate
from cams_webhook_operator.decisions.plans import Plan
from cams_webhook_operator.tenancy.callback_urls import redact


class Verdict(enum.Enum):
    IN_SYNC = "in sync"  # no call: CAMS holds this spec (as the operator knows it)
    CHANGE = "would change"  # one UpdatePhoneWebhook call
    REFUSED = "would be refused"  # stalled before any call, or refused by CAMS before
    CONFLICT = "would conflict"  # another object manages the number
    OBSERVED = "observed"  # Observe mode: no call ever; `changes` is what Manage would change
    PAUSED = "paused"  # no call until the annotation goes
    INVALID = "invalid"  # the API server refuses the manifest
    UNKNOWN = "cannot tell"  # what it needs could not be read now (CAMS or STS unreachable): plan again


# Worst first: the exit code and the summary follow the worst verdict any object got.
SEVERITY = (Verdict.UNKNOWN, Verdict.INVALID, Verdict.REFUSED, Verdict.CONFLICT, Verdict.CHANGE)


@dataclass(frozen=True)
class FieldChange:
    field: str
    held: str  # what CAMS holds, redacted; "?" where the read API does not say (the flags)
    wanted: str  # what would be sent, redacted


@dataclass(frozen=True)
class Preview:
    namespace: str
    name: str
    space: str
    number: str
    verdict: Verdict
    reason: str = ""
    message: str = ""
    changes: tuple[FieldChange, ...] = ()
    account: str = ""  # whose quota a call uses, as logs show it; "" without a call


def _shown(url: str | None) -> str:
    return redact(url) if url else "(none)"


def changes(update: WebhookUpdate, live: LiveNumber | None) -> tuple[FieldChange, ...]:
    """Each field the update would set that CAMS does not hold (URLs) or may not hold (the flags, which the
    read API does not return). Two URLs that differ only where redaction hides it show as redacted alike."""
    found: list[FieldChange] = []
    held_urls = (live.status_callback_url, live.up_callback_url) if live else (None, None)
    wanted_urls = (update.status_callback_url, update.up_callback_url)
    for field, held, wanted in zip(
        ("statusCallbackUrl", "upCallbackUrl"), held_urls, wanted_urls, strict=True
    ):
        if wanted is not None and wanted != (held or ""):
            found.append(FieldChange(field, _shown(held), _shown(wanted)))
    for field, flag in (("httpFlag", update.http_flag), ("queueFlag", update.queue_flag)):
        if flag is not None:
            found.append(FieldChange(field, "?", "Y" if flag else "N"))
    return tuple(found)


def preview_of(
    plan: Plan, update: WebhookUpdate | None, live: LiveNumber | None, *, observe: bool
) -> tuple[Verdict, str, str, tuple[FieldChange, ...]]:
    """The verdict on a plan, with the reason and message its status gives (as the operator would write
    them) and what would change. `update`: what the spec would send (None for an invalid spec)."""
    ready = next((c for c in plan.status.conditions if c.type == "Ready"), None) if plan.status else None
    reason, message = (ready.reason, ready.message) if ready else ("", "")
    if plan.call is not None:
        return Verdict.CHANGE, reason, message, changes(plan.call.update, live)
    if plan.result == "in_sync":
        return Verdict.IN_SYNC, reason, message, ()
    if plan.result == "paused":
        return Verdict.PAUSED, reason, message, ()
    if plan.result == "retrying":  # the operator would try again: nothing is decided yet
        return Verdict.UNKNOWN, reason, message, ()
    if observe and plan.result in ("observed", "observing"):
        return Verdict.OBSERVED, reason, message, changes(update, live) if update else ()
    if reason in ("InvalidSpec", "InvalidName"):
        return Verdict.INVALID, reason, message, ()
    if reason == "Conflict":
        return Verdict.CONFLICT, reason, message, ()
    return Verdict.REFUSED, reason, message, ()


@dataclass(frozen=True)
class Totals:
    verdicts: dict[Verdict, int]
    calls_by_account: dict[str, int]
    seconds_by_account: dict[str, float]  # calls / the account's quota: how long the calls take at best
    reads: int

    @property
    def worst(self) -> Verdict | None:
        return next((v for v in SEVERITY if self.verdicts.get(v)), None)


def totals(previews: list[Preview], *, qps: dict[str, float], reads: int) -> Totals:
    """`qps`: each account's calls per second (its lane's rate)."""
    calls = Counter(p.account for p in previews if p.verdict is Verdict.CHANGE)
    return Totals(
        verdicts=dict(Counter(p.verdict for p in previews)),
        calls_by_account=dict(calls),
        seconds_by_account={account: n / qps[account] for account, n in calls.items()},
        reads=reads,
    )


def exit_code(summary: Totals) -> int:
    """0: nothing to do; 2: calls to make; 3: something is refused, conflicts or is invalid; 1: the plan
    could not be made (here: an object it cannot tell about), so that CI can gate on each apart."""
    worst = summary.worst
    if worst is None:
        return 0
    return {Verdict.CHANGE: 2, Verdict.UNKNOWN: 1}.get(worst, 3)
