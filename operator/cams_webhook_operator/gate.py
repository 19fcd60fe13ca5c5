"""A per-account gate in front of CAMS: paced by an adaptive token bucket, and fair by priority.

Each slot the bucket releases goes to the most urgent waiter at that moment, not to whoever asked first:
a user's change that arrives while routine re-checks wait still takes the next slot.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable

from cams_webhook_operator.flow import AdaptiveRate


class AccountGate:
    def __init__(
        self,
        limiter: AdaptiveRate,
        *,
        adaptive: bool = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limiter = limiter
        self._adaptive = adaptive
        # Injected so the pacing is tested on a fake clock, without sleeping.
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._sleep = sleep
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    async def acquire(self, priority: int) -> None:
        """Wait for a call slot; lower `priority` numbers are served first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="account-gate")
        try:
            await future
        except asyncio.CancelledError:
            future.cancel()  # the dispatcher skips it
            raise

    def throttled(self) -> None:
        if self._adaptive:
            self.limiter.on_throttled(self._clock())

    async def _dispatch(self) -> None:
        while self._waiters:
            delay = self.limiter.reserve(self._clock())
            if delay > 0:
                await self._sleep(delay)
            while self._waiters:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(None)
                    break
            else:
                self.limiter.refund()  # everyone who waited gave up
