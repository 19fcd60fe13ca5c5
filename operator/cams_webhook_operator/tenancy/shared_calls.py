"""One call per key at a time: whoever asks for a key while its call runs waits for that call's result
instead of making another (the same read of a space, the same question to STS, asked by many objects at
once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SharedCalls(Generic[K, T]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[T]]) -> T:
        if (running := self._running.get(key)) is not None:
            # Shielded: a waiter that is cancelled must not cancel the call that others wait for.
            return await asyncio.shield(running)
        future = self._running[key] = asyncio.get_running_loop().create_future()
        try:
            result = await call()
        except asyncio.CancelledError:
            future.cancel()  # the operator is stopping: so are those waiting
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: those waiting get it, nobody else need to
            raise
        finally:
            del self._running[key]
        future.set_result(result)
        return result
