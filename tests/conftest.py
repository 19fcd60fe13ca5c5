"""What every tier shares: the event loop policy of the test run."""

from __future__ import annotations

import asyncio


class _NoImplicitLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """`get_event_loop()` returns the loop that was set and never makes one behind a test's back (what
    Python 3.14 does). The looptime plugin asks the policy for the loop of every test; for a sync test,
    Python 3.11's policy would make a new loop right there and leak it, unclosed, into a later test."""

    def __init__(self) -> None:
        super().__init__()
        self._current: asyncio.AbstractEventLoop | None = None

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._current = loop
        super().set_event_loop(loop)

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        if self._current is None:
            raise RuntimeError("no event loop is set")
        return super().get_event_loop()


asyncio.set_event_loop_policy(_NoImplicitLoopPolicy())
