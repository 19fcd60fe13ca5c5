"""The controller: keeps the latest snapshot of every PhoneWebhook, queues the ones that need work, and
reconciles them with a pool of workers that share one token bucket per CAMS account.

kopf only feeds it (`observe`, `forget`, `secret_changed`); retries and pacing are decided here rather
than left to kopf's fixed 60-second handler retry, which knows nothing of the CAMS quota.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from cams_webhook_operator import credential_sources, reconcile
from cams_webhook_operator.api.models import (
    CLEAR_FINALIZER,
    CONDITION_TYPES,
    DRIFT_INTERVAL_ANNOTATION,
    PAUSED_ANNOTATION,
    RECONCILE_REQUEST_ANNOTATION,
    RELEASE_ANNOTATION,
    PhoneWebhookSpec,
    PhoneWebhookStatus,
)
from cams_webhook_operator.cams.client import (
    QUERY_PHONE_NUMBERS,
    UPDATE_PHONE_WEBHOOK,
    LiveNumber,
    WebhookUpdate,
)
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.cams.sts import RrsaConfig, RrsaError
from cams_webhook_operator.flow import AdaptiveRate, backoff_delay
from cams_webhook_operator.gate import AccountGate
from cams_webhook_operator.kube import ObjectRef, SecretData
from cams_webhook_operator.metrics import Metrics
from cams_webhook_operator.reconcile import Claimant
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.workqueue import WorkQueue

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Claim = tuple[str, str]  # (custSpaceId, phoneNumber)
ClaimantsOf = Callable[[Claim], Iterable[reconcile.Claimant]]


class Priority(enum.IntEnum):
    """Work queue and CAMS gate order: what users changed goes ahead of routine re-checks."""

    USER_CHANGE = 0  # a new object, a new generation, a changed Secret, and their retries
    ROUTINE = 1  # the long retry after a permanent refusal; periodic re-checks


class StatusWriter(Protocol):
    async def patch_status(self, ref: ObjectRef, status: PhoneWebhookStatus) -> bool: ...
    async def read_secret(self, namespace: str, name: str) -> SecretData | None: ...
    async def post_event(self, ref: ObjectRef, *, type_: Any, reason: str, message: str) -> None: ...
    async def add_finalizer(
        self, ref: ObjectRef, *, finalizer: str, current: list[str], resource_version: str
    ) -> None: ...
    async def remove_finalizer(self, ref: ObjectRef, *, finalizer: str, current: list[str]) -> None: ...


class WebhookApplier(Protocol):
    async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome: ...
    async def query_phone_numbers(
        self, cust_space_id: str, credentials: Credentials
    ) -> tuple[Outcome, dict[str, LiveNumber]]: ...


class TemporaryCredentialSource(Protocol):
    """RRSA: credentials the operator obtains and renews itself."""

    @property
    def config(self) -> RrsaConfig: ...
    async def credentials(self) -> Credentials: ...
    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    ref: ObjectRef
    generation: int
    created: str
    spec: Mapping[str, Any]
    status: PhoneWebhookStatus
    paused: bool = False
    reconcile_request: str | None = None
    deleting: bool = False
    released: bool = False  # may be deleted without clearing CAMS
    drift_interval: str | None = None  # the annotation's raw value
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""

    @property
    def triggers(self) -> tuple[object, ...]:
        """What, when it changes, needs a reconcile (our own status writes change none of it)."""
        return (
            self.generation,
            self.paused,
            self.reconcile_request,
            self.deleting,
            self.released,
            self.drift_interval,
        )

    @property
    def observe_only(self) -> bool:
        return self.spec.get("managementMode") == "Observe"

    @property
    def claim(self) -> Claim | None:
        """The number this object manages; an observer claims none (watching conflicts with no one)."""
        if self.observe_only:
            return None
        space, number = self.spec.get("custSpaceId"), self.spec.get("phoneNumber")
        return (space, number) if isinstance(space, str) and isinstance(number, str) else None

    @property
    def claimant(self) -> reconcile.Claimant:
        return reconcile.Claimant(self.created, self.ref.namespace, self.ref.name)

    @property
    def secret_name(self) -> str | None:
        ref = self.spec.get("credentialsSecretRef")
        return ref.get("name") if isinstance(ref, Mapping) else None


_RESULTS = {
    Verdict.OK: "applied",
    Verdict.THROTTLED: "throttled",
    Verdict.TRANSIENT: "transient",
    Verdict.PERMANENT: "refused",
}


def _status_of(body: Mapping[str, Any]) -> PhoneWebhookStatus:
    try:
        return PhoneWebhookStatus.model_validate(body.get("status") or {})
    except ValidationError:
        # Someone wrote a status we cannot read: start from scratch rather than never reconcile.
        return PhoneWebhookStatus()


def _is_true(annotation: str | None) -> bool:
    return (annotation or "").strip().lower() == "true"


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Controller:
    def __init__(
        self,
        *,
        settings: OperatorSettings,
        cams: WebhookApplier,
        kube: StatusWriter,
        wall_clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        claimants_of: ClaimantsOf | None = None,
        drift_tick: float = 1.0,
        rrsa: TemporaryCredentialSource | None = None,
    ) -> None:
        """`claimants_of` lists the objects that claim a number. The operator passes a kopf index, which
        kopf fills from the initial listing before it reports any object, so that after a restart a later
        claimant is never applied before the earlier one has been seen. By default: the known snapshots."""
        self._settings = settings
        self._cams = cams
        self._kube = kube
        self._now = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._queue: WorkQueue[Key] = WorkQueue()
        self._objects: dict[Key, Snapshot] = {}
        # The status this operator last wrote, which is newer than any watch event may yet show.
        self._written: dict[Key, PhoneWebhookStatus] = {}
        self._attempts: dict[Key, int] = defaultdict(int)
        self._dependents: dict[Key, set[Key]] = defaultdict(set)  # Secret key -> PhoneWebhook keys
        self._secrets: dict[Key, tuple[str | None, dict[str, str] | None]] = {}  # key -> (rv, data)
        self._secret_changed: set[Key] = set()  # PhoneWebhooks whose Secret changed since their last attempt
        self._gates: dict[str, AccountGate] = {}
        self._claimants_of = claimants_of or self._known_claimants
        self._rrsa = rrsa
        self._drift_tick = drift_tick
        self._drift_due: dict[Key, float] = {}  # loop time of each in-sync object's next drift check
        self._drift_checked: dict[Key, datetime] = {}  # checked, not yet written to status
        self._live: dict[Key, LiveNumber | None] = {}  # what CAMS held at the last read (None: not listed)
        self._drifted: set[Key] = set()  # CAMS no longer holds the spec: apply even though "in sync"
        self._operator_credentials = settings.operator_credentials()
        self.metrics = metrics or Metrics()
        self.metrics.watch_state(
            objects_by_condition=self._objects_by_condition, queue_depth=lambda: len(self._queue)
        )

    def _known_claimants(self, claim: Claim) -> list[reconcile.Claimant]:
        return [snapshot.claimant for snapshot in self._objects.values() if snapshot.claim == claim]

    def _objects_by_condition(self) -> dict[str, int]:
        # Every condition type starts at 0 so that a scrape always shows all of them, and any other type
        # (InSync on observed objects) is counted too rather than breaking the scrape.
        counts: dict[str, int] = dict.fromkeys(CONDITION_TYPES, 0)
        for key, snapshot in self._objects.items():
            for condition in self._written.get(key, snapshot.status).conditions:
                if condition.status == "True":
                    counts[condition.type] = counts.get(condition.type, 0) + 1
        return counts

    # --- fed by kopf -----------------------------------------------------------------------------------

    def observe(self, body: Mapping[str, Any]) -> None:
        """A PhoneWebhook was listed, added or modified."""
        meta = body["metadata"]
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        key: Key = (meta["namespace"], meta["name"])
        snapshot = Snapshot(
            ref=ObjectRef(namespace=key[0], name=key[1], uid=meta["uid"]),
            generation=int(meta.get("generation", 0)),
            created=str(meta.get("creationTimestamp", "")),
            spec=body.get("spec") or {},
            status=_status_of(body),
            paused=_is_true(annotations.get(PAUSED_ANNOTATION)),
            reconcile_request=annotations.get(RECONCILE_REQUEST_ANNOTATION) or None,
            deleting=meta.get("deletionTimestamp") is not None,
            released=_is_true(annotations.get(RELEASE_ANNOTATION)),
            drift_interval=annotations.get(DRIFT_INTERVAL_ANNOTATION),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
        )
        old = self._objects.get(key)
        if old is not None and old.ref.uid != snapshot.ref.uid:
            self.forget(*key)
            old = None
        self._objects[key] = snapshot
        self._index_secret(key, old, snapshot)
        if old is None or old.triggers != snapshot.triggers:
            self._queue.add(key, Priority.USER_CHANGE)

    def forget(self, namespace: str, name: str) -> None:
        """A PhoneWebhook was deleted."""
        key = (namespace, name)
        old = self._objects.pop(key, None)
        if old is not None:
            self._index_secret(key, old, None)
            if old.claim is not None:
                # The number is free: whoever claimed it next takes over.
                for claimant in self._claimants_of(old.claim):
                    if (claimant.namespace, claimant.name) != key:
                        self._queue.add((claimant.namespace, claimant.name), Priority.USER_CHANGE)
        self._written.pop(key, None)
        self._attempts.pop(key, None)
        self._secret_changed.discard(key)
        self._drift_due.pop(key, None)
        self._drift_checked.pop(key, None)
        self._live.pop(key, None)
        self._drifted.discard(key)
        self._queue.forget(key)

    def secret_changed(self, namespace: str, name: str, resource_version: str | None) -> None:
        """A Secret was listed, added, modified or deleted (resource_version None)."""
        key = (namespace, name)
        cached = self._secrets.get(key)
        if cached is not None and cached[0] == resource_version:
            return  # the version we already read
        self._secrets.pop(key, None)
        for dependent in self._dependents.get(key, ()):
            self._attempts.pop(dependent, None)
            # Only a Secret read before counts as a change; the first sight of it is just a listing.
            if cached is not None:
                self._secret_changed.add(dependent)
            self._queue.add(dependent, Priority.USER_CHANGE)

    def _index_secret(self, key: Key, old: Snapshot | None, new: Snapshot | None) -> None:
        old_secret = old.secret_name if old else None
        new_secret = new.secret_name if new else None
        if old_secret == new_secret:
            return
        if old_secret is not None:
            secret_key = (key[0], old_secret)
            self._dependents[secret_key].discard(key)
            if not self._dependents[secret_key]:
                # No object names this Secret any more: forget it, and its data, entirely.
                del self._dependents[secret_key]
                self._secrets.pop(secret_key, None)
        if new_secret is not None:
            self._dependents[(key[0], new_secret)].add(key)

    # --- workers ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
        workers = [
            asyncio.create_task(self._work(), name=f"reconciler-{i}") for i in range(self._settings.workers)
        ]
        workers.append(asyncio.create_task(self._check_drift_forever(), name="drift-checks"))
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._queue.close()

    async def _work(self) -> None:
        while True:
            key, priority = await self._queue.get()
            try:
                await self.reconcile(key, Priority(priority))
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or the Kubernetes API failing: log it and try again later; never lose the object.
                self._attempts[key] += 1
                delay = self._backoff(key)
                logger.exception("Reconcile of %s/%s failed; retrying in %.1fs", *key, delay)
                self._queue.add_after(key, delay, priority)
            finally:
                self._queue.done(key)

    def _backoff(self, key: Key) -> float:
        return backoff_delay(
            attempt=max(1, self._attempts[key]),
            base=self._settings.retry_base_seconds,
            cap=self._settings.retry_max_seconds,
            jitter=self._rng.random() if self._settings.retry_jitter else 1.0,
        )

    async def _credentials(
        self, snapshot: Snapshot
    ) -> tuple[Credentials | credential_sources.CredentialProblem, str]:
        secret = snapshot.secret_name
        if secret is None:
            # The operator's own: its AccessKey from the environment, else RRSA's temporary credentials.
            if self._operator_credentials is None and self._rrsa is not None:
                source = f"rrsa:{self._rrsa.config.role_arn}"
                try:
                    return await self._rrsa.credentials(), source
                except RrsaError as exc:
                    return credential_sources.CredentialProblem("RRSAFailed", str(exc), exc.transient), source
            operator = credential_sources.from_operator(self._operator_credentials)
            return operator, credential_sources.OPERATOR_SOURCE
        key = (snapshot.ref.namespace, secret)
        if key not in self._secrets:
            read = await self._kube.read_secret(*key)
            self._secrets[key] = (read.resource_version, read.data) if read else (None, None)
        data = self._secrets[key][1]
        source = credential_sources.secret_source(*key)
        return credential_sources.from_secret(key[0], secret, data), source

    def _gate(self, account: str) -> AccountGate:
        gate = self._gates.get(account)
        if gate is None:
            limiter = AdaptiveRate.start(
                rate=self._settings.qps, burst=self._settings.burst, now=asyncio.get_running_loop().time()
            )
            gate = self._gates[account] = AccountGate(limiter, adaptive=self._settings.adaptive)
        return gate

    async def _write(self, key: Key, snapshot: Snapshot, status: PhoneWebhookStatus) -> None:
        current = self._written.get(key, snapshot.status)
        if status == current:
            return
        self._written[key] = status
        await self._kube.patch_status(snapshot.ref, status)

    async def reconcile(self, key: Key, priority: Priority = Priority.USER_CHANGE) -> None:
        snapshot = self._objects.get(key)
        if snapshot is None:
            return
        previous = self._written.get(key, snapshot.status)
        if key in self._drift_checked:
            previous = previous.model_copy(
                update={
                    "last_drift_check_time": self._drift_checked.pop(key),
                    "live": reconcile.live_webhook(self._live.get(key)),
                }
            )
        now = self._now()
        try:
            spec = PhoneWebhookSpec.model_validate(snapshot.spec)
        except ValidationError as exc:
            # The API server's rules should have refused this; it may predate them.
            problems = "; ".join(str(error["msg"]) for error in exc.errors())
            if snapshot.deleting:
                await self._release(
                    snapshot, "NotCleared", f"Deleted without clearing CAMS: invalid spec ({problems})"
                )
                return
            await self._stall(key, snapshot, previous, "InvalidSpec", f"The spec is invalid: {problems}")
            return

        if snapshot.deleting:
            await self._finalize(key, snapshot, previous, spec, priority)
            return
        if snapshot.paused:
            self.metrics.reconciles.labels("paused").inc()
            await self._write(
                key,
                snapshot,
                reconcile.status_paused(
                    previous=previous, generation=snapshot.generation, now=now, annotation=PAUSED_ANNOTATION
                ),
            )
            return

        if spec.management_mode == "Observe":
            await self._keep_finalizer(snapshot, wanted=False)  # nothing of ours to clear
            await self._observe_only(key, snapshot, previous, spec)
            return
        await self._keep_finalizer(snapshot, wanted=spec.deletion_policy == "Clear")
        winner = self._owner(spec)
        if winner is not None and (winner.namespace, winner.name) != key:
            message = reconcile.conflict_message(
                winner=winner, space=spec.cust_space_id, phone_number=spec.phone_number
            )
            await self._stall(key, snapshot, previous, "Conflict", message)
            return

        credentials, source = await self._credentials(snapshot)
        if isinstance(credentials, credential_sources.CredentialProblem):
            if credentials.transient:
                await self._retry_later(key, snapshot, previous, credentials, priority)
                return
            await self._stall(key, snapshot, previous, credentials.reason, credentials.message)
            if credentials.reason == "RRSAFailed":
                # Fixed outside Kubernetes (a trust policy, a new token): no event tells us, so look again.
                self._queue.add_after(key, self._settings.retry_max_seconds, Priority.ROUTINE)
            return

        account = reconcile.account_identity(credentials, source=source)
        request = snapshot.reconcile_request
        if request == previous.last_handled_reconcile_at:
            request = None  # handled already
        update = reconcile.webhook_update(spec)
        digest = reconcile.fingerprint(update, account=account)
        decision = reconcile.decide(
            fingerprint=digest,
            status=previous,
            now=now,
            permanent_retry=timedelta(seconds=self._settings.permanent_retry_seconds),
            secret_changed=key in self._secret_changed,
            reconcile_requested=request is not None or key in self._drifted,
        )
        if decision.action is reconcile.Action.IN_SYNC:
            self.metrics.reconciles.labels("in_sync").inc()
            self._attempts.pop(key, None)
            self._secret_changed.discard(key)  # the new Secret changes nothing CAMS holds
            self._schedule_drift_check(key, snapshot)
            await self._write(
                key,
                snapshot,
                reconcile.status_in_sync(
                    previous=previous, generation=snapshot.generation, phone_number=spec.phone_number, now=now
                ),
            )
            return
        if decision.action is reconcile.Action.WAIT:
            assert decision.not_before is not None
            self.metrics.reconciles.labels("waiting").inc()
            await self._write(key, snapshot, reconcile.with_generation(previous, snapshot.generation))
            self._queue.add_after(key, (decision.not_before - now).total_seconds(), Priority.ROUTINE)
            return

        outcome = await self._call(key, snapshot, account, priority, update, credentials)
        if outcome is None:
            return
        if outcome.reason == "InvalidSecurityToken" and self._rrsa is not None and source.startswith("rrsa:"):
            # RRSA's credentials are ours to renew: a refused token means exchange again, not stall.
            self._rrsa.invalidate()
            outcome = Outcome(Verdict.TRANSIENT, outcome.reason, outcome.answer)
        await self._record(key, snapshot, previous, spec, digest, outcome, priority, request)

    # --- drift ------------------------------------------------------------------------------------------

    def _schedule_drift_check(self, key: Key, snapshot: Snapshot) -> None:
        interval = reconcile.drift_interval(
            snapshot.drift_interval, default=self._settings.drift_interval_seconds
        )
        if interval is None:
            self._drift_due.pop(key, None)
        else:
            # Spread by +-10 % so objects applied together are not all checked at the same second.
            jitter = 0.9 + 0.2 * self._rng.random()
            self._drift_due[key] = asyncio.get_running_loop().time() + interval * jitter

    async def _check_drift_forever(self) -> None:
        while True:
            await asyncio.sleep(self._drift_tick)
            try:
                await self._check_due_spaces()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Drift check failed; trying again at the next tick")

    async def _check_due_spaces(self) -> None:
        """Read each space that has an object due, once, and compare every scheduled object of that space:
        one QueryChatappPhoneNumbers per space and period, never one per object."""
        now = asyncio.get_running_loop().time()
        groups: dict[tuple[str | None, str], list[Key]] = defaultdict(list)
        for key in self._drift_due:
            snapshot = self._objects.get(key)
            space = snapshot.spec.get("custSpaceId") if snapshot is not None else None
            if snapshot is not None and isinstance(space, str):
                groups[(snapshot.secret_name and f"{key[0]}/{snapshot.secret_name}", space)].append(key)
        for (_, space), keys in groups.items():
            if min(self._drift_due[key] for key in keys) <= now:
                await self._check_space(space, keys)

    async def _check_space(self, space: str, keys: list[Key]) -> None:
        snapshot = self._objects[keys[0]]
        credentials, source = await self._credentials(snapshot)
        if isinstance(credentials, credential_sources.CredentialProblem):
            for key in keys:  # the next reconcile of each object reports the problem
                self._drift_due.pop(key, None)
                self._queue.add(key, Priority.ROUTINE)
            return
        account = reconcile.account_identity(credentials, source=source)
        # Reads have their own quota in CAMS, so their own gate; they never wait behind or delay updates.
        gate = self._gate(f"{account}|{QUERY_PHONE_NUMBERS}")
        await gate.acquire(Priority.ROUTINE)
        outcome, live = await self._cams.query_phone_numbers(space, credentials)
        code = outcome.answer.code if outcome.answer and outcome.answer.code else "NoAnswer"
        self.metrics.cams_calls.labels(QUERY_PHONE_NUMBERS, code).inc()
        if outcome.verdict is not Verdict.OK:
            if outcome.verdict is Verdict.THROTTLED:
                gate.throttled()
            logger.warning("Drift check of space %s failed (%s); trying again later", space, code)
            retry = asyncio.get_running_loop().time() + min(
                60.0, self._settings.drift_interval_seconds or 60.0
            )
            for key in keys:
                self._drift_due[key] = retry
            return
        checked_at = self._now()
        for key in keys:
            current = self._objects.get(key)
            if current is None:
                continue
            self._schedule_drift_check(key, current)
            try:
                spec = PhoneWebhookSpec.model_validate(current.spec)
            except ValidationError:
                continue
            self._drift_checked[key] = checked_at
            self._live[key] = live.get(spec.phone_number)
            drifted = reconcile.drifted_fields(spec, live.get(spec.phone_number))
            if drifted and spec.management_mode == "Manage":
                self._drifted.add(key)
                self.metrics.drift_detected.inc()
                changed = ", ".join(drifted)
                message = (
                    f"CAMS no longer holds this spec ({changed} changed outside Kubernetes); re-applying"
                )
                logger.warning("Drift of %s for %s/%s: %s", spec.phone_number, *key, message)
                await self._kube.post_event(
                    current.ref, type_="Warning", reason="DriftDetected", message=message
                )
            # Re-applied behind users' changes; either way the check time reaches the status.
            self._queue.add(key, Priority.ROUTINE)

    async def _observe_only(
        self, key: Key, snapshot: Snapshot, previous: PhoneWebhookStatus, spec: PhoneWebhookSpec
    ) -> None:
        """Observe mode: never UpdatePhoneWebhook; report what the space's shared reads show."""
        now = self._now()
        if key not in self._live:
            self._drift_due[key] = 0.0  # read at the next tick, with the rest of its space
            await self._write(
                key,
                snapshot,
                reconcile.status_observing(previous=previous, generation=snapshot.generation, now=now),
            )
            return
        live = self._live[key]
        self._schedule_drift_check(key, snapshot)
        status = reconcile.status_observed(
            previous=previous,
            generation=snapshot.generation,
            now=now,
            phone_number=spec.phone_number,
            live=live,
            drifted=reconcile.drifted_fields(spec, live),
        )
        await self._write(key, snapshot, status)

    def _owner(self, spec: PhoneWebhookSpec) -> Claimant | None:
        return reconcile.owner(self._claimants_of((spec.cust_space_id, spec.phone_number)))

    async def _call(
        self,
        key: Key,
        snapshot: Snapshot,
        account: str,
        priority: Priority,
        update: WebhookUpdate,
        credentials: Credentials,
    ) -> Outcome | None:
        """One UpdatePhoneWebhook call through the account's gate; None if the object changed meanwhile."""
        gate = self._gate(account)
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await gate.acquire(priority)
        self.metrics.limiter_wait.observe(loop.time() - asked)
        current = self._objects.get(key)
        if current is None or current.triggers != snapshot.triggers:
            # Deleted, or changed in a way that re-queued it, while waiting for a slot: that newer reconcile
            # acts. (Changes that trigger nothing, such as our own finalizer, must not stop this one.)
            gate.limiter.refund()
            self.metrics.reconciles.labels("skipped").inc()
            return None
        started = loop.time()
        outcome = await self._cams.update_phone_webhook(update, credentials)
        self._count_call(outcome, loop.time() - started)
        if outcome.verdict is Verdict.THROTTLED:
            gate.throttled()
        return outcome

    async def _keep_finalizer(self, snapshot: Snapshot, *, wanted: bool) -> None:
        """Hold the finalizer exactly while deletionPolicy is Clear: a Retain object never waits on us."""
        held = CLEAR_FINALIZER in snapshot.finalizers
        if wanted and not held:
            await self._kube.add_finalizer(
                snapshot.ref,
                finalizer=CLEAR_FINALIZER,
                current=list(snapshot.finalizers),
                resource_version=snapshot.resource_version,
            )
        elif held and not wanted:
            await self._kube.remove_finalizer(
                snapshot.ref, finalizer=CLEAR_FINALIZER, current=list(snapshot.finalizers)
            )

    async def _release(self, snapshot: Snapshot, reason: str, message: str) -> None:
        """Let a deleted object go: drop our finalizer (if we hold it) and say why."""
        if CLEAR_FINALIZER not in snapshot.finalizers:
            return
        await self._kube.remove_finalizer(
            snapshot.ref, finalizer=CLEAR_FINALIZER, current=list(snapshot.finalizers)
        )
        logger.info("%s: %s/%s", message, snapshot.ref.namespace, snapshot.ref.name)
        await self._kube.post_event(snapshot.ref, type_="Normal", reason=reason, message=message)

    async def _finalize(
        self,
        key: Key,
        snapshot: Snapshot,
        previous: PhoneWebhookStatus,
        spec: PhoneWebhookSpec,
        priority: Priority,
    ) -> None:
        """deletionPolicy Clear: clear the webhook in CAMS, then let the object go."""
        if CLEAR_FINALIZER not in snapshot.finalizers:
            return  # Retain, or already released: Kubernetes deletes it without us
        winner = self._owner(spec)
        if snapshot.released:
            await self._release(
                snapshot,
                "Released",
                f"Deleted without clearing CAMS, as the annotation {RELEASE_ANNOTATION} asks",
            )
            return
        if winner is not None and (winner.namespace, winner.name) != key:
            await self._release(
                snapshot, "NotCleared", "Deleted without clearing CAMS: another object manages the number"
            )
            return
        if previous.applied_fingerprint is None:
            await self._release(
                snapshot, "NotCleared", "Deleted without clearing CAMS: it never held this spec"
            )
            return
        if snapshot.paused:
            status = reconcile.status_paused(
                previous=previous,
                generation=snapshot.generation,
                now=self._now(),
                annotation=PAUSED_ANNOTATION,
            )
            await self._write(key, snapshot, status)
            return
        credentials, source = await self._credentials(snapshot)
        if isinstance(credentials, credential_sources.CredentialProblem):
            message = (
                f"Cannot clear the webhook before deletion: {credentials.message}; {reconcile.RELEASE_HINT}"
            )
            await self._stall(key, snapshot, previous, credentials.reason, message)
            return
        account = reconcile.account_identity(credentials, source=source)
        update = reconcile.clearing_update(spec)
        outcome = await self._call(key, snapshot, account, priority, update, credentials)
        if outcome is None:
            return
        if outcome.verdict is Verdict.OK:
            await self._release(
                snapshot, "Cleared", f"Cleared the webhook of {spec.phone_number} in CAMS before deletion"
            )
            return
        digest = reconcile.fingerprint(update, account=account)
        await self._record(key, snapshot, previous, spec, digest, outcome, priority, None, clearing=True)

    def _count_call(self, outcome: Outcome, seconds: float) -> None:
        code = outcome.answer.code if outcome.answer and outcome.answer.code else "NoAnswer"
        self.metrics.cams_calls.labels(UPDATE_PHONE_WEBHOOK, code).inc()
        self.metrics.cams_call_duration.labels(UPDATE_PHONE_WEBHOOK).observe(seconds)
        self.metrics.reconciles.labels(_RESULTS[outcome.verdict]).inc()
        if outcome.verdict is Verdict.THROTTLED:
            self.metrics.cams_throttled.inc()

    async def _record(
        self,
        key: Key,
        snapshot: Snapshot,
        previous: PhoneWebhookStatus,
        spec: PhoneWebhookSpec,
        digest: str,
        outcome: Outcome,
        priority: Priority,
        reconcile_request: str | None,
        *,
        clearing: bool = False,
    ) -> None:
        now = self._now()
        retry_at: datetime | None = None
        if outcome.verdict in (Verdict.OK, Verdict.PERMANENT):
            # Only an answer for good settles why this call was forced; a throttled one must try again.
            self._secret_changed.discard(key)
            self._drifted.discard(key)
        if outcome.verdict is Verdict.OK:
            self._attempts.pop(key, None)
            if not clearing:
                self._schedule_drift_check(key, snapshot)
        elif outcome.verdict is Verdict.PERMANENT:
            self._attempts.pop(key, None)
            retry_at = now + timedelta(seconds=self._settings.permanent_retry_seconds)
        else:
            self._attempts[key] += 1
            retry_at = now + timedelta(seconds=self._backoff(key))
        status = reconcile.status_after_outcome(
            previous=previous,
            generation=snapshot.generation,
            phone_number=spec.phone_number,
            fingerprint=digest,
            outcome=outcome,
            now=now,
            retry_at=retry_at,
            reconcile_request=reconcile_request,
            clearing=clearing,
        )
        if retry_at is not None:
            retry_priority = Priority.ROUTINE if outcome.verdict is Verdict.PERMANENT else priority
            self._queue.add_after(key, (retry_at - now).total_seconds(), retry_priority)
        await self._write(key, snapshot, status)
        ready = status.conditions[0]
        if outcome.verdict is Verdict.OK:
            logger.info("Applied webhook of %s for %s/%s", spec.phone_number, *key)
            await self._kube.post_event(snapshot.ref, type_="Normal", reason="Applied", message=ready.message)
        elif outcome.verdict is not Verdict.THROTTLED or self._attempts[key] == 1:
            # Throttling is reported once per episode: one Event per retry would flood the API at scale.
            logger.warning("Webhook of %s for %s/%s not applied: %s", spec.phone_number, *key, ready.message)
            await self._kube.post_event(
                snapshot.ref, type_="Warning", reason=ready.reason, message=ready.message
            )

    async def _retry_later(
        self,
        key: Key,
        snapshot: Snapshot,
        previous: PhoneWebhookStatus,
        problem: credential_sources.CredentialProblem,
        priority: Priority,
    ) -> None:
        """No credentials for now, for a reason that may pass (STS unreachable): back off and try again."""
        self._attempts[key] += 1
        delay = self._backoff(key)
        now = self._now()
        status = reconcile.status_retrying(
            previous=previous,
            generation=snapshot.generation,
            reason=problem.reason,
            message=problem.message,
            now=now,
            retry_at=now + timedelta(seconds=delay),
        )
        self._queue.add_after(key, delay, priority)
        await self._write(key, snapshot, status)
        if self._attempts[key] == 1:
            logger.warning("No credentials for %s/%s yet: %s", *key, problem.message)
            await self._kube.post_event(
                snapshot.ref, type_="Warning", reason=problem.reason, message=problem.message
            )

    async def _stall(
        self, key: Key, snapshot: Snapshot, previous: PhoneWebhookStatus, reason: str, message: str
    ) -> None:
        status = reconcile.status_stalled(
            previous=previous, generation=snapshot.generation, reason=reason, message=message, now=self._now()
        )
        already = previous.observed_generation == snapshot.generation and any(
            c.type == "Stalled" and c.status == "True" and c.reason == reason for c in previous.conditions
        )
        self.metrics.reconciles.labels("stalled").inc()
        await self._write(key, snapshot, status)
        if not already:
            logger.warning("Cannot apply webhook for %s/%s: %s", *key, message)
            await self._kube.post_event(snapshot.ref, type_="Warning", reason=reason, message=message)
