"""What the operator keeps of one PhoneWebhook: the latest snapshot of the object and everything learnt
about it since, in one record, so that forgetting an object is one removal."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from cams_webhook_operator.api.models import (
    DRIFT_INTERVAL_ANNOTATION,
    PAUSED_ANNOTATION,
    RECONCILE_REQUEST_ANNOTATION,
    RELEASE_ANNOTATION,
    PhoneWebhookSpec,
)
from cams_webhook_operator.api.names import problem_of
from cams_webhook_operator.api.refs import Claim, Key, ObjectRef
from cams_webhook_operator.api.status_models import LiveWebhook, PhoneWebhookStatus
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Outcome
from cams_webhook_operator.tenancy import callback_urls
from cams_webhook_operator.tenancy.accounts import DEFAULT, AccountKey, named_account
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls


@dataclass(frozen=True, order=True, slots=True)
class Claimant:
    """A PhoneWebhook that claims a (custSpaceId, phoneNumber); ordered by who came first."""

    created: str  # metadata.creationTimestamp, RFC 3339 in UTC: text order is time order
    namespace: str
    name: str
    # CAMS holds its spec (status.appliedFingerprint) and nothing refuses it now (see `refused`).
    applied: bool = field(default=False, compare=False)
    # With a claim released by its (deleted) holder: when the grace period ends and the number is free.
    free_at: datetime | None = field(default=None, compare=False)


def holder_id(key: tuple[str, str]) -> str:
    """How a claim names the object that holds it."""
    return f"{key[0]}/{key[1]}"


def claimant_of(holder: str | None, free_at: datetime | None = None) -> Claimant | None:
    if holder is None:
        return None
    namespace, _, name = holder.partition("/")
    return Claimant("", namespace, name, free_at=free_at)


def refused(status: PhoneWebhookStatus) -> bool:
    """Whether the object's last decision refused it for a reason of its own (tenancy, a name, a missing
    Secret, credentials CAMS refused ...): Stalled for anything but waiting on another object's claim."""
    return any(
        c.type == "Stalled" and c.status == "True" and c.reason != "Conflict" for c in status.conditions
    )


def _is_true(annotation: str | None) -> bool:
    return (annotation or "").strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The object as the watch last showed it, with the spec parsed once."""

    ref: ObjectRef
    generation: int
    created: str
    spec: PhoneWebhookSpec | None  # None: invalid, see spec_problem
    spec_problem: tuple[str, str] | None  # (reason, message): InvalidName or InvalidSpec
    paused: bool
    reconcile_request: str | None
    deleting: bool
    released: bool  # may be deleted without clearing CAMS
    drift_interval: str | None  # the annotation's raw value
    finalizers: tuple[str, ...]
    resource_version: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Snapshot:
        meta = body["metadata"]
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        raw_spec: Mapping[str, Any] = body.get("spec") or {}
        spec: PhoneWebhookSpec | None = None
        problem = None
        try:
            spec = PhoneWebhookSpec.model_validate(raw_spec)
        except ValidationError as exc:
            # The API server's rules should have refused this; it may predate them (0.2.0 accepted a
            # Secret name such as "../other/secrets/key"): such an object is refused, never resolved.
            problem = problem_of(exc)
        return cls(
            # Interned: objects share their namespace, and those applied together their creation second.
            ref=ObjectRef(namespace=sys.intern(meta["namespace"]), name=meta["name"], uid=meta["uid"]),
            generation=int(meta.get("generation", 0)),
            created=sys.intern(str(meta.get("creationTimestamp", ""))),
            spec=spec,
            spec_problem=problem,
            paused=_is_true(annotations.get(PAUSED_ANNOTATION)),
            reconcile_request=annotations.get(RECONCILE_REQUEST_ANNOTATION) or None,
            deleting=meta.get("deletionTimestamp") is not None,
            released=_is_true(annotations.get(RELEASE_ANNOTATION)),
            drift_interval=annotations.get(DRIFT_INTERVAL_ANNOTATION),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
        )

    @property
    def key(self) -> Key:
        return (self.ref.namespace, self.ref.name)

    @property
    def triggers(self) -> tuple[object, ...]:
        """What, when it changes, needs a reconcile (our own status and finalizer writes change none)."""
        return (
            self.generation,
            self.paused,
            self.reconcile_request,
            self.deleting,
            self.released,
            self.drift_interval,
        )

    @property
    def claim(self) -> Claim | None:
        """The number this object manages; an observer claims none (watching conflicts with no one)."""
        if self.spec is None or self.spec.management_mode == "Observe":
            return None
        return (self.spec.cust_space_id, self.spec.phone_number)

    @property
    def claimant(self) -> Claimant:
        return Claimant(self.created, self.ref.namespace, self.ref.name)


@dataclass(frozen=True, slots=True)
class ReadRefusal:
    """CAMS refused to show the object's space (QueryChatappPhoneNumbers), for good until `retry_at`."""

    outcome: Outcome
    retry_at: datetime


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What the last read of the space showed for an object's number (None: not listed). Kept as CAMS
    said it, URLs unredacted, in memory only: status shows it through drift.live_webhook."""

    checked_at: datetime
    live: LiveNumber | None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event about an object, as decided; the writer posts it."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def status_of(body: Mapping[str, Any]) -> PhoneWebhookStatus:
    try:
        return PhoneWebhookStatus.model_validate(body.get("status") or {})
    except ValidationError:
        # Someone wrote a status we cannot read: start from scratch rather than never reconcile.
        return PhoneWebhookStatus()


@dataclass(frozen=True)
class StateUpdate:
    """What a plan changes in its object's own record, collected as one value (as kopf collects a patch)
    and applied in one place, `ObjectState.apply`. None or False: unchanged."""

    attempts: int | None = None  # failed tries in a row
    settle_forced: bool = False  # why a call was forced (Secret changed, drift) is answered for good
    unavailable_episode: int | None = None  # the CAMS outage the object has now been told about
    warned: bool = False  # warned of credentials in a literal URL, for the current generation
    read_examined: datetime | None = None  # the read of CAMS this plan was the first to look at
    drifted: bool = False  # that read found a managed spec no longer held: a call is due


NO_UPDATE = StateUpdate()


@dataclass(slots=True, eq=False)
class ObjectState:
    snapshot: Snapshot
    # The latest status decided for the object. `status_written` says whether the API server has it: a
    # status whose patch failed stays here, unwritten, and is written by the next reconcile.
    status: PhoneWebhookStatus
    status_written: bool = True
    # True until this process decides a status itself: until then the watch's copy is the latest (a
    # follower sees the leader's writes this way); after, ours is newer than any event may yet show.
    status_from_watch: bool = True
    # Bumped by every change that needs a reconcile; a queued call of an older epoch is not sent.
    epoch: int = 0
    attempts: int = 0  # failed tries in a row, for backoff
    # Why a call is due although CAMS last accepted this very fingerprint; settled by an answer for good.
    secret_changed: bool = False  # the credentials' Secret changed: a refusal may turn into success
    drifted: bool = False  # a plan found in a read that CAMS no longer holds the spec
    read_examined: datetime | None = None  # the last read a plan looked at for drift (once per read)
    drift_due: float | None = None  # loop time of the next drift check; None: none scheduled
    last_read: DriftReport | None = None  # merged into the status by every plan
    read_refusal: ReadRefusal | None = None  # the last read of the space was refused
    unavailable_episode: int = 0  # the last CAMS outage this object was told about (one Event each)
    held_by: str | None = None  # the account whose lane holds it during an outage
    secret_urls: CallbackUrls | None = None  # the URLs last read from the Secrets the spec names
    # The generation this process last warned of a user name or password in a literal URL (one Warning per
    # generation and process, not one per re-check).
    warned_generation: int | None = None

    def apply(self, update: StateUpdate) -> None:
        """A plan's bookkeeping: the one place a plan changes this record."""
        if update.attempts is not None:
            self.attempts = update.attempts
        if update.settle_forced:
            self.secret_changed = self.drifted = False
        if update.unavailable_episode is not None:
            self.unavailable_episode = update.unavailable_episode
        if update.warned:
            self.warned_generation = self.snapshot.generation
        if update.read_examined is not None:
            self.read_examined = update.read_examined
        if update.drifted:
            self.drifted = True

    def seen_again(self, snapshot: Snapshot, status: PhoneWebhookStatus) -> tuple[Claim | None, bool]:
        """A newer version of the object, from the watch: the claim it let go of (switched to Observe, it
        manages the number no more), and whether it must be decided again."""
        old, self.snapshot = self.snapshot, snapshot
        released = old.claim if old.claim is not None and snapshot.claim is None else None
        if self.status_from_watch:
            self.status = status
        if old.triggers == snapshot.triggers:
            return released, False
        if old.drift_interval != snapshot.drift_interval:
            self.drift_due = None  # scheduled anew with the new interval
        self.epoch += 1
        return released, True


def wanted_urls(state: ObjectState) -> CallbackUrls | None:
    """The URLs the object wants CAMS to hold (None: they come from Secrets not read yet)."""
    spec = state.snapshot.spec
    if spec is None:
        return None
    return state.secret_urls if callback_urls.secret_names(spec) else callback_urls.literal(spec)


class States(dict[Key, ObjectState]):
    """Every object's state record, by key: forgetting an object is one removal. The queries say which
    objects a change outside them (an account, a namespace, STS) concerns, and which claim a number."""

    def __init__(self) -> None:
        super().__init__()
        # Who claims each number, asked at every decision. Tuples: nearly every number has one claimant,
        # and a tuple of one costs a quarter of a set of one.
        self._claiming: dict[Claim, tuple[Key, ...]] = {}
        # Which objects name each account (DEFAULT: those that name none), so that a change to one account
        # re-decides only its objects, not every object. Sets: an account has many.
        self._naming: dict[AccountKey | str, set[Key]] = {}

    def __setitem__(self, key: Key, state: ObjectState) -> None:
        if (old := self.get(key)) is not None:
            self._unindex(key, old.snapshot)
        super().__setitem__(key, state)
        self._index(key, state.snapshot)

    def __delitem__(self, key: Key) -> None:
        self._unindex(key, self[key].snapshot)
        super().__delitem__(key)

    def _index(self, key: Key, snapshot: Snapshot) -> None:
        claim, account = snapshot.claim, _account_of(snapshot)
        if claim is not None and key not in (keys := self._claiming.get(claim, ())):
            self._claiming[claim] = (*keys, key)
        if account is not None:
            self._naming.setdefault(account, set()).add(key)

    def _unindex(self, key: Key, snapshot: Snapshot) -> None:
        claim, account = snapshot.claim, _account_of(snapshot)
        if claim is not None and key in (keys := self._claiming.get(claim, ())):
            if others := tuple(k for k in keys if k != key):
                self._claiming[claim] = others
            else:
                del self._claiming[claim]
        if account is not None and (naming := self._naming.get(account)) is not None:
            naming.discard(key)
            if not naming:
                del self._naming[account]

    def pop(self, key: Key, default: Any = None) -> Any:
        if key in self:
            state = self[key]
            del self[key]
            return state
        return default

    def seen_again(
        self, key: Key, snapshot: Snapshot, status: PhoneWebhookStatus
    ) -> tuple[Claim | None, bool]:
        """ObjectState.seen_again for the object `key`, with its claim indexed anew (Observe claims none)."""
        state = self[key]
        before = state.snapshot
        self._unindex(key, before)
        taken = state.seen_again(snapshot, status)
        self._index(key, state.snapshot)
        return taken

    def claimants(self, claim: Claim) -> list[Claimant]:
        """The objects that claim the number (Manage mode), and whether CAMS holds their spec while nothing
        refuses them: a refused object (of another team, say) that CAMS held once never keeps a number."""
        return [
            Claimant(
                s.snapshot.created,
                *key,
                applied=s.status.applied_fingerprint is not None and not refused(s.status),
            )
            for key in self._claiming.get(claim, ())
            if (s := self.get(key)) is not None
        ]

    def referring(self, key: AccountKey, *, default: bool) -> set[Key]:
        """The objects that name account `key`, or name none while it is (or was) the default."""
        return {*self._naming.get(key, ()), *(self._naming.get(DEFAULT, ()) if default else ())}

    def in_namespace(self, namespace: str) -> set[Key]:
        return {key for key in self if key[0] == namespace}

    def numbers(self) -> dict[tuple[str, str], LiveWebhook]:
        """What the last reads showed of each (space, number) the objects name, once per number (two
        objects of one number are one number). Copied in one step: metrics read it from their thread."""
        return {
            (s.snapshot.spec.cust_space_id, s.snapshot.spec.phone_number): s.status.live
            for s in tuple(self.values())
            if s.snapshot.spec is not None and s.status.live is not None and s.status.live.found
        }

    def with_reason(self, reason: str) -> set[Key]:
        """The objects with a condition that holds for `reason` (such as RRSAFailed)."""
        return {
            key
            for key, state in self.items()
            if any(c.reason == reason and c.status == "True" for c in state.status.conditions)
        }


def _account_of(snapshot: Snapshot) -> AccountKey | str | None:
    return named_account(snapshot.spec, snapshot.ref.namespace) if snapshot.spec is not None else None
