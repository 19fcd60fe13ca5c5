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

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> bool:
        """Take one token if one is there now (how a server enforces a quota: refuse, never queue)."""
        self._refill(now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before using it (0 when one is ready now)."""
        self._refill(now)
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
