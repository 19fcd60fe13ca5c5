"""An account's lane on fake loop time (looptime): pacing, priority, fairness, calls in flight, the
breaker. Time is the event loop's, so seconds of CAMS traffic run in milliseconds and are exact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Answer, Outcome, classify, no_answer
from cams_webhook_operator.decisions.pacing import AdaptiveRate, Breaker
from cams_webhook_operator.engine.lanes import AccountLane, Lanes, OwnShares
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import Quota, Resolved

pytestmark = pytest.mark.looptime


@dataclass(eq=False)
class Ticket:
    key: str
    flow: str = "ns"
    priority: int = 0
    probe: bool = False


class Owner:
    """A lane's owner whose CAMS answers `answer(key)` after `latency` seconds."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.answer: Callable[[str], str] = lambda key: "OK"
        self.sent: list[tuple[str, float]] = []
        self.finished: list[str] = []
        self.given_back: list[str] = []
        self.released: list[str] = []
        self.stale: set[str] = set()
        self.in_flight = self.most_in_flight = 0
        self.retry_after: float | None = None

    async def call(self, ticket: Ticket) -> Outcome:
        loop = asyncio.get_running_loop()
        self.sent.append((ticket.key, round(loop.time(), 3)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.latency)
        self.in_flight -= 1
        code = self.answer(ticket.key)
        if code == "timeout":
            return no_answer("CAMS did not answer in time")
        status = {"OK": 200, "ServiceUnavailable": 503, "Throttling.User": 429}.get(code, 400)
        # CAMS (or its gateway) may say when to call again: x-acs-retry-after.
        return classify(Answer(status, code, retry_after=self.retry_after if status != 200 else None))

    async def finish(self, ticket: Ticket, outcome: Outcome) -> None:
        self.finished.append(ticket.key)

    def is_current(self, ticket: Ticket) -> bool:
        return ticket.key not in self.stale

    def give_back(self, ticket: Ticket) -> None:
        self.given_back.append(ticket.key)

    def release(self, held: Iterable[tuple[object, int]]) -> None:
        self.released.extend(str(key) for key, _ in held)


def _lane(
    owner: Owner, *, rate: float = 10, breaker: Breaker | None = None, **options: object
) -> AccountLane[Ticket]:
    limiter = AdaptiveRate.start(rate=rate, burst=1, now=asyncio.get_running_loop().time())
    return AccountLane(owner, limiter=limiter, breaker=breaker, **options)  # type: ignore[arg-type]


async def _until(check: Callable[[], bool], limit: float = 600) -> None:
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 -- fake time: each sleep costs no real time
            await asyncio.sleep(0.01)


async def test_calls_go_out_at_the_rate() -> None:
    owner = Owner()
    lane = _lane(owner)
    for i in range(5):
        assert lane.offer(Ticket(f"o{i}"))
    await _until(lambda: len(owner.finished) == 5)
    assert [t for _, t in owner.sent] == [0.0, 0.1, 0.2, 0.3, 0.4]


async def test_a_change_takes_the_next_slot_ahead_of_routine_rechecks() -> None:
    owner = Owner()
    lane = _lane(owner)
    for i in range(3):
        lane.offer(Ticket(f"routine-{i}", priority=2))
    await _until(lambda: len(owner.sent) == 1)
    lane.offer(Ticket("change", priority=0))
    await _until(lambda: len(owner.finished) == 4)
    assert [key for key, _ in owner.sent] == ["routine-0", "change", "routine-1", "routine-2"]


async def test_a_namespace_with_one_change_is_served_during_another_namespaces_rollout() -> None:
    owner = Owner()
    lane = _lane(owner)
    for i in range(100):
        lane.offer(Ticket(f"a{i}", flow="team-a"))
    await _until(lambda: len(owner.sent) == 10)
    lane.offer(Ticket("b", flow="team-b"))
    await _until(lambda: "b" in owner.finished)
    # Offered just after the slot at 0.9 s: the slot at 1.0 s was team-a's turn, the next is team-b's,
    # though 89 of team-a's objects were queued before it.
    assert dict(owner.sent)["b"] == pytest.approx(1.1)


async def test_a_slow_cams_still_gets_the_whole_quota() -> None:
    owner = Owner(latency=0.3)
    lane = _lane(owner, max_in_flight=20)
    for i in range(100):
        lane.offer(Ticket(f"o{i}"))
    await _until(lambda: len(owner.finished) == 100)
    assert owner.sent[-1][1] == pytest.approx(9.9)
    assert owner.most_in_flight == 3


async def test_calls_in_flight_are_capped() -> None:
    owner = Owner(latency=1.0)
    lane = _lane(owner, max_in_flight=2)
    for i in range(6):
        lane.offer(Ticket(f"o{i}"))
    await _until(lambda: len(owner.finished) == 6)
    assert owner.most_in_flight == 2
    assert [t for _, t in owner.sent] == [0.0, 0.1, 1.0, 1.1, 2.0, 2.1]


async def test_a_stale_ticket_is_given_back_without_using_a_slot() -> None:
    owner = Owner()
    lane = _lane(owner)
    owner.stale.add("old")
    lane.offer(Ticket("old"))
    lane.offer(Ticket("new"))
    await _until(lambda: owner.finished == ["new"])
    assert owner.given_back == ["old"]
    assert owner.sent == [("new", 0.0)]


async def test_throttled_answers_slow_the_lane_down_unless_it_is_fixed_rate() -> None:
    owner = Owner()
    owner.answer = lambda key: "System.LimitControl" if key == "a" else "OK"
    lane = _lane(owner)
    for key in "abc":
        lane.offer(Ticket(key))
    await _until(lambda: len(owner.finished) == 3)
    assert owner.sent[2][1] - owner.sent[1][1] > 0.15, "slower than the 0.1 s of 10 calls/s"
    fixed = _lane(owner, adaptive=False)
    fixed.offer(Ticket("a"))
    await _until(lambda: len(owner.finished) == 4)
    assert fixed.limiter.rate == 10


@pytest.mark.parametrize("refusal", ["Throttling.User", "ServiceUnavailable"])
async def test_the_lane_sends_nothing_before_cams_said_it_may_call_again(refusal: str) -> None:
    owner = Owner()
    owner.retry_after = 2.5
    owner.answer = lambda key: refusal if key == "a" else "OK"
    lane = _lane(owner)
    for key in "abc":
        lane.offer(Ticket(key))
    await _until(lambda: len(owner.finished) == 3)
    assert owner.sent[0] == ("a", 0.0)
    assert owner.sent[1][1] >= 2.5, f"x-acs-retry-after said 2.5 s: {owner.sent}"


async def test_an_outage_holds_everything_probes_once_per_interval_and_releases_on_the_first_answer() -> None:
    owner = Owner(latency=0.05)
    cams_up = False
    owner.answer = lambda key: "OK" if cams_up else "ServiceUnavailable"
    lane = _lane(owner, breaker=Breaker(threshold=5, probe_interval=2.0))
    for i in range(50):
        lane.offer(Ticket(f"o{i}"))
    await _until(lambda: lane.outage is not None)
    await _until(lambda: len(owner.finished) == len(owner.sent))
    # The failures that opened it, plus calls already in flight; everything still queued was given back.
    assert 5 <= len(owner.sent) <= 6
    assert len(owner.given_back) == 50 - len(owner.sent)
    assert not lane.offer(Ticket("new"))  # not the probe's time yet: hold it
    for key in [*owner.given_back, *owner.finished, "new"]:
        lane.hold(key, 0)
    opened, sent_before = asyncio.get_running_loop().time(), len(owner.sent)
    # Held objects are handed back one per interval to be decided again; the first offer then probes.
    for probe in range(1, 4):
        await _until(lambda: len(owner.released) >= probe)  # noqa: B023 -- awaited in this iteration
        assert lane.offer(Ticket(owner.released[-1]))
        await _until(lambda: len(owner.finished) >= sent_before + probe)  # noqa: B023
    probes = owner.sent[sent_before:]
    assert len(probes) == 3
    assert [round(t - opened) for _, t in probes] == [2, 4, 6]
    cams_up = True
    await _until(lambda: len(owner.released) == 4)
    lane.offer(Ticket(owner.released[-1]))
    await _until(lambda: lane.outage is None)
    assert len(owner.released) == 51, "every held object released the moment a probe was answered"
    assert lane.offer(Ticket("after"))


async def test_a_call_that_fails_inside_the_operator_is_still_answered() -> None:
    owner = Owner()

    async def broken(ticket: Ticket) -> Outcome:
        raise RuntimeError("a bug")

    owner.call = broken  # type: ignore[method-assign]
    lane = _lane(owner)
    lane.offer(Ticket("o"))
    await _until(lambda: owner.finished == ["o"])


def _resolved(owner: str | None = None, qps: float | None = None, *, shared: bool = True) -> Resolved:
    quota = Quota(owner, qps, shared=shared) if owner else None
    return Resolved(Credentials("LTAI-k", "s"), "secret:ops/k", quota)


async def test_only_cluster_accounts_pace_a_lane_and_a_deleted_ones_pace_goes_at_once() -> None:
    """The slow-qps attack of issue 28: a tenant's CamsAccount saying qps 0.01 never reaches the lane; a
    ClusterCamsAccount's does (the platform's), and leaves it when the account goes."""
    lanes = Lanes(OperatorSettings(qps=10))
    lanes.owner = Owner()  # type: ignore[assignment]
    lane = lanes.for_call(_resolved("CamsAccount tenant/slow", 0.01, shared=False), "account:1")
    assert lane.limiter.ceiling == 10
    lanes.for_call(_resolved("ClusterCamsAccount platform", 4), "account:1")
    lanes.for_call(_resolved("ClusterCamsAccount other", 8), "account:1")
    assert lane.limiter.ceiling == 4, "the smaller of the platform's"
    lanes.forget_owner("ClusterCamsAccount platform")
    assert lane.limiter.ceiling == 8


async def test_idle_lanes_are_dropped_and_busy_ones_kept() -> None:
    owner = Owner(latency=5.0)
    lanes = Lanes(OperatorSettings(qps=10))
    lanes.owner = owner  # type: ignore[assignment]
    lanes.for_call(_resolved(), "account:idle")
    busy = lanes.for_call(_resolved(), "account:busy")
    busy.offer(Ticket("o1"))  # type: ignore[arg-type]
    await asyncio.sleep(1)  # in flight
    assert lanes.prune() == 1
    assert set(lanes.waiting()) == {"account:busy"}
    await _until(lambda: owner.finished == ["o1"])
    assert lanes.prune() == 1
    assert lanes.waiting() == {}


def test_a_namespaced_accounts_qps_paces_its_own_objects() -> None:
    shares = OwnShares()
    slow = Quota("CamsAccount tenant/slow", 0.5, shared=False)
    assert shares.wait(slow, 0.0) == 0.0
    assert shares.wait(slow, 0.0) == pytest.approx(2.0)
    assert shares.wait(slow, 2.0) == 0.0
    assert shares.wait(Quota("ClusterCamsAccount p", 0.5, shared=True), 2.0) == 0.0, "the lane's to pace"
    assert shares.wait(None, 2.0) == 0.0
    shares.prune(100.0)
    assert shares._buckets == {}, "full again: forgotten"
