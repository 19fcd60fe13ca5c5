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


class Cluster:
    """A fake API server: one object per resource; the cluster accounts' listing waits for `release`."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def request(self, method: str, path: str, *, params: Any = None) -> dict[str, Any]:
        if path.endswith("/clustercamsaccounts"):
            await self.release.wait()
        meta = {"name": path.rsplit("/", 1)[1][:-1], "resourceVersion": "1"}
        if "/namespaces/" in path:
            meta["namespace"] = "team"
        return {"items": [{"metadata": meta}], "metadata": {"resourceVersion": "1"}}

    async def watch(self, path: str, params: Any) -> Any:
        await asyncio.Event().wait()
        yield {}


class Recorder:
    def __init__(self) -> None:
        self.listed = asyncio.Event()
        self.seen: list[tuple[str, ...]] = []

    def observe(self, body: dict[str, Any]) -> None:
        self.seen.append(("phonewebhook", body["metadata"]["name"]))

    def observe_account(self, body: dict[str, Any], kind: str) -> None:
        self.seen.append((kind, body["metadata"]["name"]))

    def namespace_changed(self, name: str, labels: Any, *, terminating: bool = False) -> None:
        self.seen.append(("namespace", name))

    def forget(self, namespace: str, name: str) -> None:
        self.seen.append(("gone", name))

    def forget_account(self, kind: str, namespace: str, name: str) -> None:
        self.seen.append(("gone", name))

    def known(self) -> list[Any]:
        return []

    known_namespaces = known

    def known_accounts(self, kind: str) -> list[Any]:
        return []


async def test_nothing_is_decided_before_the_accounts_and_namespaces_are_listed_too() -> None:
    """An object decided before its account is known would show Stalled (NoAccount) at every restart."""
    cluster, controller = Cluster(), Recorder()
    http: Any = cluster
    informing = asyncio.create_task(handlers._inform(controller, http, ["team"]))  # type: ignore[arg-type]
    await asyncio.sleep(1)
    assert ("phonewebhook", "phonewebhook") in controller.seen
    assert ("CamsAccount", "camsaccount") in controller.seen
    assert ("namespace", "namespace") in controller.seen
    assert not controller.listed.is_set(), "the cluster accounts are not listed yet"
    cluster.release.set()
    await asyncio.sleep(1)
    assert ("ClusterCamsAccount", "clustercamsaccount") in controller.seen
    assert controller.listed.is_set()
    informing.cancel()
    await asyncio.gather(informing, return_exceptions=True)
