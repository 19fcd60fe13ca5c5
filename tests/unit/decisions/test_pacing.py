"""Token bucket and backoff, on a fake clock."""

from __future__ import annotations

import pytest

from cams_webhook_operator.decisions.pacing import TokenBucket, backoff_delay


def test_reservations_are_paced_at_the_rate_after_the_burst() -> None:
    bucket = TokenBucket.full(rate=10, burst=1, now=0.0)
    waits = [bucket.reserve(0.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_reservations_refill_with_time_but_never_beyond_the_burst() -> None:
    bucket = TokenBucket.full(rate=10, burst=3, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(100.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0)


def test_try_take_refuses_without_queueing() -> None:
    bucket = TokenBucket.full(rate=10, burst=10, now=0.0)
    assert sum(bucket.try_take(0.0) for _ in range(15)) == 10
    assert not bucket.try_take(0.05)
    assert bucket.try_take(0.1)


def test_token_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket.full(rate=0, burst=1, now=0)


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.0, 0.5),
        (1, 0.999999, 1.0),
        (2, 0.0, 1.0),
        (4, 0.0, 4.0),
        (30, 0.0, 150.0),
        (30, 0.999999, 300.0),
    ],
    ids=["first-low", "first-high", "second", "fourth", "capped-low", "capped-high"],
)
def test_backoff_doubles_is_capped_and_jittered(attempt: int, jitter: float, expected: float) -> None:
    assert backoff_delay(attempt=attempt, base=1.0, cap=300.0, jitter=jitter) == pytest.approx(
        expected, rel=1e-5
    )
