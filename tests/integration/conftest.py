"""A simulator served over real HTTP on 127.0.0.1, for the client and the official SDK to talk to."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiohttp import web

from cams_simulator.config import AccountConfig, SimulatorConfig, SpaceConfig
from cams_simulator.core import Simulator
from cams_simulator.server import build_app

ACCOUNTS = [
    AccountConfig(
        access_key_id="LTAI-good",
        access_key_secret="good-secret",
        uid="1",
        spaces=[SpaceConfig(id="space-1")],
    ),
    AccountConfig(
        access_key_id="STS.temp",
        access_key_secret="sts-secret",
        security_token="sts-token",
        uid="2",
        spaces=[SpaceConfig(id="space-2")],
    ),
    AccountConfig(
        access_key_id="LTAI-denied",
        access_key_secret="denied-secret",
        uid="3",
        permitted=False,
        spaces=[SpaceConfig(id="space-3")],
    ),
]


@dataclass
class Served:
    simulator: Simulator
    endpoint: str


@asynccontextmanager
async def serving(simulator: Simulator) -> AsyncIterator[Served]:
    """The simulator's HTTP server on a free port of 127.0.0.1, stopped after."""
    runner = web.AppRunner(build_app(simulator), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Served(simulator, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving(
        Simulator(SimulatorConfig(accounts=ACCOUNTS, qps=10), rng=random.Random(7))
    ) as running:
        yield running
