"""Flow control's pure parts, on numbers for a clock: the adaptive rate, and the breaker for outages."""

from __future__ import annotations

import pytest

from cams_webhook_operator.decisions.pacing import AdaptiveRate, Admission, Breaker, Transition


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


def _fail(breaker: Breaker, key: str, now: float = 0.0) -> Transition | None:
    return breaker.record(failed=True, key=key, now=now, cause="ServiceUnavailable (HTTP 503)", probe=False)


def test_the_breaker_opens_after_a_streak_of_failures_from_several_objects() -> None:
    breaker = Breaker(threshold=3)
    assert [_fail(breaker, k) for k in ("a", "b")] == [None, None]
    assert breaker.admit(0.0) is Admission.GO
    assert _fail(breaker, "c", now=5.0) is Transition.OPENED
    outage = breaker.outage
    assert outage is not None
    assert (outage.episode, outage.since, outage.cause) == (1, 5.0, "ServiceUnavailable (HTTP 503)")


def test_one_object_failing_on_its_own_is_not_an_outage() -> None:
    breaker = Breaker(threshold=3)
    assert [_fail(breaker, "a") for _ in range(10)] == [None] * 10
    assert not breaker.is_open


def test_any_answer_breaks_the_streak() -> None:
    breaker = Breaker(threshold=3)
    _fail(breaker, "a")
    _fail(breaker, "b")
    # Flow control is an answer: CAMS is there, just busy.
    assert breaker.record(failed=False, key="c", now=0, cause="", probe=False) is None
    assert _fail(breaker, "d") is None


def test_an_open_breaker_admits_one_probe_per_interval_and_an_answer_closes_it() -> None:
    breaker = Breaker(threshold=2, probe_interval=2.0)
    _fail(breaker, "a", now=10.0)
    _fail(breaker, "b", now=10.0)
    assert breaker.admit(11.0) is Admission.WAIT  # the first probe is one interval after opening
    assert breaker.admit(12.0) is Admission.PROBE
    assert breaker.admit(12.5) is Admission.WAIT  # one probe at a time
    assert breaker.record(failed=True, key="p", now=12.6, cause="timeout", probe=True) is None
    assert breaker.admit(13.0) is Admission.WAIT  # not before the interval is over
    assert breaker.admit(14.0) is Admission.PROBE
    breaker.probe_dropped()  # its object changed before it was sent
    assert breaker.admit(14.0) is Admission.PROBE
    assert breaker.record(failed=False, key="p", now=14.2, cause="", probe=True) is Transition.CLOSED
    assert breaker.admit(14.3) is Admission.GO
    assert breaker.outage is None


def test_a_throttled_answer_that_says_when_holds_every_slot_until_then() -> None:
    limiter = AdaptiveRate.start(rate=10, burst=10, now=0.0)
    limiter.on_throttled(0.0)
    limiter.hold(0.0, 3.0)
    assert limiter.held_until == 3.0, "a slot reserved before the answer waits for it too"
    assert limiter.reserve(0.0) == pytest.approx(3.0)
