"""Leader election on fake loop time (looptime), with the default 15 s lease and 2 s retry: one holder at
a time, takeover after expiry or release, loss detected."""

from __future__ import annotations

import asyncio
import os

import pytest

from cams_webhook_operator.kube.leader import LeaderElector, LeaseRecord, may_acquire, process_identity

pytestmark = pytest.mark.looptime


class FakeLease:
    """An in-memory Lease with the API server's optimistic concurrency: a stale write is refused."""

    def __init__(self) -> None:
        self.record = LeaseRecord(None, None, None)
        self.version = 0
        self.writes = 0
        self.stalled: set[str | None] = (
            set()
        )  # holders whose requests hang (a partition, an API server stall)

    async def read(self) -> LeaseRecord:
        return self.record

    async def write(self, record: LeaseRecord, *, holder: str | None, lease_seconds: int) -> bool:
        if holder in self.stalled:
            await asyncio.Event().wait()  # never answered: only the caller's own deadline ends it
        if record.resource_version != self.record.resource_version:
            return False
        self.version += 1
        self.writes += 1
        self.record = LeaseRecord(holder, f"renewed-{self.version}", str(self.version), lease_seconds)
        return True


@pytest.mark.parametrize(
    ("record", "unchanged_for", "allowed"),
    [
        (LeaseRecord(None, None, None), 0.0, True),
        (LeaseRecord("me", "t", "1"), 0.0, True),
        (LeaseRecord(None, "t", "1"), 0.0, True),
        (LeaseRecord("other", "t", "1"), 14.9, False),
        (LeaseRecord("other", "t", "1"), 15.0, True),
    ],
    ids=["no-lease", "mine", "released", "held", "expired"],
)
def test_may_acquire(record: LeaseRecord, unchanged_for: float, allowed: bool) -> None:
    assert may_acquire(record=record, me="me", unchanged_for=unchanged_for, lease_seconds=15) is allowed


def _elector(lease: FakeLease, name: str) -> LeaderElector:
    loop = asyncio.get_running_loop()
    return LeaderElector(lease, identity=name, lease_seconds=15, retry_seconds=2, clock=loop.time)


async def test_a_free_lease_is_taken_at_once() -> None:
    lease = FakeLease()
    await asyncio.wait_for(_elector(lease, "a").acquire(), 1)
    assert lease.record.holder == "a"


async def test_a_renewed_lease_is_not_taken_and_an_abandoned_one_is() -> None:
    lease = FakeLease()
    leader, candidate = _elector(lease, "a"), _elector(lease, "b")
    await leader.acquire()
    holding = asyncio.create_task(leader.hold())
    waiting = asyncio.create_task(candidate.acquire())
    await asyncio.sleep(60)  # four lease durations, renewed all along
    assert not waiting.done()
    assert lease.record.holder == "a"
    holding.cancel()  # the leader dies without releasing
    died = asyncio.get_running_loop().time()
    await asyncio.wait_for(waiting, 30)
    assert lease.record.holder == "b"
    assert asyncio.get_running_loop().time() - died <= 15 + 2, "within a lease duration and a retry period"


async def test_a_released_lease_is_taken_within_a_retry_period() -> None:
    lease = FakeLease()
    leader, candidate = _elector(lease, "a"), _elector(lease, "b")
    await leader.acquire()
    waiting = asyncio.create_task(candidate.acquire())
    await asyncio.sleep(5)
    await leader.release()
    await asyncio.wait_for(waiting, 2.01)
    assert lease.record.holder == "b"


async def test_a_leader_notices_it_lost_the_lease() -> None:
    lease = FakeLease()
    leader = _elector(lease, "a")
    await leader.acquire()
    lease.record = LeaseRecord("intruder", "x", "99")
    lease.version = 99
    await asyncio.wait_for(leader.hold(), 5.01)  # returns at the first renewal (every 5 s): lost


async def test_two_candidates_never_both_win() -> None:
    lease = FakeLease()
    a, b = _elector(lease, "a"), _elector(lease, "b")
    first = await asyncio.wait_for(
        asyncio.wait(
            [asyncio.create_task(a.acquire()), asyncio.create_task(b.acquire())],
            return_when=asyncio.FIRST_COMPLETED,
        ),
        1,
    )
    done, pending = first
    assert len(done) == 1
    for task in pending:
        task.cancel()
    assert lease.writes == 1


async def test_a_hung_renewal_stops_the_leader_before_anyone_may_take_over() -> None:
    """A renewal that never returns (a 25 s hang was seen) must not keep the leader acting: it stops a
    retry period before the lease could have expired for anyone, and the candidate starts after that."""
    lease = FakeLease()
    leader, candidate = _elector(lease, "a"), _elector(lease, "b")
    loop = asyncio.get_running_loop()
    await leader.acquire()
    holding = asyncio.create_task(leader.hold())
    await asyncio.sleep(20)  # renewed every 5 s meanwhile
    last_renewal_sent = loop.time() - 20 % 5
    lease.stalled.add("a")
    waiting = asyncio.create_task(candidate.acquire())
    await asyncio.wait_for(holding, 30)
    stopped = loop.time()
    assert not leader.leading()
    assert stopped <= last_renewal_sent + 15 - 2 + 0.01
    await asyncio.wait_for(waiting, 30)
    assert loop.time() >= stopped + 2, "the candidate took over a retry period after the leader stopped"


async def test_a_candidate_honours_the_duration_the_holder_recorded() -> None:
    """A rolling upgrade that shortens CAMS_LEASE_SECONDS must not let a new pod take a healthy lease."""
    lease = FakeLease()
    loop = asyncio.get_running_loop()
    old = LeaderElector(lease, identity="old", lease_seconds=30, retry_seconds=2, clock=loop.time)
    new = LeaderElector(lease, identity="new", lease_seconds=6, retry_seconds=2, clock=loop.time)
    await old.acquire()
    holding = asyncio.create_task(old.hold())  # renews every 10 s
    waiting = asyncio.create_task(new.acquire())
    await asyncio.sleep(60)
    assert not waiting.done(), "6 s without change happen between renewals, 30 s never do"
    holding.cancel()
    await asyncio.wait_for(waiting, 40)
    assert lease.record.holder == "new"


async def test_leading_is_false_before_acquiring_and_after_the_deadline() -> None:
    lease = FakeLease()
    leader = _elector(lease, "a")
    assert not leader.leading()
    await leader.acquire()
    assert leader.leading()
    await asyncio.sleep(15 - 2 + 0.1)  # no renewal at all
    assert not leader.leading()


def test_identities_are_unique_per_process_start() -> None:
    first, second = process_identity(), process_identity()
    assert first != second
    assert f"_{os.getpid()}_" in first


async def test_a_short_lease_is_held_for_as_long_as_renewals_succeed() -> None:
    """CAMS_LEASE_SECONDS=3 (the chaos test's) with the 2 s retry period: renewals every second must
    keep the lease, not find it gone after the first sleep."""
    lease = FakeLease()
    loop = asyncio.get_running_loop()
    leader = LeaderElector(lease, identity="a", lease_seconds=3, retry_seconds=2, clock=loop.time)
    await leader.acquire()
    holding = asyncio.create_task(leader.hold())
    await asyncio.sleep(60)
    assert not holding.done()
    assert leader.leading()
    holding.cancel()


async def test_releasing_a_lease_the_api_server_does_not_answer_gives_up_after_a_renewal_period() -> None:
    """The replica's exit must not wait for a Kubernetes call and its retries (over a minute)."""
    lease = FakeLease()
    leader = _elector(lease, "a")
    await leader.acquire()
    lease.stalled.add(None)  # a release writes holder=None: that write hangs
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(leader.release(), 60)
    assert loop.time() - started == pytest.approx(15 / 3)
    assert lease.record.holder == "a", "not released: it expires by itself"
