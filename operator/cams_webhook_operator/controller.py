"""The controller: one state record per PhoneWebhook, a work queue of keys, workers that decide what each
object needs (reconcile.py) and carry the plan out, and one lane per CAMS account where calls wait for
their slot (lanes.py).

kopf only feeds it (`observe`, `forget`, `secret_changed`). A worker never waits for CAMS's quota: an
object that needs a call leaves a ticket in its account's lane and the worker moves on; the lane makes
the call when the account's turn comes and hands the answer back to `finish`. A key stays in the work
queue's hands until then, so an object is never decided twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cams_webhook_operator import reconcile
from cams_webhook_operator.api.models import CONDITION_TYPES
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import UPDATE_PHONE_WEBHOOK, LiveNumber, WebhookUpdate
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.credential_sources import (
    CredentialResolver,
    TemporaryCredentialSource,
    account_label,
)
from cams_webhook_operator.drift import DriftChecker
from cams_webhook_operator.flow import AdaptiveRate, Breaker
from cams_webhook_operator.lanes import AccountLane
from cams_webhook_operator.metrics import Metrics
from cams_webhook_operator.reconcile import DriftAction, Event, Facts, Plan, Priority
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.state import Claim, Claimant, Key, ObjectState, Snapshot, status_of
from cams_webhook_operator.workqueue import WorkQueue
from cams_webhook_operator.writer import Kube, ObjectWriter

logger = logging.getLogger(__name__)
ClaimantsOf = Callable[[Claim], Iterable[Claimant]]


class WebhookApplier(Protocol):
    async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome: ...
    async def query_phone_numbers(
        self, cust_space_id: str, credentials: Credentials
    ) -> tuple[Outcome, dict[str, LiveNumber]]: ...


@dataclass(slots=True, eq=False)
class CallTicket:
    """An object's call, waiting in its account's lane."""

    key: Key
    uid: str
    flow: str  # the fairness key: the namespace, a tenant
    priority: int
    epoch: int  # the object's epoch when decided: a later change makes the ticket stale
    call: reconcile.Call
    queued_at: float
    probe: bool = False

    @classmethod
    def of(cls, state: ObjectState, call: reconcile.Call) -> CallTicket:
        ref, now = state.snapshot.ref, asyncio.get_running_loop().time()
        return cls(state.snapshot.key, ref.uid, ref.namespace, call.priority, state.epoch, call, now)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Controller:
    def __init__(
        self,
        *,
        settings: OperatorSettings,
        cams: WebhookApplier,
        kube: Kube,
        wall_clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        claimants_of: ClaimantsOf | None = None,
        drift_tick: float = 1.0,
        rrsa: TemporaryCredentialSource | None = None,
    ) -> None:
        """`claimants_of` lists the objects that claim a number. The operator passes a kopf index, which
        kopf fills from the initial listing before it reports any object, so that after a restart a later
        claimant is never applied before the earlier one has been seen. By default: the known objects."""
        self._settings = settings
        self._cams = cams
        self._write = ObjectWriter(kube)
        self._now = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._queue: WorkQueue[Key] = WorkQueue()
        self._states: dict[Key, ObjectState] = {}
        self._lanes: dict[str, AccountLane[CallTicket]] = {}
        self._claimants_of = claimants_of or self._known_claimants
        operator = settings.operator_credentials()
        self._resolver = CredentialResolver(operator=operator, rrsa=rrsa, read_secret=kube.read_secret)
        self.metrics = metrics or Metrics()
        self._drift = DriftChecker(
            states=self._states,
            cams=cams,
            resolver=self._resolver,
            default_interval=settings.drift_interval_seconds,
            rate=settings.qps,
            metrics=self.metrics,
            reconcile=lambda key: self._queue.add(key, Priority.ROUTINE),
            report=self._report_drift,
            wall_clock=wall_clock,
            rng=self._rng,
            tick=drift_tick,
        )
        # Scrapes run in the metrics server's thread while the event loop changes these maps: each is
        # copied in one step (tuple() of a dict view holds the GIL throughout) before it is read.
        self.metrics.watch_state(
            objects_by_condition=self._objects_by_condition,
            queue_depth=lambda: len(self._queue),
            calls_waiting=lambda: sum(lane.waiting for lane in tuple(self._lanes.values())),
            accounts_unavailable=lambda: sum(1 for lane in tuple(self._lanes.values()) if lane.outage),
        )

    def _known_claimants(self, claim: Claim) -> list[Claimant]:
        return [s.snapshot.claimant for s in self._states.values() if s.snapshot.claim == claim]

    def _objects_by_condition(self) -> dict[str, int]:
        # Every condition type is shown, at 0 when no object has it True.
        counts: Counter[str] = Counter(dict.fromkeys(CONDITION_TYPES, 0))
        for state in tuple(self._states.values()):
            counts.update(c.type for c in state.status.conditions if c.status == "True")
        return dict(counts)

    # --- fed by kopf ------------------------------------------------------------------------------------

    def observe(self, body: Mapping[str, Any]) -> None:
        """A PhoneWebhook was listed, added or modified."""
        snapshot = Snapshot.of(body)
        key = snapshot.key
        state = self._states.get(key)
        if state is not None and state.snapshot.ref.uid != snapshot.ref.uid:
            self.forget(*key)  # deleted and created again under the same name
            state = None
        if state is None:
            self._states[key] = ObjectState(snapshot, status_of(body))
            self._resolver.track(key, old=None, new=snapshot.secret_name)
            self._queue.add(key, Priority.CHANGE)
            return
        old, state.snapshot = state.snapshot, snapshot
        if state.status_from_watch:
            state.status = status_of(body)
        self._resolver.track(key, old=old.secret_name, new=snapshot.secret_name)
        if old.triggers != snapshot.triggers:
            if old.drift_interval != snapshot.drift_interval:
                state.drift_due = None  # scheduled anew with the new interval
            state.epoch += 1
            self._queue.add(key, Priority.CHANGE)

    def forget(self, namespace: str, name: str) -> None:
        """A PhoneWebhook was deleted."""
        key = (namespace, name)
        self._queue.forget(key)
        state = self._states.pop(key, None)
        if state is None:
            return
        self._resolver.track(key, old=state.snapshot.secret_name, new=None)
        if state.held_by is not None:
            self._lanes[state.held_by].forget(key)
        if (claim := state.snapshot.claim) is not None:
            # The number is free: whoever claimed it next takes over.
            for claimant in self._claimants_of(claim):
                if (claimant.namespace, claimant.name) != key:
                    self._queue.add((claimant.namespace, claimant.name), Priority.CHANGE)

    def secret_changed(self, namespace: str, name: str, resource_version: str | None) -> None:
        """A Secret was listed, added, modified or deleted (resource_version None)."""
        dependents, changed = self._resolver.secret_changed(namespace, name, resource_version)
        for key in dependents:
            if (state := self._states.get(key)) is not None:
                state.attempts, state.epoch = 0, state.epoch + 1
                state.secret_changed |= changed
                self._queue.add(key, Priority.CHANGE)

    # --- workers ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
        tasks = [asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(self._settings.workers)]
        tasks.append(asyncio.create_task(self._drift.run(), name="drift-checks"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(lane.close() for lane in self._lanes.values()))
            self._queue.close()

    async def _work(self) -> None:
        while True:
            key, priority = await self._queue.get()
            in_lane = False
            try:
                in_lane = await self.reconcile(key, Priority(priority))
            except asyncio.CancelledError:
                raise
            except Exception:
                self._retry_after_error(key, Priority(priority), "Reconcile")
            finally:
                if not in_lane:
                    self._queue.done(key)

    def _retry_after_error(self, key: Key, priority: Priority, what: str) -> None:
        """A bug or the Kubernetes API failing: log it and try again later; never lose the object."""
        state = self._states.get(key)
        attempts = state.attempts + 1 if state else 1
        if state is not None:
            state.attempts = attempts
        delay = reconcile.retry_delay(attempts, jitter=self._jitter(), settings=self._settings)
        logger.exception("%s of %s/%s failed; retrying in %.1fs", what, *key, delay)
        self._queue.add_after(key, delay, priority)

    async def reconcile(self, key: Key, priority: Priority = Priority.CHANGE) -> bool:
        """Decide what one object needs and carry it out; True when its call went to its account's lane
        (which then owns the key until `finish`)."""
        state = self._states.get(key)
        if state is None:
            return False
        facts = await self._facts(state, priority)
        decided = reconcile.plan(state, facts, self._settings)
        await self._carry_out(state, decided)
        if decided.call is None:
            return False
        lane = self._lane(decided.call.resolved.account)
        ticket = CallTicket.of(state, decided.call)
        if lane.offer(ticket):
            return True
        outage = lane.outage
        assert outage is not None
        await self._carry_out(state, reconcile.unavailable(state, facts, outage), ticket=ticket)
        return False

    async def _facts(self, state: ObjectState, priority: Priority, *, with_credentials: bool = True) -> Facts:
        snapshot = state.snapshot
        credentials = None
        if with_credentials and reconcile.needs_credentials(snapshot):
            credentials = await self._resolver.resolve(snapshot.ref.namespace, snapshot.secret_name)
        claim = snapshot.claim
        return Facts(
            now=self._now(),
            priority=priority,
            owner=reconcile.owner(self._claimants_of(claim)) if claim else None,
            credentials=credentials,
            jitter=self._jitter(),
        )

    def _jitter(self) -> float:
        return self._rng.random() if self._settings.retry_jitter else 1.0

    async def _carry_out(self, state: ObjectState, plan: Plan, *, ticket: CallTicket | None = None) -> None:
        """The one place where a plan happens. The bookkeeping comes first: should a write to the API
        server fail below, the next plan must not repeat a call that CAMS already answered."""
        snapshot = state.snapshot
        if plan.attempts is not None:
            state.attempts = plan.attempts
        if plan.settle_forced:
            state.secret_changed = state.drifted = False
        if plan.unavailable_episode is not None:
            state.unavailable_episode = plan.unavailable_episode
        if plan.hold and ticket is not None:
            state.held_by = ticket.call.resolved.account
            self._lanes[state.held_by].hold(snapshot.key, ticket.priority)
        if plan.drift is not DriftAction.KEEP:
            if plan.drift is DriftAction.STOP:
                state.drift_due = None
            else:
                self._drift.schedule(state, now=plan.drift is DriftAction.NOW)
        if plan.requeue_after is not None:
            self._queue.add_after(snapshot.key, plan.requeue_after, plan.requeue_priority)
        if plan.result is not None:
            self.metrics.reconciles.labels(plan.result).inc()
        if plan.finalizer is not None:
            await self._write.finalizer(state, plan.finalizer)
        await self._write.status(state, plan.status or state.status)
        for event in plan.events:
            await self._write.event(state, event)

    async def _report_drift(self, state: ObjectState, drifted: list[str]) -> None:
        changed = ", ".join(drifted)
        message = f"CAMS no longer holds this spec ({changed} changed outside Kubernetes); re-applying"
        await self._write.event(state, Event("Warning", "DriftDetected", message))

    def _lane(self, account: str) -> AccountLane[CallTicket]:
        lane = self._lanes.get(account)
        if lane is None:
            s = self._settings
            limiter = AdaptiveRate.start(rate=s.qps, burst=s.burst, now=asyncio.get_running_loop().time())
            lane = self._lanes[account] = AccountLane(
                self,
                limiter=limiter,
                adaptive=s.adaptive,
                breaker=Breaker() if s.circuit_breaker else None,
                max_in_flight=s.max_in_flight,
                label=account_label(account),
            )
        return lane

    # --- what the lanes call back -----------------------------------------------------------------------

    def is_current(self, ticket: CallTicket) -> bool:
        state = self._states.get(ticket.key)
        return state is not None and state.epoch == ticket.epoch and state.snapshot.ref.uid == ticket.uid

    def give_back(self, ticket: CallTicket) -> None:
        self._queue.done(ticket.key)
        if ticket.key in self._states:
            self._queue.add(ticket.key, ticket.priority)

    def release(self, held: Iterable[tuple[Any, int]]) -> None:
        for key, priority in held:
            if (state := self._states.get(key)) is not None:
                state.held_by = None
                self._queue.add(key, priority)

    async def call(self, ticket: CallTicket) -> Outcome:
        loop = asyncio.get_running_loop()
        self.metrics.limiter_wait.observe(loop.time() - ticket.queued_at)
        started = loop.time()
        outcome = await self._cams.update_phone_webhook(ticket.call.update, ticket.call.resolved.credentials)
        self.metrics.count_call(UPDATE_PHONE_WEBHOOK, outcome, loop.time() - started)
        return outcome

    async def finish(self, ticket: CallTicket, outcome: Outcome) -> None:
        try:
            state = self._states.get(ticket.key)
            if state is None or state.snapshot.ref.uid != ticket.uid:
                return  # deleted (and perhaps created again) while the call was out
            if outcome.reason == "InvalidSecurityToken" and self._resolver.renew(ticket.call.resolved):
                # RRSA's credentials are ours to renew: a refused token means exchange again, not stall.
                outcome = Outcome(Verdict.TRANSIENT, outcome.reason, outcome.answer)
            facts = await self._facts(state, Priority(ticket.priority), with_credentials=False)
            outage = self._lanes[ticket.call.resolved.account].outage
            decided = reconcile.after_call(state, ticket.call, outcome, facts, self._settings, outage)
            await self._carry_out(state, decided, ticket=ticket)
        except Exception:
            self._retry_after_error(ticket.key, Priority(ticket.priority), "Recording CAMS's answer")
        finally:
            self._queue.done(ticket.key)
