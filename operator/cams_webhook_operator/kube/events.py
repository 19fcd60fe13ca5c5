"""Events that repeat are counted, not multiplied, as client-go's recorder does: the same reason about the
same object within `window` updates the Event already posted (count + 1, last time, latest message)
instead of creating another. 1,000 objects retrying through a long outage then leave at most one Event per
object and reason, whatever the number of retries. Pure bookkeeping: kube/api.py posts and updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

EventKey = tuple[str, str, str]  # (object uid, type, reason)


@dataclass(frozen=True, slots=True)
class Posted:
    name: str  # the Event object's name
    namespace: str
    count: int
    first: datetime
    last: datetime


class EventSeries:
    """Which Events were posted lately, to count repeats on them."""

    def __init__(self, *, window: timedelta = timedelta(minutes=50), limit: int = 100_000) -> None:
        # 50 minutes: within the API server's default Event TTL (one hour), so the Event still exists.
        self._window = window
        self._limit = limit
        self._posted: dict[EventKey, Posted] = {}

    def repeat_of(self, key: EventKey, now: datetime) -> Posted | None:
        """The Event to count this one on, or None to post a new Event."""
        posted = self._posted.get(key)
        if posted is None or now - posted.first > self._window:
            return None
        return posted

    def posted(self, key: EventKey, posted: Posted) -> None:
        self._posted.pop(key, None)
        self._posted[key] = posted  # newest last: the oldest are dropped first
        if len(self._posted) > self._limit:
            del self._posted[next(iter(self._posted))]

    def forget(self, key: EventKey) -> None:
        """The Event to count on is gone (expired, or deleted): the next one is posted anew."""
        self._posted.pop(key, None)
