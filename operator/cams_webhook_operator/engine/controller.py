"""The controller: workers that take keys from the work queue (which the intake fills from kopf's watch
events: intake.py), decide what each object needs (decisions/reconcile.py) and carry the plan out in one
place, and one lane per CAMS account (lanes.py). A worker never waits for CAMS's quota: it leaves a ticket
in the account's lane and moves on; the lane makes the call in the account's turn and hands the answer to
`finish`. The key stays in the work queue's hands until then, so an object is never decided twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.cams.messages import UPDATE_PHONE_WEBHOOK
from cams_webhook_operator.cams.outcomes import Outcome, no_answer
from cams_webhook_operator.decisions import answers, plans, reconcile
from cams_webhook_operator.decisions.plans import Call, DriftAction, Facts, Plan, Priority
from cams_webhook_operator.decisions.state import ObjectState, States
from cams_webhook_operator.engine.account_status import AccountStatusWriter
from cams_webhook_operator.engine.drift_checks import CamsApi, DriftChecker
from cams_webhook_operator.engine.intake import Intake
from cams_webhook_operator.engine.lanes import CallTicket, Lanes, OwnShares
from cams_webhook_operator.engine.metrics import Metrics
from cams_webhook_operator.engine.ownership import Ownership
from cams_webhook_operator.engine.secret_refresh import SecretRefresh
from cams_webhook_operator.engine.workqueue import WorkQueue
from cams_webhook_operator.engine.writer import ObjectWriter
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.account_ids import AccountIds
from cams_webhook_operator.tenancy.accounts import named_account
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls
from cams_webhook_operator.tenancy.credentials import Resolved
from cams_webhook_operator.tenancy.resolver import CredentialResolver
from cams_webhook_operator.tenancy.space_access import SpaceAccess

logger = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 60.0


@dataclass(frozen=True)
class Parts:
    """What a controller works with, built and wired by `wiring.build_controller`."""

    settings: OperatorSettings
    cams: CamsApi
    states: States
    queue: WorkQueue[Key]
    writer: ObjectWriter
    lanes: Lanes
    shares: OwnShares  # the pace a CamsAccount's qps sets for its own objects
    account_ids: AccountIds
    resolver: CredentialResolver
    ownership: Ownership
    secrets: SecretRefresh
    account_status: AccountStatusWriter
    drift: DriftChecker
    access: SpaceAccess
    intake: Intake
    metrics: Metrics
    leading: Callable[[], bool]  # the leader election's verdict, asked before acting
    wall_clock: Callable[[], datetime]
    rng: random.Random


def credentials_named(states: Mapping[Key, ObjectState], key: Key) -> Hashable:
    """The credentials an object names (an account, its own Secret, or the default). Taking turns by them
    within a namespace's turns: objects applied account by account (a GitOps tool applying sorted files)
    would otherwise keep the last account's first call waiting behind every other account's objects, each
    decided (a claim written) before it. By name only: a tenant gains no turns over other namespaces by
    spreading its objects over many Secrets."""
    state = states.get(key)
    spec = state.snapshot.spec if state is not None else None
    if spec is None:
        return None
    named = named_account(spec, key[0])
    if named is None and spec.credentials_secret_ref is not None:
        return spec.credentials_secret_ref.name
    return named


class Controller:
    def __init__(self, parts: Parts) -> None:
        self._settings = parts.settings
        self._cams = parts.cams
        self._states = parts.states
        self._queue = parts.queue
        self._write = parts.writer
        self._lanes = parts.lanes
        self._shares = parts.shares
        self._account_ids = parts.account_ids
        self._resolver = parts.resolver
        self.ownership = parts.ownership
        self._secrets = parts.secrets
        self._account_status = parts.account_status
        self._drift = parts.drift
        self._access = parts.access
        self.metrics = parts.metrics
        self._leading = parts.leading
        self._now = parts.wall_clock
        self._rng = parts.rng
        self.intake = parts.intake  # what the watches tell: objects, accounts, namespaces, Secrets
        self.acting = False  # whether this replica's workers run (it leads): only then are claims written
        self.listed = asyncio.Event()  # set once every watched object has been seen: claims are known

    # --- workers ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
        await self.listed.wait()
        self.acting = True
        try:
            await self.ownership.warm()
            async with asyncio.TaskGroup() as tasks:  # one failing (a bug) stops them all
                for i in range(self._settings.workers):
                    tasks.create_task(self._work(), name=f"worker-{i}")
                tasks.create_task(self._drift.run(), name="drift-checks")
                tasks.create_task(self._account_status.run(), name="account-status")
                tasks.create_task(self._secrets.run(), name="secret-refresh")
                tasks.create_task(self.ownership.run(), name="claim-sweep")
                tasks.create_task(self._housekeeping(), name="housekeeping")
        finally:
            self.acting = False
            await self._lanes.close()
            self._queue.close()

    async def _housekeeping(self) -> None:
        """Drop the lanes, read pacers and paces that nothing uses: they are made again when needed, and
        without this every key or account ever named would keep them."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            self._lanes.prune()
            self._drift.prune()
            self._shares.prune(asyncio.get_running_loop().time())

    async def _work(self) -> None:
        while True:
            key, priority = await self._queue.get()
            in_lane = False
            try:
                in_lane = await self.reconcile(key, Priority(priority))
            except Exception:  # not CancelledError, a BaseException
                self._retry_after_error(key, Priority(priority), "Reconcile")
            finally:
                if not in_lane:
                    self._queue.done(key)

    def _retry_after_error(self, key: Key, priority: Priority, what: str) -> None:
        """A bug or the Kubernetes API failing: log it and try again later; never lose the object."""
        if (state := self._states.get(key)) is not None:
            state.attempts += 1
        attempts = state.attempts if state else 1
        delay = plans.retry_delay(attempts, jitter=self._jitter(), settings=self._settings)
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
        if not await self._carry_out(state, decided) or decided.call is None:
            return False
        call = decided.call
        if (wait := self._shares.wait(call.resolved.quota, asyncio.get_running_loop().time())) > 0:
            self._queue.add_after(key, wait, priority)  # its own account's pace (a CamsAccount's qps)
            return False
        lane_key = await self._account_ids.lane_of(call.resolved)
        lane = self._lanes.for_call(call.resolved, lane_key)
        ticket = CallTicket.of(state, call, lane_key)
        if lane.offer(ticket):
            return True
        outage = lane.outage
        assert outage is not None
        await self._carry_out(state, answers.unavailable(state, facts, outage), ticket=ticket)
        return False

    async def _facts(self, state: ObjectState, priority: Priority, *, with_credentials: bool = True) -> Facts:
        snapshot = state.snapshot
        credentials = urls = None
        if with_credentials and snapshot.spec is not None and reconcile.needs_credentials(snapshot):
            credentials = await self._resolver.resolve(
                snapshot.key, snapshot.spec, deleting=snapshot.deleting
            )
            if not snapshot.deleting:  # clearing sends no URL
                urls = await self._resolver.callback_urls(snapshot.key, snapshot.spec)
                state.secret_urls = urls if isinstance(urls, CallbackUrls) else None
        claim = snapshot.claim
        if (
            isinstance(credentials, Resolved)
            and claim is not None
            and not snapshot.deleting
            and not await self.ownership.holds(claim, snapshot.key)
        ):  # credentials claim a number only once they have read its space (tenancy/space_access.py)
            credentials = await self._access.check(credentials, claim[0]) or credentials
        return Facts(
            now=self._now(),
            priority=priority,
            owner=await self.ownership.holder(state, claim, credentials) if claim else None,
            credentials=credentials,
            urls=urls,
            jitter=self._jitter(),
        )

    def _jitter(self) -> float:
        return self._rng.random() if self._settings.retry_jitter else 1.0

    async def _carry_out(self, state: ObjectState, plan: Plan, *, ticket: CallTicket | None = None) -> bool:
        """The one place where a plan happens. Its claim first: lost to another object since the plan was
        made, nothing else of the plan happens and the object is decided again (False). Then the
        bookkeeping: should a write to the API server fail below, the next plan must not repeat a call
        that CAMS already answered."""
        if not await self._claim_as_planned(state, plan):
            self._queue.add(state.snapshot.key, Priority.CHANGE)
            return False
        state.apply(plan.update)
        if ticket is not None:
            self._act_on_credentials(state, plan, ticket.call.resolved)
        if plan.hold and ticket is not None:
            state.held_by = ticket.lane
            self._lanes[ticket.lane].hold(state.snapshot.key, ticket.priority)
        if plan.drift is DriftAction.STOP:
            state.drift_due = None
        elif plan.drift is not DriftAction.KEEP:
            self._drift.schedule(state, now=plan.drift is DriftAction.NOW)
        if plan.requeue_after is not None:
            self._queue.add_after(state.snapshot.key, plan.requeue_after, plan.requeue_priority)
        if plan.result is not None:
            self.metrics.reconciles.labels(plan.result).inc()
        if plan.drift_detected:
            self.metrics.drift_detected.inc()
        if plan.finalizer is not None:
            await self._write.finalizer(state, plan.finalizer)
        await self._write.status(state, plan.status or state.status)
        for event in plan.events:
            await self._write.event(state, event)
        return True

    async def _claim_as_planned(self, state: ObjectState, plan: Plan) -> bool:
        claim = state.snapshot.claim
        if plan.claim is None or claim is None:
            return True
        if plan.claim == "drop":
            await self.ownership.drop(claim, state.snapshot.key)
            return True
        return await self.ownership.take(state, claim)

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
        resolved, now = ticket.call.resolved, asyncio.get_running_loop().time
        self.metrics.limiter_wait.observe(now() - ticket.queued_at)
        started = now()
        outcome = await self._cams.update_phone_webhook(ticket.call.update, resolved.credentials)
        self.metrics.count_call(UPDATE_PHONE_WEBHOOK, outcome, now() - started, lane=ticket.lane)
        return outcome

    async def _read_back(self, call: Call) -> answers.ClearRead:
        """What the number's space holds right after CAMS accepted a clear (one read, paced with the
        account's others), so that only a clear that took lets the object go."""
        update = call.update
        outcome, live = await self._drift.read_space(update.cust_space_id, call.resolved)
        return answers.ClearRead(outcome, live.get(update.phone_number))

    def _act_on_credentials(self, state: ObjectState, plan: Plan, resolved: Resolved) -> None:
        """What CAMS's answer asked of the call's credentials (answers.after_call decided it). Refused for
        good (the plan drops the object's claim), they prove themselves on the space again before claiming
        anything in it."""
        if plan.renew_credentials:
            self._resolver.renew(resolved)
        if plan.reread_secret:
            self._secrets.refused(resolved.source)
        if plan.claim == "drop" and (claim := state.snapshot.claim) is not None:
            self._access.forget(resolved, claim[0])

    async def finish(self, ticket: CallTicket, outcome: Outcome) -> None:
        try:
            state = self._states.get(ticket.key)
            if state is None or state.snapshot.ref.uid != ticket.uid or not self._leading():
                return  # deleted (and perhaps created again) while the call was out, or no longer leading
            clear_read = await self._read_back(ticket.call) if ticket.call.clearing and outcome.ok else None
            facts = await self._facts(state, Priority(ticket.priority), with_credentials=False)
            outage = self._lanes[ticket.lane].outage
            decided = answers.after_call(
                state, ticket.call, outcome, facts, self._settings, outage, clear_read=clear_read
            )
            await self._carry_out(state, decided, ticket=ticket)
        except Exception:
            self._retry_after_error(ticket.key, Priority(ticket.priority), "Recording CAMS's answer")
        finally:
            self._queue.done(ticket.key)
