"""One lane per CAMS account: the account's calls wait here, never in a worker, so no account's quota
delays another's.

A lane holds the tickets of its account's objects in a fair queue (decisions/fairqueue.py), releases them
at the pace of an adaptive token bucket, keeps enough calls in flight that a slow CAMS still gets the whole
quota, and holds everything back behind a breaker while CAMS fails every call (decisions/pacing.py). The
lane never decides what an object needs: it calls back its owner (the controller) to make a call, record
its answer, hand a ticket back, or release the objects it held.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.cams.outcomes import Outcome, Verdict, no_answer
from cams_webhook_operator.decisions.fairqueue import FairQueue
from cams_webhook_operator.decisions.pacing import (
    AdaptiveRate,
    Admission,
    Breaker,
    Outage,
    TokenBucket,
    Transition,
)
from cams_webhook_operator.decisions.plans import Call
from cams_webhook_operator.decisions.state import ObjectState
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.account_ids import lane_label
from cams_webhook_operator.tenancy.credentials import Quota, Resolved

logger = logging.getLogger(__name__)


class Ticket(Protocol):
    @property
    def key(self) -> Hashable: ...
    @property
    def flow(self) -> Hashable: ...  # the fairness key: the object's namespace
    @property
    def priority(self) -> int: ...

    probe: bool  # set by the lane: this call is its breaker's probe


T = TypeVar("T", bound=Ticket)
T_contra = TypeVar("T_contra", bound=Ticket, contravariant=True)


class LaneOwner(Protocol[T_contra]):
    async def call(self, ticket: T_contra) -> Outcome:
        """Make the ticket's call; never raises."""

    async def finish(self, ticket: T_contra, outcome: Outcome) -> None:
        """Record the answer (and let go of the object)."""

    def is_current(self, ticket: T_contra) -> bool:
        """False when the object changed or went since the ticket was written."""

    def give_back(self, ticket: T_contra) -> None:
        """The ticket will not be served: decide again what its object needs."""

    def release(self, held: Iterable[tuple[Hashable, int]]) -> None:
        """Objects held during an outage (key, priority): decide again, CAMS may answer now."""


@dataclass(slots=True, eq=False)
class CallTicket:
    """An object's call, waiting in its account's lane."""

    key: Key
    uid: str
    flow: str  # the fairness key: the namespace, a tenant
    priority: int
    epoch: int  # the object's epoch when decided: a later change makes the ticket stale
    call: Call
    lane: str  # the Alibaba Cloud account whose quota the call spends (tenancy/account_ids.py)
    queued_at: float
    probe: bool = False

    @classmethod
    def of(cls, state: ObjectState, call: Call, lane: str) -> CallTicket:
        ref, now = state.snapshot.ref, asyncio.get_running_loop().time()
        return cls(state.snapshot.key, ref.uid, ref.namespace, call.priority, state.epoch, call, lane, now)


def describe(outcome: Outcome) -> str:
    answer = outcome.answer
    if answer is None:
        return outcome.error or "no answer"
    return f"{answer.code or 'no code'} (HTTP {answer.http_status})"


class AccountLane(Generic[T]):
    def __init__(
        self,
        owner: LaneOwner[T],
        *,
        limiter: AdaptiveRate,
        adaptive: bool = True,
        breaker: Breaker | None = None,
        max_in_flight: int = 20,
        clock: Callable[[], float] | None = None,
        label: str = "",
    ) -> None:
        self._owner = owner
        self._label = label  # names the account in logs; never a secret
        self.limiter = limiter
        self._adaptive = adaptive
        self.breaker = breaker
        self._max_in_flight = max_in_flight
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._queue: FairQueue[T] = FairQueue()
        self._held: OrderedDict[Hashable, int] = OrderedDict()  # key -> priority, oldest first
        self._in_flight = 0
        self._changed = asyncio.Event()  # a ticket came, a call finished, or the breaker moved
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing waiting, in flight or held, and no outage: dropping the lane loses nothing but its pace,
        which a new lane learns again."""
        return not self._queue and not self._in_flight and not self._held and self.outage is None

    @property
    def outage(self) -> Outage | None:
        return self.breaker.outage if self.breaker else None

    def offer(self, ticket: T) -> bool:
        """Queue a ticket for a call slot. False while CAMS is out and this is not the probe: hold the
        object instead (`hold`)."""
        admission = self.breaker.admit(self._clock()) if self.breaker else Admission.GO
        if admission is Admission.WAIT:
            return False
        ticket.probe = admission is Admission.PROBE
        self._queue.push(ticket, flow=ticket.flow, priority=ticket.priority)
        self._wake()
        return True

    def hold(self, key: Hashable, priority: int) -> None:
        """Keep an object until CAMS answers again; probes are taken from these."""
        self._held[key] = min(priority, self._held.get(key, priority))
        self._wake()

    def forget(self, key: Hashable) -> None:
        self._held.pop(key, None)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _wake(self) -> None:
        self._changed.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="account-lane")

    async def _wait(self, at_most: float | None = None) -> None:
        self._changed.clear()
        try:
            async with asyncio.timeout(at_most):
                await self._changed.wait()
        except TimeoutError:
            pass

    async def _dispatch(self) -> None:
        while True:
            if self.breaker is not None and self.breaker.is_open and not self._queue:
                if not self._held:
                    return  # nothing to probe with; an offer or a hold starts the dispatcher again
                await self._probe_when_due(self.breaker)
            elif not self._queue:
                return
            elif self._in_flight >= self._max_in_flight:
                await self._wait()
            else:
                await self._send_next()

    async def _probe_when_due(self, breaker: Breaker) -> None:
        """Hand one held object back to be decided again; its call will be admitted as the probe."""
        due = breaker.next_probe - self._clock()
        if due > 0:
            await self._wait(due)
            return
        if not breaker.probing and self._held:
            key, priority = self._held.popitem(last=False)
            self._owner.release([(key, priority)])
        # If that object needs no call after all, the next one is tried an interval later.
        await self._wait(breaker.probe_interval)

    async def _send_next(self) -> None:
        delay = self.limiter.reserve(self._clock())
        if delay > 0:
            await asyncio.sleep(delay)
        # CAMS may have asked, while this slot waited, not to be called before a moment (x-acs-retry-after);
        # another answer may move that moment while this sleeps, hence the loop.
        while (held := self.limiter.held_until - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(held)
        while (ticket := self._queue.pop()) is not None:
            if self._owner.is_current(ticket):
                self._in_flight += 1
                task = asyncio.create_task(self._serve(ticket), name="cams-call")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            self._drop(ticket)
        self.limiter.refund()  # every ticket that waited had gone stale

    def _drop(self, ticket: T) -> None:
        if ticket.probe and self.breaker is not None:
            self.breaker.probe_dropped()
        self._owner.give_back(ticket)

    async def _serve(self, ticket: T) -> None:
        try:
            outcome = await self._owner.call(ticket)
        except Exception:
            # A bug, not CAMS: still record an answer, so that the object is retried and never stuck.
            logger.exception("A CAMS call of account %s failed inside the operator", self._label)
            outcome = no_answer("the operator failed to make the call (see its log)")
        finally:
            self._in_flight -= 1
            self._changed.set()
        self._learn(ticket, outcome)
        await self._owner.finish(ticket, outcome)

    def _learn(self, ticket: T, outcome: Outcome) -> None:
        now = self._clock()
        if self._adaptive:
            if outcome.verdict is Verdict.THROTTLED:
                self.limiter.on_throttled(now)
            if outcome.answer is not None and outcome.answer.retry_after:
                self.limiter.hold(now, outcome.answer.retry_after)
        if self.breaker is None:
            return
        change = self.breaker.record(
            failed=outcome.verdict is Verdict.TRANSIENT,
            key=ticket.key,
            now=now,
            cause=describe(outcome),
            probe=ticket.probe,
        )
        if change is Transition.OPENED:
            logger.warning(
                "CAMS failed every recent call of account %s (%s); holding its objects and probing every %gs",
                self._label,
                self.breaker.cause,
                self.breaker.probe_interval,
            )
            for waiting in self._queue.drain():
                self._drop(waiting)
        elif change is Transition.CLOSED:
            logger.info(
                "CAMS answers account %s again; releasing %d held objects", self._label, len(self._held)
            )
            held, self._held = list(self._held.items()), OrderedDict()
            self._owner.release(held)
        self._changed.set()


class Lanes:
    """The lanes by Alibaba Cloud account (account_ids.py): one per account, whatever the number of keys,
    roles and account objects that reach it. A lane's pace is the smallest `qps` of the ClusterCamsAccounts
    whose calls it carries (None counts as CAMS_QPS), or CAMS_QPS when none does: only the platform paces a
    lane. A CamsAccount's `qps` limits its own objects before they reach the lane (the controller's
    `OwnShares`), never the others'."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.owner: LaneOwner[CallTicket] | None = None  # the controller, bound once it is built
        self._settings = settings
        self._lanes: dict[str, AccountLane[CallTicket]] = {}
        self._paces: dict[str, dict[str, float]] = {}  # lane -> ClusterCamsAccount -> its qps

    def __getitem__(self, lane: str) -> AccountLane[CallTicket]:
        return self._lanes[lane]

    def all(self) -> tuple[AccountLane[CallTicket], ...]:
        """Copied in one step: metrics read it from their own thread while the event loop adds lanes."""
        return tuple(self._lanes.values())

    def waiting(self) -> dict[str, int]:
        """Calls waiting for a slot, by lane label (several unidentified lanes add up under one)."""
        counts: dict[str, int] = {}
        for lane, account in tuple(self._lanes.items()):
            label = lane_label(lane)
            counts[label] = counts.get(label, 0) + account.waiting
        return counts

    def unavailable(self) -> int:
        """Accounts whose lane holds its calls back: CAMS fails every call of theirs."""
        return sum(1 for lane in self.all() if lane.outage)

    def for_call(self, resolved: Resolved, lane: str) -> AccountLane[CallTicket]:
        quota = resolved.quota
        if quota is not None and quota.shared:
            self._paces.setdefault(lane, {})[quota.owner] = quota.qps or self._settings.qps
        account = self._lanes.get(lane)
        now = asyncio.get_running_loop().time()
        if account is None:
            s = self._settings
            assert self.owner is not None, "wiring.build_controller binds the owner"
            account = self._lanes[lane] = AccountLane(
                self.owner,
                limiter=AdaptiveRate.start(rate=s.qps, burst=s.burst, now=now),
                adaptive=s.adaptive,
                breaker=Breaker() if s.circuit_breaker else None,
                max_in_flight=s.max_in_flight,
                label=lane_label(lane),
            )
        account.limiter.set_ceiling(self._pace(lane), now)
        return account

    def _pace(self, lane: str) -> float:
        return min(self._paces.get(lane, {}).values(), default=self._settings.qps)

    def forget_held(self, lane: str, key: Key) -> None:
        if (account := self._lanes.get(lane)) is not None:
            account.forget(key)

    def forget_owner(self, owner: str) -> None:
        """An account object changed or went: its say on every lane goes at once (a slow account deleted
        no longer slows the lane; its next call says its pace again if it still has one)."""
        for lane, paces in self._paces.items():
            if paces.pop(owner, None) is not None and (account := self._lanes.get(lane)) is not None:
                account.limiter.set_ceiling(self._pace(lane), asyncio.get_running_loop().time())
        self._paces = {lane: paces for lane, paces in self._paces.items() if paces}

    def prune(self) -> int:
        """Drop the lanes with nothing to do (nothing waiting, in flight or held, no outage): a lane is made
        again by the next call; without this every key ever named would keep one. Returns how many."""
        idle = [lane for lane, account in self._lanes.items() if account.idle]
        for lane in idle:
            del self._lanes[lane]
            self._paces.pop(lane, None)
        return len(idle)

    async def close(self) -> None:
        await asyncio.gather(*(lane.close() for lane in self.all()))


class OwnShares:
    """The pace that a CamsAccount's `qps` sets for its own objects, before they reach their lane: a tenant's
    account limits the tenant, never the lane that other teams' objects share."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}  # account object -> its objects' pace

    def wait(self, quota: Quota | None, now: float) -> float:
        """0 when the object may go to its lane now, else how long until its account's pace lets it."""
        if quota is None or quota.shared or quota.qps is None:
            return 0.0
        bucket = self._buckets.get(quota.owner)
        if bucket is None or bucket.rate != quota.qps:
            bucket = self._buckets[quota.owner] = TokenBucket.full(
                rate=quota.qps, burst=max(1.0, quota.qps), now=now
            )
        if bucket.try_take(now):
            return 0.0
        return (1.0 - bucket.tokens) / bucket.rate

    def prune(self, now: float) -> None:
        """Forget the paces that are full again: a full bucket is what a new one would be."""
        for bucket in self._buckets.values():
            bucket.refill(now)
        self._buckets = {owner: b for owner, b in self._buckets.items() if b.tokens < b.burst}
