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
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cams_webhook_operator import reconcile
from cams_webhook_operator.account_status import AccountStatusWriter
from cams_webhook_operator.cams.messages import UPDATE_PHONE_WEBHOOK
from cams_webhook_operator.cams.outcomes import Outcome, Verdict, no_answer
from cams_webhook_operator.claims import ClaimStore
from cams_webhook_operator.credential_sources import CredentialProblem, Resolved, account_label
from cams_webhook_operator.drift import CamsApi, DriftChecker
from cams_webhook_operator.flow import AdaptiveRate, Breaker
from cams_webhook_operator.lanes import AccountLane, CallTicket
from cams_webhook_operator.metrics import Metrics, objects_by_condition
from cams_webhook_operator.reconcile import DriftAction, Event, Facts, Plan, Priority
from cams_webhook_operator.resolver import CredentialResolver, TemporaryCredentialSource
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.state import (
    Claim,
    Claimant,
    Key,
    ObjectState,
    Snapshot,
    claimant_of,
    holder_id,
    status_of,
)
from cams_webhook_operator.tenancy import REFUSALS, Account, AccountKey, refers
from cams_webhook_operator.workqueue import WorkQueue
from cams_webhook_operator.writer import Kube, ObjectWriter

logger = logging.getLogger(__name__)
REFUSED_KEY = ("InvalidCredentials", "InvalidSecurityToken")  # reasons that a Secret may hold an old key
ClaimantsOf = Callable[[Claim], Iterable[Claimant]]


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Controller:
    def __init__(
        self,
        *,
        settings: OperatorSettings,
        cams: CamsApi,
        kube: Kube,
        wall_clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        claimants_of: ClaimantsOf | None = None,
        drift_tick: float = 1.0,
        rrsa: TemporaryCredentialSource | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        """`claimants_of` lists the objects that claim a number (Manage mode), and whether CAMS holds their
        spec. Who holds a number is the claim's Lease (claims.py); this list says whether a holder still
        claims it, and which object keeps a number that no Lease records yet. The operator passes a kopf
        index, which kopf fills from the initial listing before it reports any object, so that neither
        depends on the listing's order. By default: the known objects."""
        self._settings = settings
        self._leading = leading or (lambda: True)  # the leader election's verdict, asked before acting
        self._cams = cams
        self._write = ObjectWriter(kube)
        self._now = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._queue: WorkQueue[Key] = WorkQueue()
        self._states: dict[Key, ObjectState] = {}
        self._lanes: dict[str, AccountLane[CallTicket]] = {}
        self._quotas: dict[str, dict[str, float]] = {}  # lane -> credential source -> its quota
        self._claimants_of = claimants_of or self._known_claimants
        self._read_secret = kube.read_secret
        self._resolver = CredentialResolver.of(settings, rrsa=rrsa, read_secret=kube.read_secret)
        if rrsa is not None:
            rrsa.on_recovered = self._rrsa_recovered
        self._background: set[asyncio.Task[None]] = set()
        self._claims = ClaimStore(kube, grace=timedelta(seconds=settings.claim_grace_seconds), now=wall_clock)
        self._acting = False  # whether this replica's workers run (it leads): only then are claims written
        self._account_status = AccountStatusWriter(
            resolver=self._resolver, kube=kube, wall_clock=wall_clock, leading=self._leading
        )
        self.metrics = metrics or Metrics()
        self._drift = DriftChecker(
            states=self._states,
            cams=cams,
            resolver=self._resolver,
            settings=settings,
            metrics=self.metrics,
            reconcile=lambda key: self._queue.add(key, Priority.ROUTINE),
            report=self._report_drift,
            wall_clock=wall_clock,
            rng=self._rng,
            tick=drift_tick,
            leading=self._leading,
        )
        # Scrapes run in the metrics server's thread while the event loop changes these maps: each is
        # copied in one step (tuple() of a dict view holds the GIL throughout) before it is read.
        self.metrics.watch_state(
            objects_by_condition=lambda: objects_by_condition(s.status for s in tuple(self._states.values())),
            queue_depth=lambda: len(self._queue),
            calls_waiting=lambda: sum(lane.waiting for lane in tuple(self._lanes.values())),
            accounts_unavailable=lambda: sum(1 for lane in tuple(self._lanes.values()) if lane.outage),
        )

    def _known_claimants(self, claim: Claim) -> list[Claimant]:
        return [
            replace(s.snapshot.claimant, applied=s.status.applied_fingerprint is not None)
            for s in self._states.values()
            if s.snapshot.claim == claim
        ]

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
            self._queue.add(key, Priority.CHANGE)
            return
        old, state.snapshot = state.snapshot, snapshot
        if old.claim is not None and snapshot.claim is None:
            self._release_soon(old.claim, key)  # switched to Observe: it manages the number no more
        if state.status_from_watch:
            state.status = status_of(body)
        if old.triggers != snapshot.triggers:
            if old.drift_interval != snapshot.drift_interval:
                state.drift_due = None  # scheduled anew with the new interval
            self._read_again_if_refused(state)
            state.epoch += 1
            self._queue.add(key, Priority.CHANGE)

    def forget(self, namespace: str, name: str) -> None:
        """A PhoneWebhook was deleted."""
        key = (namespace, name)
        self._queue.forget(key)
        state = self._states.pop(key, None)
        if state is None:
            return
        self._resolver.forget(key)
        if state.held_by is not None:
            self._lanes[state.held_by].forget(key)
        if (claim := state.snapshot.claim) is not None:
            self._release_soon(claim, key)
            # The claim is released: the objects waiting for it are decided again (they may take it once
            # the grace period is over, unless this one is created again first).
            for claimant in self._claimants_of(claim):
                if (claimant.namespace, claimant.name) != key:
                    self._queue.add((claimant.namespace, claimant.name), Priority.CHANGE)

    def secret_changed(self, namespace: str, name: str, resource_version: str | None) -> None:
        """A Secret was read again (resource_version None: it does not exist)."""
        dependents, changed = self._resolver.secret_changed(namespace, name, resource_version)
        self._requeue(dependents, secret_changed=changed)
        self._account_status.secret_changed(namespace, name)

    def observe_account(self, body: Mapping[str, Any], kind: str) -> None:
        """A CamsAccount or ClusterCamsAccount was listed, added or modified."""
        account = Account.of(body, kind)
        was = self._resolver.accounts.get(account.key)
        self._requeue(self._resolver.observe_account(account) | self._referring(account.key, was, account))
        self._account_status.changed(account, body.get("status"))

    def forget_account(self, kind: str, namespace: str, name: str) -> None:
        key = AccountKey(kind, namespace, name)
        was = self._resolver.accounts.get(key)
        self._requeue(self._resolver.forget_account(key) | self._referring(key, was))
        self._account_status.forget(key)

    def namespace_changed(self, name: str, labels: Mapping[str, str] | None) -> None:
        """A namespace's labels (None: the namespace is gone): they decide which accounts admit it."""
        if self._resolver.namespace_labels(name, labels):
            self._requeue({key for key in self._states if key[0] == name})

    def _referring(self, key: AccountKey, *seen: Account | None) -> set[Key]:
        """The objects that name an account, or name none while it is (or was) the default."""
        default = any(account is not None and account.default for account in seen)
        return {
            k
            for k, s in self._states.items()
            if s.snapshot.spec and refers(s.snapshot.spec, k[0], key, default)
        }

    def _read_again_if_refused(self, state: ObjectState) -> None:
        """A refused read is tried again when the object or its account changed, not an hour later."""
        if state.read_refusal is not None:
            state.read_refusal = None
            self._drift.schedule(state, now=True)

    def _rrsa_recovered(self) -> None:
        """STS answers again: the objects that were refused RRSA credentials try again now."""
        self._requeue(
            key
            for key, state in self._states.items()
            if any(c.reason == "RRSAFailed" and c.status == "True" for c in state.status.conditions)
        )

    def _requeue(self, keys: Iterable[Key], *, secret_changed: bool = False) -> None:
        for key in keys:
            if (state := self._states.get(key)) is not None:
                self._read_again_if_refused(state)
                state.attempts, state.epoch = 0, state.epoch + 1
                state.secret_changed |= secret_changed
                self._queue.add(key, Priority.CHANGE)

    # --- workers ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
        self._acting = True
        await self._warm_claims()
        tasks = [asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(self._settings.workers)]
        tasks.append(asyncio.create_task(self._drift.run(), name="drift-checks"))
        tasks.append(asyncio.create_task(self._account_status.run(), name="account-status"))
        tasks.append(asyncio.create_task(self._refresh_secrets(), name="secret-refresh"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self._acting = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(lane.close() for lane in self._lanes.values()))
            self._queue.close()

    async def _warm_claims(self) -> None:
        try:
            await self._claims.warm()
        except Exception as exc:  # not fatal: each claim is then read when first needed
            logger.warning("Listing the claims failed (%s); reading them one by one", exc)

    async def _refresh_secrets(self) -> None:
        """The operator gets Secrets by name and watches none (it needs no list or watch on Secrets): the
        ones that objects and accounts name are read again every `secret_refresh_seconds`."""
        while True:
            await asyncio.sleep(self._settings.secret_refresh_seconds)
            for namespace, name in self._resolver.secrets_to_refresh():
                await self._reread_secret(namespace, name)

    async def _reread_secret(self, namespace: str, name: str) -> None:
        try:
            found = await self._read_secret(namespace, name)
        except Exception as exc:  # the API server is unavailable: the next refresh reads it again
            logger.warning("Reading Secret %s/%s failed: %s", namespace, name, exc)
            return
        self.secret_changed(namespace, name, found.resource_version if found else None)

    def _reread_soon(self, source: str) -> None:
        """CAMS refused the key read from a Secret: read the Secret now, in case it was rotated since."""
        if not source.startswith("secret:"):
            return
        namespace, _, name = source.removeprefix("secret:").partition("/")
        self._background_task(self._reread_secret(namespace, name))

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
        if state is None or not self._leading():
            return False
        facts = await self._facts(state, priority)
        decided = reconcile.plan(state, facts, self._settings)
        await self._carry_out(state, decided)
        if decided.call is None:
            return False
        lane = self._lane(decided.call.resolved)
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
        if with_credentials and snapshot.spec is not None and reconcile.needs_credentials(snapshot):
            credentials = await self._resolver.resolve(
                snapshot.key, snapshot.spec, deleting=snapshot.deleting
            )
        claim = snapshot.claim
        return Facts(
            now=self._now(),
            priority=priority,
            owner=await self._holder(state, claim, credentials) if claim else None,
            credentials=credentials,
            jitter=self._jitter(),
        )

    async def _holder(
        self, state: ObjectState, claim: Claim, credentials: Resolved | CredentialProblem | None
    ) -> Claimant | None:
        """Who manages the object's number. An object that may call CAMS for it claims it first; one that
        its account refuses lets go of it; any other only looks."""
        me = holder_id(state.snapshot.key)
        if isinstance(credentials, Resolved) and not state.snapshot.deleting:
            holding = await self._claims.acquire(claim, me, previous_owner=self._previous_owner(state, claim))
            claiming = {holder_id((c.namespace, c.name)) for c in self._claimants_of(claim)}
            if holding.holder not in (None, me) and holding.holder not in claiming:
                # Its holder no longer claims the number (deleted, or switched to Observe, while no replica
                # led): let it go, with the grace period as for any release.
                await self._claims.release(claim, holding.holder)
                holding = await self._claims.acquire(claim, me)
            if holding.free_at is not None:
                wait = (holding.free_at - self._now()).total_seconds()
                self._queue.add_after(state.snapshot.key, max(wait, 0.0) + 1.0, Priority.ROUTINE)
            holder = holding.holder
        else:
            if isinstance(credentials, CredentialProblem) and credentials.reason in REFUSALS:
                await self._claims.release(claim, me)
            holder = await self._claims.holder(claim)
        return claimant_of(holder)

    def _previous_owner(self, state: ObjectState, claim: Claim) -> str | None:
        """Another object whose spec CAMS holds for this number, from before claims were recorded."""
        if state.status.applied_fingerprint is not None:
            return None
        applied = sorted(c for c in self._claimants_of(claim) if c.applied)
        return holder_id((applied[0].namespace, applied[0].name)) if applied else None

    def _release_soon(self, claim: Claim, key: Key) -> None:
        """The object no longer manages its number. Only the acting replica writes claims; and not if the
        object is back (created again, or switched back to Manage) by the time the release would go out."""

        def back() -> bool:
            state = self._states.get(key)
            return state is not None and state.snapshot.claim == claim

        if self._acting and self._leading():
            self._background_task(self._claims.release(claim, holder_id(key), unless=back))

    def _background_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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

    def _lane(self, resolved: Resolved) -> AccountLane[CallTicket]:
        """The lane of the Alibaba account behind `resolved`: one per AccessKey, whatever the number of
        account objects that name it. Its pace is the smallest quota (spec.qps, else CAMS_QPS) that the
        sources of its calls (each Secret, or the operator's identity) last said."""
        account = resolved.account
        quotas = self._quotas.setdefault(account, {})
        quotas[resolved.source] = resolved.qps or self._settings.qps
        lane = self._lane_of(account)
        lane.limiter.set_ceiling(min(quotas.values()), asyncio.get_running_loop().time())
        return lane

    def _lane_of(self, account: str) -> AccountLane[CallTicket]:
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
        if not self._leading():  # checked right before the call: another replica may lead by now
            return no_answer("this replica no longer holds the leader lease; the call was not sent")
        loop = asyncio.get_running_loop()
        self.metrics.limiter_wait.observe(loop.time() - ticket.queued_at)
        started = loop.time()
        outcome = await self._cams.update_phone_webhook(ticket.call.update, ticket.call.resolved.credentials)
        self.metrics.count_call(UPDATE_PHONE_WEBHOOK, outcome, loop.time() - started)
        return outcome

    async def finish(self, ticket: CallTicket, outcome: Outcome) -> None:
        try:
            state = self._states.get(ticket.key)
            if state is None or state.snapshot.ref.uid != ticket.uid or not self._leading():
                return  # deleted (and perhaps created again) while the call was out, or no longer leading
            if outcome.reason == "InvalidSecurityToken" and self._resolver.renew(ticket.call.resolved):
                # RRSA's credentials are ours to renew: a refused token means exchange again, not stall.
                outcome = Outcome(Verdict.TRANSIENT, outcome.reason, outcome.answer)
            elif outcome.reason in REFUSED_KEY:
                self._reread_soon(ticket.call.resolved.source)
            facts = await self._facts(state, Priority(ticket.priority), with_credentials=False)
            outage = self._lanes[ticket.call.resolved.account].outage
            decided = reconcile.after_call(state, ticket.call, outcome, facts, self._settings, outage)
            await self._carry_out(state, decided, ticket=ticket)
        except Exception:
            self._retry_after_error(ticket.key, Priority(ticket.priority), "Recording CAMS's answer")
        finally:
            self._queue.done(ticket.key)
