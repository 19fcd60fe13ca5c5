"""A work queue of object keys, in the manner of client-go's, with priorities and fair turns.

A key is queued at most once; a key being processed is never handed to a second worker, and a key added
while it is processed comes back after. Lower priority numbers come out first, and adding a queued key with
a more urgent priority moves it up. Within a priority, flows (one per namespace: a tenant) take turns, as
in the lanes (fairqueue.py): a namespace with one change waits at most one key of each other namespace,
however many keys those have queued (one tenant's 30,000 objects used to delay every other change by
minutes). Within a flow, the keys' `within` values take turns likewise (the credentials objects use: see
controller.credentials_named), and within those, first come, first served.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cams_webhook_operator.decisions.fairqueue import FairQueue

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        flow: Callable[[K], Hashable] = lambda key: None,
        within: Callable[[K], Hashable] = lambda key: None,
    ) -> None:
        """`flow`: the fairness key of a key (by default one flow: first come, first served); `within`: the
        fairness key of a key within its flow's turns."""
        self._flow = flow
        self._within = within
        self._fair: FairQueue[tuple[int, K]] = FairQueue()
        self._queued: dict[K, int] = {}  # key -> its priority in the queue (other entries of it are stale)
        self._processing: set[K] = set()
        self._dirty: dict[K, int] = {}  # added while processing -> priority to come back with
        self._timers: dict[K, tuple[asyncio.TimerHandle, int]] = {}
        # Workers waiting for a key, woken one per key added: an event that woke them all cost 16 wake-ups
        # per key, each a turn of the loop's (docs/benchmarks.md, issue 29).
        self._waiting: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K, priority: int = 0) -> None:
        """Queue `key` now (and forget any later time it was scheduled for)."""
        scheduled = self._timers.pop(key, None)
        if scheduled is not None:
            scheduled[0].cancel()
            priority = min(priority, scheduled[1])
        if key in self._processing:
            self._dirty[key] = min(priority, self._dirty.get(key, priority))
            return
        current = self._queued.get(key)
        if current is not None and current <= priority:
            return
        self._queued[key] = priority
        self._fair.push((priority, key), flow=self._flow(key), priority=priority, within=self._within(key))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # not cancelled
                waiter.set_result(None)
                return

    def add_after(self, key: K, delay: float, priority: int = 0) -> None:
        """Queue `key` after `delay` seconds, unless it is queued sooner by then."""
        if delay <= 0:
            self.add(key, priority)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        scheduled = self._timers.get(key)
        if scheduled is not None:
            if scheduled[0].when() <= due:
                return
            scheduled[0].cancel()
        self._timers[key] = (loop.call_at(due, self._fire, key), priority)

    def _fire(self, key: K) -> None:
        scheduled = self._timers.pop(key, None)
        self.add(key, scheduled[1] if scheduled else 0)

    def forget(self, key: K) -> None:
        """Drop a scheduled retry of `key` (the object is gone)."""
        scheduled = self._timers.pop(key, None)
        if scheduled is not None:
            scheduled[0].cancel()

    async def get(self) -> tuple[K, int]:
        """The most urgent key and its priority, always after letting the event loop run once: an object in
        sync is decided without an await that suspends (every answer is cached), and a worker taking
        30,000 of them in a row held the loop past the leader lease's renewal deadline."""
        await asyncio.sleep(0)
        while True:
            while (entry := self._fair.pop()) is not None:
                priority, key = entry
                if self._queued.get(key) == priority:
                    del self._queued[key]
                    self._processing.add(key)
                    return key, priority
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled before it ran: another worker takes the key
                raise

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self.add(key, self._dirty.pop(key))

    def close(self) -> None:
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()
