"""The kopf wiring's own decisions: a leader whose workers died lets go and is restarted; /healthz says
so. (Everything else in handlers.py is proven by the end-to-end tier.)"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from cams_webhook_operator import handlers

pytestmark = pytest.mark.looptime


class DyingController:
    async def run(self) -> None:
        await asyncio.sleep(5)
        raise RuntimeError("a bug in a worker")


class Elector:
    released = False

    async def acquire(self) -> None:
        return None

    async def hold(self) -> None:
        await asyncio.Event().wait()  # the lease would be renewed forever

    async def release(self) -> None:
        self.released = True


async def test_dead_workers_end_the_leadership_and_fail_the_health_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signals: list[int] = []
    monkeypatch.setattr("os.kill", lambda pid, sig: signals.append(sig))
    elector = Elector()
    controller: Any = DyingController()
    leader: Any = elector
    task = asyncio.create_task(handlers._lead(controller, leader))
    assert handlers.controller_state(task) == "running"
    await asyncio.wait_for(asyncio.shield(task), 10)
    assert elector.released, "the lease is given up, not held by a replica that does nothing"
    assert signals == [signal.SIGTERM]
    assert handlers.controller_state(task) == "stopped", "/healthz fails from now on"
