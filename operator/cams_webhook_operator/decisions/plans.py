"""The vocabulary of decisions: what a plan may say (`Plan`, `Call`, `Facts`, priorities, drift actions),
and whether an object needs a call at all (`whether_to_call`, over the `fingerprint` of what it would send).
Pure; reconcile.py decides the plans, answers.py what CAMS's answers mean.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

from cams_webhook_operator.api.models import PhoneWebhookSpec
from cams_webhook_operator.api.status_models import PhoneWebhookStatus
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.decisions.pacing import backoff_delay
from cams_webhook_operator.decisions.state import (
    NO_UPDATE,
    Claimant,
    Event,
    StateUpdate,
)
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls, literal
from cams_webhook_operator.tenancy.credentials import (
    CredentialProblem,
    Resolved,
)


class Priority(enum.IntEnum):
    """Work queue and lane order: lower goes first."""

    CHANGE = 0  # a new object, a new generation, a changed Secret: what a person just did
    RETRY = 1  # a change that failed for a reason that passes (throttled, transient), tried again
    ROUTINE = 2  # the long retry after a refusal, drift re-applies, periodic re-checks


def webhook_update(spec: PhoneWebhookSpec, urls: CallbackUrls | None = None) -> WebhookUpdate:
    """What a call sends: the spec, with `urls` (those read from Secrets) in place of its URL fields."""
    urls = urls or literal(spec)
    return WebhookUpdate(
        cust_space_id=spec.cust_space_id,
        phone_number=spec.phone_number,
        status_callback_url=urls.status_callback_url,
        up_callback_url=urls.up_callback_url,
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


def fingerprint(update: WebhookUpdate, *, account: str) -> str:
    """A digest of what would be sent, and as whom; equal digests mean a call would change nothing. It
    covers URLs read from Secrets too (a new value is a new digest) without showing them."""
    canonical = json.dumps({"update": asdict(update), "account": account}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Action(enum.Enum):
    IN_SYNC = "in-sync"  # CAMS already has this spec for this account: no call
    APPLY = "apply"  # call UpdatePhoneWebhook
    WAIT = "wait"  # CAMS refused this exact request for good; wait for a change or the long retry


@dataclass(frozen=True)
class Decision:
    action: Action
    not_before: datetime | None = None


def whether_to_call(
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
    `reconcile_requested`: a person asked for one call now, in sync or not (or a drift check did)."""
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


class DriftAction(enum.Enum):
    KEEP = "keep"  # leave the next drift check where it is
    SCHEDULE = "schedule"  # one interval from now (or never, if the object's interval is off)
    NOW = "now"  # at the next tick (an observer that has never read CAMS)
    STOP = "stop"  # none while this lasts (paused)


@dataclass(frozen=True)
class Call:
    """One UpdatePhoneWebhook to make, and what its answer is to be recorded against."""

    update: WebhookUpdate
    resolved: Resolved
    fingerprint: str
    generation: int
    priority: Priority
    clearing: bool = False  # deletionPolicy Clear, on the way out
    reconcile_request: str | None = None  # the annotation value this call answers


@dataclass(frozen=True)
class Plan:
    result: str | None  # counted in cams_webhook_operator_reconciles_total; None while a call is pending
    status: PhoneWebhookStatus | None = None  # None: as it is
    call: Call | None = None
    events: tuple[Event, ...] = ()
    finalizer: Literal["add", "remove"] | None = None
    requeue_after: float | None = None  # seconds
    requeue_priority: Priority = Priority.ROUTINE
    update: StateUpdate = NO_UPDATE  # the object's own bookkeeping (ObjectState.apply)
    drift: DriftAction = DriftAction.KEEP
    hold: bool = False  # CAMS is out: the account's lane holds the object until it answers again
    # What CAMS's answer asks of the call's credentials (after_call): obtain a new RRSA token; read the
    # Secret again (rotated?). Refused for good, they also prove themselves on the space again.
    renew_credentials: bool = False
    reread_secret: bool = False
    # The object's claim on its number: take it (before any call), or drop it (its credentials refused for
    # good, by tenancy, by the proof of access, or by CAMS answering a call).
    claim: Literal["take", "drop"] | None = None
    drift_detected: bool = False  # counted in cams_webhook_operator_drift_detected_total


@dataclass(frozen=True)
class Facts:
    """What the controller gathered for one decision."""

    now: datetime
    priority: Priority  # how urgently the object was queued
    owner: Claimant | None = None  # who manages the number (None: no one claims it)
    credentials: Resolved | CredentialProblem | None = None  # None: not needed (see needs_credentials)
    # The URLs from the Secrets the spec names, or why they cannot be read; None: the spec names none.
    urls: CallbackUrls | CredentialProblem | None = None
    jitter: float = 1.0  # in [0, 1): spreads retries of objects that failed together


def retry_priority(priority: Priority) -> Priority:
    return max(priority, Priority.RETRY)


def retry_delay(
    attempts: int, *, jitter: float, settings: OperatorSettings, cap: float | None = None
) -> float:
    """Seconds before the next try after `attempts` failed ones in a row, at most `cap` (by default the
    longest retry delay)."""
    return backoff_delay(
        attempt=attempts,
        base=settings.retry_base_seconds,
        cap=cap or settings.retry_max_seconds,
        jitter=jitter,
    )
