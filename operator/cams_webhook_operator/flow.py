"""Flow control toward CAMS: a token bucket per account, and per-object retry backoff.

Pure: the clock and the randomness are passed in, so the behaviour is unit-tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """A reservation-style token bucket.

    `reserve` hands out a call slot and says how long to wait for it. Tokens may go negative: each caller
    reserves its own future slot, so callers are served in order and never sent early, at `rate` per second
    once the burst is spent.
    """

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, *, rate: float, burst: float, now: float) -> TokenBucket:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> bool:
        """Take one token if one is there now (how a server enforces a quota: refuse, never queue)."""
        self.refill(now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before using it (0 when one is ready now)."""
        self.refill(now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def backoff_delay(*, attempt: int, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with jitter: base * 2**(attempt-1), capped, then scaled into [50 %, 100 %].

    `jitter` is a number in [0, 1) from the caller's random source. Half the delay is kept fixed so a retry
    never comes back almost at once; the other half spreads the objects that failed together.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    exponential = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return exponential * (0.5 + 0.5 * jitter)


@dataclass
class AdaptiveRate:
    """A token bucket whose rate follows CAMS's answers: additive increase, multiplicative decrease.

    On a throttled answer the rate is cut (at most once per `cooldown`, since the answers to calls
    already in flight arrive together and tell of one overload, not several); it then climbs back to the
    configured `ceiling` over `recovery_seconds`. So a quota smaller than configured, or shared with other
    clients of the same account, settles near what CAMS really allows instead of producing a storm.
    """

    bucket: TokenBucket
    ceiling: float
    floor: float
    decrease_factor: float = 0.5
    recovery_seconds: float = 20.0
    cooldown: float = 1.0
    last_decrease: float = float("-inf")

    @classmethod
    def start(cls, *, rate: float, burst: float, now: float, floor: float | None = None) -> AdaptiveRate:
        return cls(
            bucket=TokenBucket.full(rate=rate, burst=burst, now=now),
            ceiling=rate,
            floor=floor if floor is not None else max(rate / 20, 0.1),
        )

    @property
    def rate(self) -> float:
        return self.bucket.rate

    def _recover(self, now: float) -> None:
        elapsed = now - self.bucket.updated
        self.bucket.refill(now)  # tokens earned so far at the old rate
        if self.bucket.rate < self.ceiling and elapsed > 0:
            step = (self.ceiling - self.floor) / self.recovery_seconds
            self.bucket.rate = min(self.ceiling, self.bucket.rate + step * elapsed)

    def reserve(self, now: float) -> float:
        self._recover(now)
        return self.bucket.reserve(now)

    def refund(self) -> None:
        """Give back a reserved token that was not used."""
        self.bucket.tokens = min(self.bucket.burst, self.bucket.tokens + 1)

    def on_throttled(self, now: float) -> None:
        self._recover(now)
        if now - self.last_decrease >= self.cooldown:
            self.bucket.rate = max(self.floor, self.bucket.rate * self.decrease_factor)
            self.last_decrease = now
