"""Decision logic: what to do for one PhoneWebhook, and what its status says afterwards. Pure.

The flow is one way: desired spec + observed status -> `decide` -> (the controller acts) -> outcome ->
`status_after_*`. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from cams_webhook_operator.api.models import (
    RELEASE_ANNOTATION,
    Condition,
    ConditionType,
    LiveWebhook,
    PhoneWebhookSpec,
    PhoneWebhookStatus,
)
from cams_webhook_operator.cams.client import LiveNumber, WebhookUpdate
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Outcome, Verdict


def webhook_update(spec: PhoneWebhookSpec) -> WebhookUpdate:
    return WebhookUpdate(
        cust_space_id=spec.cust_space_id,
        phone_number=spec.phone_number,
        status_callback_url=spec.status_callback_url,
        up_callback_url=spec.up_callback_url,
        http_flag=spec.http_flag,
        queue_flag=spec.queue_flag,
    )


def clearing_update(spec: PhoneWebhookSpec) -> WebhookUpdate:
    """What deletionPolicy Clear sends when the object goes: no callback URLs, no delivery."""
    return WebhookUpdate(
        cust_space_id=spec.cust_space_id,
        phone_number=spec.phone_number,
        status_callback_url="",
        up_callback_url="",
        http_flag=False,
        queue_flag=False,
    )


RELEASE_HINT = f"to delete it without clearing CAMS, annotate it {RELEASE_ANNOTATION}=true"


def account_identity(credentials: Credentials, *, source: str) -> str:
    """Which account a call is made as, as far as the operator can tell without asking.

    An AccessKey ID names one RAM identity for good. An STS key ID is new at every refresh, so the
    credential source stands for the account instead; otherwise each refresh would look like a change
    of account and re-apply every webhook.
    """
    return f"sts:{source}" if credentials.is_temporary else f"ak:{credentials.access_key_id}"


def fingerprint(update: WebhookUpdate, *, account: str) -> str:
    """A digest of what would be sent, and as whom; equal digests mean a call would change nothing."""
    canonical = json.dumps({"update": asdict(update), "account": account}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True, order=True)
class Claimant:
    """A PhoneWebhook that claims a (custSpaceId, phoneNumber); ordered by who came first."""

    created: str  # metadata.creationTimestamp, RFC 3339 in UTC: text order is time order
    namespace: str
    name: str


def owner(claimants: Iterable[Claimant]) -> Claimant | None:
    """The object that manages a number: the one created first (ties broken by namespace and name, so
    every replica and every restart picks the same one)."""
    return min(claimants, default=None)


def conflict_message(*, winner: Claimant, space: str, phone_number: str) -> str:
    return (
        f"PhoneWebhook {winner.namespace}/{winner.name} already manages the webhook of {phone_number} in "
        f"space {space}; this one is not applied while that one exists"
    )


class Action(enum.Enum):
    IN_SYNC = "in-sync"  # CAMS already has this spec for this account: no call
    APPLY = "apply"  # call UpdatePhoneWebhook
    WAIT = "wait"  # CAMS refused this exact request for good; wait for a change or the long retry


@dataclass(frozen=True)
class Decision:
    action: Action
    not_before: datetime | None = None


def decide(
    *,
    fingerprint: str,
    status: PhoneWebhookStatus,
    now: datetime,
    permanent_retry: timedelta,
    secret_changed: bool = False,
    reconcile_requested: bool = False,
) -> Decision:
    """`secret_changed`: the credentials' Secret changed since the last attempt. A fixed secret or newly
    granted permissions can turn a refusal into success under the same AccessKey ID, so it is retried.
    `reconcile_requested`: a person asked for one call now, in sync or not."""
    if reconcile_requested:
        return Decision(Action.APPLY)
    if status.applied_fingerprint == fingerprint:
        return Decision(Action.IN_SYNC)
    if secret_changed:
        return Decision(Action.APPLY)
    if status.failed_fingerprint == fingerprint and status.last_attempt_time is not None:
        retry_at = status.last_attempt_time + permanent_retry
        if now < retry_at:
            return Decision(Action.WAIT, not_before=retry_at)
    return Decision(Action.APPLY)


class Phase(enum.Enum):
    """Which of Ready, Reconciling and Stalled is True (kstatus reads them in that spirit)."""

    READY = (True, False, False)
    RECONCILING = (False, True, False)
    STALLED = (False, False, True)
    IDLE = (False, False, False)  # nothing to do, nothing wrong, not ready (paused before applying)


def _conditions(
    previous: list[Condition], *, generation: int, now: datetime, phase: Phase, reason: str, message: str
) -> list[Condition]:
    """All three conditions, keeping lastTransitionTime where a status did not change."""
    before = {condition.type: condition for condition in previous}
    kinds: tuple[ConditionType, ...] = ("Ready", "Reconciling", "Stalled")
    out: list[Condition] = []
    for kind, value in zip(kinds, phase.value, strict=True):
        status = "True" if value else "False"
        old = before.get(kind)
        # A False Reconciling/Stalled says nothing on its own; the shared reason still tells the story.
        out.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=old.last_transition_time if old and old.status == status else now,
                observed_generation=generation,
            )
        )
    return out


def _verdict(
    previous: PhoneWebhookStatus,
    *,
    generation: int,
    now: datetime,
    phase: Phase,
    reason: str,
    message: str,
    fields: dict[str, Any] | None = None,
) -> PhoneWebhookStatus:
    """The previous status with a new verdict for `generation` (conditions' reason and message), and the
    other status `fields` given."""
    conditions = _conditions(
        previous.conditions, generation=generation, now=now, phase=phase, reason=reason, message=message
    )
    update = {"observed_generation": generation, **(fields or {}), "conditions": conditions}
    return previous.model_copy(update=update)


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _cams_said(outcome: Outcome) -> str:
    if outcome.answer is None:
        return outcome.error or "no answer"
    answer = outcome.answer
    said = f"{answer.code or f'HTTP {answer.http_status}'}"
    if answer.message and answer.message not in ("null", "None"):
        said += f": {answer.message}"
    return said


def status_after_outcome(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    phone_number: str,
    fingerprint: str,
    outcome: Outcome,
    now: datetime,
    retry_at: datetime | None,
    reconcile_request: str | None = None,
    clearing: bool = False,
) -> PhoneWebhookStatus:
    """The status after one UpdatePhoneWebhook call. `retry_at` is when the controller tries again;
    `reconcile_request` the annotation value that forced the call, handled once CAMS answered for good."""
    answer = outcome.answer
    handled = outcome.verdict in (Verdict.OK, Verdict.PERMANENT) and reconcile_request is not None
    common: dict[str, Any] = {
        "last_handled_reconcile_at": reconcile_request if handled else previous.last_handled_reconcile_at,
        "code": answer.code if answer else None,
        "message": answer.message if answer else None,
        "request_id": answer.request_id if answer else None,
        "access_denied_detail": answer.access_denied_detail if answer else None,
        "last_attempt_time": now,
        "next_attempt_time": retry_at,
    }
    if outcome.verdict is Verdict.OK:
        return _verdict(
            previous,
            generation=generation,
            now=now,
            phase=Phase.READY,
            reason="Applied",
            message=f"CAMS accepted the webhook configuration of {phone_number}",
            fields={
                **common,
                "next_attempt_time": None,
                "last_sync_time": now,
                "applied_fingerprint": fingerprint,
                "failed_fingerprint": None,
            },
        )
    retry_note = f"; retrying at {_at(retry_at)}" if retry_at else ""
    if outcome.verdict is Verdict.PERMANENT:
        if clearing:
            message = (
                f"CAMS refused to clear the webhook of {phone_number} before deletion "
                f"({_cams_said(outcome)}). The object stays until CAMS accepts{retry_note}; {RELEASE_HINT}"
            )
        else:
            message = (
                f"CAMS refused the webhook configuration of {phone_number} ({_cams_said(outcome)}). "
                f"Fix the cause: the operator tries again when the spec or its Secret changes{retry_note}"
            )
        return _verdict(
            previous,
            generation=generation,
            now=now,
            phase=Phase.STALLED,
            reason=outcome.reason,
            message=message,
            fields={**common, "failed_fingerprint": fingerprint},
        )
    if outcome.verdict is Verdict.THROTTLED:
        message = f"CAMS is under flow control ({_cams_said(outcome)}){retry_note}"
    else:
        message = f"The call to CAMS failed temporarily ({_cams_said(outcome)}){retry_note}"
    if clearing:
        message = f"Clearing the webhook of {phone_number} before deletion: {message}"
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason=outcome.reason,
        message=message,
        # A newer attempt is under way: an older refusal no longer decides when to try again.
        fields={**common, "failed_fingerprint": None},
    )


def status_in_sync(
    *, previous: PhoneWebhookStatus, generation: int, phone_number: str, now: datetime
) -> PhoneWebhookStatus:
    """CAMS already holds this spec (e.g. only the Secret's name changed, same account)."""
    ready = next((c for c in previous.conditions if c.type == "Ready"), None)
    message = (
        ready.message
        if ready and ready.status == "True"
        else (f"CAMS already holds the webhook configuration of {phone_number}")
    )
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.READY,
        reason="Applied",
        message=message,
        fields={"next_attempt_time": None},
    )


def status_stalled(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    reason: str,
    message: str,
    now: datetime,
) -> PhoneWebhookStatus:
    """Something only a person can fix before any call can be made (a missing Secret, no credentials).

    CAMS's last answer is cleared: it belongs to an attempt that is no longer the current one.
    """
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.STALLED,
        reason=reason,
        message=message,
        fields={
            "code": None,
            "message": None,
            "request_id": None,
            "access_denied_detail": None,
            "next_attempt_time": None,
        },
    )


def with_generation(status: PhoneWebhookStatus, generation: int) -> PhoneWebhookStatus:
    """The same verdict, now known to hold for `generation` too."""
    return status.model_copy(
        update={
            "observed_generation": generation,
            "conditions": [
                c.model_copy(update={"observed_generation": generation}) for c in status.conditions
            ],
        }
    )


def status_paused(
    *, previous: PhoneWebhookStatus, generation: int, now: datetime, annotation: str
) -> PhoneWebhookStatus:
    """No CAMS call while paused. Ready stays True only if CAMS already held this generation."""
    ready = next((c for c in previous.conditions if c.type == "Ready"), None)
    in_sync = ready is not None and ready.status == "True" and previous.observed_generation == generation
    message = f"Paused by the annotation {annotation}: no CAMS call is made until it is removed" + (
        "; CAMS holds this spec" if in_sync else "; this spec is not applied"
    )
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.READY if in_sync else Phase.IDLE,
        reason="Paused",
        message=message,
        fields={"next_attempt_time": None},
    )


def drifted_fields(spec: PhoneWebhookSpec, live: LiveNumber | None) -> list[str]:
    """The spec fields CAMS no longer holds. Only URLs can be compared: the read API returns no flags.
    An unset field in the spec is not ours to keep, so it never drifts."""
    if live is None:
        return ["phoneNumber"]  # the number is no longer in the space
    drifted = []
    if spec.status_callback_url is not None and spec.status_callback_url != live.status_callback_url:
        drifted.append("statusCallbackUrl")
    if spec.up_callback_url is not None and spec.up_callback_url != live.up_callback_url:
        drifted.append("upCallbackUrl")
    return drifted


_UNITS = {"s": 1, "m": 60, "h": 3600}
_OFF = {"0", "off", "false", "no", "disabled", "never"}


def drift_interval(annotation: str | None, *, default: float) -> float | None:
    """Seconds between drift checks for one object: the annotation's value ("45s", "10m", "2h", "300",
    "off") or the operator default; None means never. A value that does not parse keeps the default."""
    if annotation is None:
        return default or None
    value = annotation.strip().lower()
    if value in _OFF:
        return None
    try:
        seconds = float(value[:-1]) * _UNITS[value[-1]] if value[-1:] in _UNITS else float(value)
    except ValueError:
        return default or None
    return seconds if seconds > 0 else None


def status_retrying(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    reason: str,
    message: str,
    now: datetime,
    retry_at: datetime,
) -> PhoneWebhookStatus:
    """Something that may pass on its own stands in the way (STS unreachable): Reconciling, with a retry."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason=reason,
        message=f"{message}; retrying at {_at(retry_at)}",
        fields={"next_attempt_time": retry_at},
    )


def live_webhook(live: LiveNumber | None) -> LiveWebhook:
    if live is None:
        return LiveWebhook(found=False)
    return LiveWebhook(
        status_callback_url=live.status_callback_url,
        up_callback_url=live.up_callback_url,
        number_status=live.status,
    )


def status_observing(*, previous: PhoneWebhookStatus, generation: int, now: datetime) -> PhoneWebhookStatus:
    """Observe mode, before the first read of the space."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason="Observing",
        message="Reading the live configuration from CAMS (Observe mode: no change is made)",
    )


def status_observed(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    now: datetime,
    phone_number: str,
    live: LiveNumber | None,
    drifted: list[str],
) -> PhoneWebhookStatus:
    """Observe mode: what CAMS holds, and whether it matches the spec (the InSync condition)."""
    observed = _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.READY,
        reason="Observed",
        message=f"Observing {phone_number}: CAMS is never changed in Observe mode; see status.live",
        fields={"live": live_webhook(live)},
    )
    if live is None:
        in_sync, reason, message = False, "NotFound", f"The space does not list {phone_number}"
    elif drifted:
        in_sync, reason, message = False, "Differs", f"CAMS holds other values for {', '.join(drifted)}"
    else:
        in_sync, reason, message = True, "Matches", "CAMS holds the callback URLs of this spec"
    old = next((c for c in previous.conditions if c.type == "InSync"), None)
    status = "True" if in_sync else "False"
    in_sync_condition = Condition(
        type="InSync",
        status=status,
        reason=reason,
        message=message,
        last_transition_time=old.last_transition_time if old and old.status == status else now,
        observed_generation=generation,
    )
    return observed.model_copy(update={"conditions": [*observed.conditions, in_sync_condition]})
