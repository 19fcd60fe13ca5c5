"""Flow control toward CAMS: a token bucket per account, per-object retry backoff, and a breaker per
account for outages.

Pure: the clock and the randomness are passed in, so the behaviour is unit-tested without sleeping.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field


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
    # No call before this moment: CAMS said so (x-acs-retry-after). A slot reserved earlier waits for it too.
    held_until: float = float("-inf")

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

    def set_ceiling(self, rate: float, now: float) -> None:
        """The account's quota changed: a lower one applies at once, a higher one is climbed to."""
        if rate == self.ceiling:
            return
        self._recover(now)
        self.ceiling, self.floor = rate, max(rate / 20, 0.1)
        self.bucket.rate = min(self.bucket.rate, rate)

    def on_throttled(self, now: float) -> None:
        self._recover(now)
        if now - self.last_decrease >= self.cooldown:
            self.bucket.rate = max(self.floor, self.bucket.rate * self.decrease_factor)
            self.last_decrease = now

    def hold(self, now: float, seconds: float) -> None:
        """CAMS said how long to wait before calling again (x-acs-retry-after, on a throttled answer or a
        503): hand out no slot before then."""
        self._recover(now)
        self.held_until = max(self.held_until, now + seconds)
        # The next reservation takes the last token this leaves and waits `seconds` for it.
        self.bucket.tokens = min(self.bucket.tokens, 1 - self.bucket.rate * seconds)


class Admission(enum.Enum):
    """What an account's breaker says to a call that wants to go out."""

    GO = "go"  # closed: go at the quota's pace
    PROBE = "probe"  # open, and this call is the one probe of its interval
    WAIT = "wait"  # open: hold the object until a probe succeeds


@dataclass(frozen=True)
class Outage:
    """An open breaker, as the account's objects are told of it."""

    episode: int
    since: float  # on the breaker's clock
    cause: str
    probe_interval: float


class Transition(enum.Enum):
    OPENED = "opened"
    CLOSED = "closed"


@dataclass
class Breaker:
    """An account-level circuit breaker for CAMS outages. Pure: the clock is passed in.

    Closed, every call goes out. After `threshold` transient failures in a row (5xx, timeouts, connection
    errors) from at least two different objects, with no answer in between, it opens: the account's objects
    are held, and one call per `probe_interval` goes out as a probe. Any answer that is not such a failure
    (success, but also flow control or a refusal: CAMS is there to say no) closes it, and everything held
    is released at once. Two objects, because one object whose own request keeps failing is not an outage
    and keeps its per-object backoff.
    """

    threshold: int = 5
    probe_interval: float = 2.0
    streak: int = 0
    streak_keys: set[Hashable] = field(default_factory=set)
    opened_at: float | None = None
    episode: int = 0  # how many times it has opened; an object is told once per episode
    cause: str = ""  # the last failure, for people
    probing: bool = False
    next_probe: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    @property
    def outage(self) -> Outage | None:
        if self.opened_at is None:
            return None
        return Outage(self.episode, self.opened_at, self.cause, self.probe_interval)

    def admit(self, now: float) -> Admission:
        if not self.is_open:
            return Admission.GO
        if self.probing or now < self.next_probe:
            return Admission.WAIT
        self.probing = True
        self.next_probe = now + self.probe_interval
        return Admission.PROBE

    def probe_dropped(self) -> None:
        """The probe was admitted but never sent (its object changed meanwhile): the next call may probe."""
        self.probing = False
        self.next_probe -= self.probe_interval

    def record(
        self, *, failed: bool, key: Hashable, now: float, cause: str, probe: bool
    ) -> Transition | None:
        """One call's result: `failed` when it got no answer or a 5xx."""
        if probe:
            self.probing = False
        if not failed:
            self.streak = 0
            self.streak_keys.clear()
            if self.is_open:
                self.opened_at = None
                return Transition.CLOSED
            return None
        self.cause = cause
        if self.is_open:
            return None
        self.streak += 1
        self.streak_keys.add(key)
        if self.streak >= self.threshold and len(self.streak_keys) >= 2:
            self.opened_at = now
            self.episode += 1
            self.next_probe = now + self.probe_interval
            return Transition.OPENED
        return None
