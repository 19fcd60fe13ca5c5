"""Drift checks: is what CAMS holds still what the spec says?

`QueryChatappPhoneNumbers` returns every number of a space in one call, so a space is read when its most
urgent object is due, and every scheduled object of that space is compared then: one read per space and
credentials per period, never one per object. Reads have their own quota in CAMS, so their own pacing per
account; they never wait behind updates or delay them. What a read finds is put on each object's state
and the object is reconciled again: the decision (re-apply, or report for Observe objects) is the plan's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import QUERY_PHONE_NUMBERS, LiveNumber, WebhookUpdate
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.decisions.drift import drift_interval, read_retry_seconds
from cams_webhook_operator.decisions.pacing import AdaptiveRate
from cams_webhook_operator.decisions.state import (
    DriftReport,
    ObjectState,
    ReadRefusal,
)
from cams_webhook_operator.engine.metrics import Metrics
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved, token_to_renew
from cams_webhook_operator.tenancy.resolver import CredentialResolver

logger = logging.getLogger(__name__)

# A read pacer unused this long is dropped (pacers are per Alibaba account, and per key whose account is
# unknown: without this every key ever named would keep one).
PACER_IDLE = 600.0


class CamsApi(Protocol):
    """What the operator needs of a CAMS client (cams/client.py, or a fake)."""

    async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome: ...
    async def caller_identity(self, credentials: Credentials) -> tuple[Outcome, str | None]: ...
    async def query_phone_numbers(
        self, cust_space_id: str, credentials: Credentials
    ) -> tuple[Outcome, dict[str, LiveNumber]]: ...


class DriftChecker:
    def __init__(
        self,
        *,
        states: Mapping[Key, ObjectState],
        cams: CamsApi,
        resolver: CredentialResolver,
        settings: OperatorSettings,
        metrics: Metrics,
        requeue: Callable[[Key], None],
        wall_clock: Callable[[], datetime],
        rng: random.Random,
        lane_of: Callable[[Resolved], Awaitable[str]],
        tick: float = 1.0,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        """`lane_of`: the Alibaba Cloud account credentials belong to, which reads are paced by."""
        self._leading = leading
        self._lane_of = lane_of
        self._states = states
        self._cams = cams
        self._resolver = resolver
        self._default = settings.drift_interval_seconds
        self._permanent_retry = settings.permanent_retry_seconds
        self._minimum = settings.min_drift_interval_seconds
        self._rate = settings.qps  # reads have a quota of their own, of the same size
        self._metrics = metrics
        self._requeue = requeue  # queue the object for a routine reconcile
        self._now = wall_clock
        self._rng = rng
        self._tick = tick
        self._pacers: dict[str, AdaptiveRate] = {}
        self._next_due = math.inf  # nothing is due before this: most ticks skip the scan

    def prune(self) -> None:
        """Forget the pacers with no read reserved ahead: one is made again by the next read."""
        now = asyncio.get_running_loop().time()
        self._pacers = {lane: p for lane, p in self._pacers.items() if p.bucket.updated > now - PACER_IDLE}

    def retry_refused(self, state: ObjectState) -> None:
        """A refused read is tried again when the object or its account changed, not an hour later."""
        if state.read_refusal is not None:
            state.read_refusal = None
            self.schedule(state, now=True)

    def schedule(self, state: ObjectState, *, now: bool = False) -> None:
        """Check `state` one interval from now (spread by +-10 %, so objects applied together are not all
        checked in the same second), at the next tick if `now`, or never if its interval is off."""
        loop_now = asyncio.get_running_loop().time()
        interval = drift_interval(state.snapshot.drift_interval, default=self._default, minimum=self._minimum)
        if now:
            state.drift_due = loop_now
        elif interval is None:
            state.drift_due = None
        else:
            state.drift_due = loop_now + interval * (0.9 + 0.2 * self._rng.random())
        if state.drift_due is not None:
            self._next_due = min(self._next_due, state.drift_due)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                await self.check_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Drift check failed; trying again at the next tick")

    async def check_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if now < self._next_due:
            return
        groups: dict[tuple[str, str], list[ObjectState]] = defaultdict(list)
        for state in self._states.values():
            snapshot = state.snapshot
            # A paused object is never read for: the annotation promises no CAMS call for it at all.
            if state.drift_due is None or snapshot.spec is None or snapshot.paused:
                continue
            source = self._resolver.source(snapshot.ref.namespace, snapshot.spec)
            groups[(source, snapshot.spec.cust_space_id)].append(state)
        self._next_due = math.inf
        due = []
        for (_, space), members in groups.items():
            earliest = min(member.drift_due or 0.0 for member in members)
            if earliest <= now:
                due.append(self._check_space(space, members))
            else:
                self._next_due = min(self._next_due, earliest)
        await asyncio.gather(*due)

    async def _check_space(self, space: str, members: list[ObjectState]) -> None:
        if not self._leading():
            return  # a replica that may no longer lead reads nothing; the next leader will
        first = members[0].snapshot
        assert first.spec is not None
        resolved = await self._resolver.resolve(first.key, first.spec)
        if isinstance(resolved, CredentialProblem):
            for member in members:  # the next reconcile of each object reports the problem
                member.drift_due = None
                self._requeue(member.snapshot.key)
            return
        # Stamped with when it was sent, not answered: an update CAMS accepted meanwhile may not show in it.
        outcome, live, checked_at = await self._read_space_at(space, resolved)
        if outcome.verdict is not Verdict.OK:
            self._read_failed(space, members, outcome, resolved)
            return
        for member in members:
            member.read_refusal = None
            self._compare(member, live, checked_at)

    def _pacer(self, lane: str) -> AdaptiveRate:
        pacer = self._pacers.get(lane)
        if pacer is None:
            now = asyncio.get_running_loop().time()
            pacer = self._pacers[lane] = AdaptiveRate.start(rate=self._rate, burst=1, now=now)
        return pacer

    async def read_space(self, space: str, resolved: Resolved) -> tuple[Outcome, dict[str, LiveNumber]]:
        """One QueryChatappPhoneNumbers call, paced with every other read of the same Alibaba Cloud account
        (drift checks, and the check that credentials reach a space before they claim a number in it)."""
        outcome, live, _ = await self._read_space_at(space, resolved)
        return outcome, live

    async def _read_space_at(
        self, space: str, resolved: Resolved
    ) -> tuple[Outcome, dict[str, LiveNumber], datetime]:
        """read_space, and when the read was sent: an update answered after that may not show in it."""
        lane = await self._lane_of(resolved)
        pacer = self._pacer(lane)
        await asyncio.sleep(pacer.reserve(asyncio.get_running_loop().time()))
        sent_at = self._now()
        started = asyncio.get_running_loop().time()
        outcome, live = await self._cams.query_phone_numbers(space, resolved.credentials)
        seconds = asyncio.get_running_loop().time() - started
        self._metrics.count_call(QUERY_PHONE_NUMBERS, outcome, seconds, lane=lane)
        now = asyncio.get_running_loop().time()
        if outcome.verdict is Verdict.THROTTLED:
            pacer.on_throttled(now)
        if outcome.answer is not None and outcome.answer.retry_after:  # x-acs-retry-after: reads wait too
            pacer.hold(now, outcome.answer.retry_after)
        return outcome, live, sent_at

    def _read_failed(
        self,
        space: str,
        members: list[ObjectState],
        outcome: Outcome,
        resolved: Resolved,
    ) -> None:
        """When to read again depends on why the read failed: a refusal waits like a refused update, a
        refused RRSA token is renewed and read again at once, anything else is tried again in a minute.
        A refusal also reaches the objects' status (an observer shows CAMS's code and an Event)."""
        loop_now = asyncio.get_running_loop().time()
        code = outcome.answer.code if outcome.answer else outcome.error
        renewed = token_to_renew(outcome, resolved)
        if renewed:
            self._resolver.renew(resolved)  # RRSA's credentials are ours to renew: read again with new ones
        wait = read_retry_seconds(
            outcome, renewed=renewed, interval=self._default, permanent_retry=self._permanent_retry
        )
        logger.warning("Reading space %s failed (%s); reading it again in %.0f s", space, code, wait)
        refused = outcome.verdict is Verdict.PERMANENT and wait > 0
        retry_at = self._now() + timedelta(seconds=wait)
        for member in members:
            member.drift_due = loop_now + wait
            member.read_refusal = ReadRefusal(outcome, retry_at) if refused else None
            if refused:
                self._requeue(member.snapshot.key)
        self._next_due = min(self._next_due, loop_now + wait)

    def _compare(self, state: ObjectState, live: Mapping[str, LiveNumber], checked_at: datetime) -> None:
        snapshot = state.snapshot
        if self._states.get(snapshot.key) is not state or snapshot.spec is None:
            return  # forgotten, or replaced, while the space was read
        spec = snapshot.spec
        state.last_read = DriftReport(checked_at, live.get(spec.phone_number))
        self.schedule(state)
        # The plan decides what the read means (drift, a Warning, a call); either way it reaches the status.
        self._requeue(snapshot.key)
