"""The adaptive per-account gate in front of CAMS, on a fake clock: pacing, priority, slow-down, recovery."""

from __future__ import annotations

import asyncio

import pytest

from cams_webhook_operator.flow import AdaptiveRate
from cams_webhook_operator.gate import AccountGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        for _ in range(5):  # let the waiter just granted run (and note the time) before time moves on
            await asyncio.sleep(0)
        self.now += seconds


def test_throttling_halves_the_rate_once_per_cooldown() -> None:
    limiter = AdaptiveRate.start(rate=10, burst=1, now=0)
    limiter.on_throttled(0.0)
    limiter.on_throttled(0.1)  # the same overload, answered for calls already in flight
    assert limiter.rate == pytest.approx(5, abs=0.1)
    limiter.on_throttled(1.2)  # a new overload: what was recovered since 0.1 s is halved with the rest
    recovery_per_second = (10 - 0.5) / 20
    assert limiter.rate == pytest.approx((5 + recovery_per_second * 1.2) / 2, rel=0.01)


def test_rate_recovers_to_the_ceiling_and_not_beyond() -> None:
    limiter = AdaptiveRate.start(rate=10, burst=1, now=0)
    limiter.on_throttled(0.0)
    limiter.reserve(10.0)
    assert 5 < limiter.rate < 10
    limiter.reserve(60.0)
    assert limiter.rate == 10


def test_rate_never_falls_below_the_floor() -> None:
    limiter = AdaptiveRate.start(rate=10, burst=1, now=0, floor=1)
    for second in range(20):
        limiter.on_throttled(float(second) * 2)
    assert limiter.rate >= 1


def test_refund_gives_back_an_unused_slot() -> None:
    limiter = AdaptiveRate.start(rate=10, burst=1, now=0)
    assert limiter.reserve(0) == 0
    limiter.refund()
    assert limiter.reserve(0) == 0


async def _grants(
    gate: AccountGate, clock: FakeClock, requests: list[tuple[str, int]]
) -> list[tuple[str, float]]:
    granted: list[tuple[str, float]] = []

    async def ask(name: str, priority: int) -> None:
        await gate.acquire(priority)
        granted.append((name, round(clock.now, 3)))

    await asyncio.gather(*(ask(name, priority) for name, priority in requests))
    return granted


async def test_gate_paces_calls_at_the_rate() -> None:
    clock = FakeClock()
    gate = AccountGate(AdaptiveRate.start(rate=10, burst=1, now=0), clock=clock, sleep=clock.sleep)
    granted = await _grants(gate, clock, [(f"o{i}", 1) for i in range(5)])
    assert [t for _, t in granted] == [0.0, 0.1, 0.2, 0.3, 0.4]


async def test_user_changes_take_the_next_slot_ahead_of_routine_checks() -> None:
    clock = FakeClock()
    gate = AccountGate(AdaptiveRate.start(rate=10, burst=1, now=0), clock=clock, sleep=clock.sleep)
    granted: list[str] = []
    first_granted = asyncio.Event()

    async def ask(name: str, priority: int) -> None:
        await gate.acquire(priority)
        granted.append(name)
        first_granted.set()

    routine = [asyncio.create_task(ask(f"routine-{i}", 1)) for i in range(1, 4)]
    await first_granted.wait()
    await ask("user", 0)  # arrives while two routine checks are still waiting
    await asyncio.gather(*routine)
    assert granted == ["routine-1", "user", "routine-2", "routine-3"]


async def test_throttled_answers_slow_the_gate_down() -> None:
    clock = FakeClock()
    gate = AccountGate(AdaptiveRate.start(rate=10, burst=1, now=0), clock=clock, sleep=clock.sleep)
    await _grants(gate, clock, [("a", 0)])
    gate.throttled()
    granted = await _grants(gate, clock, [("b", 0), ("c", 0)])
    assert granted[1][1] - granted[0][1] == pytest.approx(0.2, abs=0.01)


async def test_a_fixed_rate_gate_ignores_throttling() -> None:
    clock = FakeClock()
    gate = AccountGate(
        AdaptiveRate.start(rate=10, burst=1, now=0), adaptive=False, clock=clock, sleep=clock.sleep
    )
    gate.throttled()
    assert gate.limiter.rate == 10


async def test_a_cancelled_waiter_does_not_use_up_a_slot() -> None:
    clock = FakeClock()
    gate = AccountGate(AdaptiveRate.start(rate=10, burst=1, now=0), clock=clock, sleep=clock.sleep)
    await gate.acquire(0)
    waiter = asyncio.create_task(gate.acquire(0))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await asyncio.sleep(0)
    assert gate.waiting == 0
    await gate.acquire(0)  # the slot came back; the next caller gets it without a second wait
    assert clock.now == pytest.approx(0.1)
