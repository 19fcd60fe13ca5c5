"""The kopf wiring's own decisions: a leader whose workers died lets go and is restarted; /healthz says
so. (Everything else in handlers.py is proven by the end-to-end tier.)"""

from __future__ import annotations

import asyncio
import itertools
import signal
from typing import Any

import kopf
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


class Wiring:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.following = self
        self.followed = {"phonewebhooks": self}

    def relisted(self, followed: Any) -> None:
        self.calls.append(("relisted",))

    def seen(self, body: dict[str, Any]) -> None:
        self.calls.append(("seen", body["metadata"]["name"]))

    def gone(self, namespace: str, name: str) -> None:
        self.calls.append(("gone", namespace, name))


def _event(type_: str | None) -> Any:
    return {"type": type_, "object": {"metadata": {"namespace": "ns", "name": "pwh"}}}


def test_each_watch_event_reaches_the_controller_and_a_listing_asks_for_a_comparison() -> None:
    memo: Any = kopf.Memo(wiring=Wiring())
    for type_ in ("ADDED", "MODIFIED", None, "DELETED"):
        handlers._hand(memo, "phonewebhooks", _event(type_))
    assert memo.wiring.calls == [
        ("seen", "pwh"),
        ("seen", "pwh"),
        ("relisted",),
        ("seen", "pwh"),
        ("gone", "ns", "pwh"),
    ]


def test_events_before_the_start_up_handler_has_wired_the_controller_are_dropped() -> None:
    handlers._hand(kopf.Memo(), "phonewebhooks", _event("ADDED"))  # no error: the listing will see it


@pytest.mark.parametrize(("namespaces", "scanning"), [([], False), (["team-a"], False), (["team-*"], True)])
def test_kopf_scans_for_namespaces_only_when_a_pattern_needs_it(
    namespaces: list[str], scanning: bool
) -> None:
    settings = kopf.OperatorSettings()
    handlers.configure_kopf(settings, namespaces, streaming=True)
    assert settings.scanning.disabled is not scanning
    essence = settings.persistence.diffbase_storage.build(body=kopf.Body({"spec": {"a": 1}}))
    assert essence == {}, "no diff-base is built for any event"


def test_kopf_retries_its_api_calls_for_ever_and_streams_where_the_server_can() -> None:
    for streaming in (True, False):
        settings = kopf.OperatorSettings()
        handlers.configure_kopf(settings, [], streaming=streaming)
        assert settings.watching.initial_streaming is streaming
        delays = list(itertools.islice(iter(settings.networking.error_backoffs), 1000))  # type: ignore[arg-type]
        assert len(delays) == 1000, "never a last attempt that would end a watch"
        assert max(delays) == 30
        assert list(itertools.islice(iter(settings.networking.error_backoffs), 3)) == [1, 1, 2], "re-iterable"  # type: ignore[arg-type]
