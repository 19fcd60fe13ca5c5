"""The operator's own list and watch of PhoneWebhooks, against a fake API server: pages, the end of the
listing, events in order, a listing that finds objects gone, an expired version, patterns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cams_webhook_operator.informer import Informer, namespace_filter

pytestmark = pytest.mark.looptime


def obj(namespace: str, name: str, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": version}}


class FakeApi:
    """Lists in pages of two; each watch plays the next script (events, then the stream ends), and blocks
    for ever once none is left."""

    def __init__(self, objects: list[dict[str, Any]], watches: list[list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.watches = watches
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.expire_continue_once = False

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        params = dict(params or {})
        self.requests.append((path, params))
        if "continue" in params and self.expire_continue_once:
            self.expire_continue_once = False
            raise ApiException(status=410, reason="Expired")
        start = int(params.get("continue", "0"))
        items = self.objects[start : start + 2]
        more = start + 2 < len(self.objects)
        return {
            "items": items,
            "metadata": {"resourceVersion": "100", "continue": str(start + 2) if more else ""},
        }

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        self.requests.append((path, dict(params)))
        if not self.watches:
            await asyncio.Event().wait()
        for event in self.watches.pop(0):
            if event.get("type") == "RAISE":
                raise ApiException(status=event["status"])
            if event.get("type") == "MEANWHILE":  # what changes while the watch cannot follow
                self.objects = event["objects"]
                continue
            yield event


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.listed_at: int | None = None
        self.present: set[tuple[str, str]] = set()

    def seen(self, body: Mapping[str, Any]) -> None:
        self.log.append(("seen", f"{body['metadata']['namespace']}/{body['metadata']['name']}"))
        self.present.add((body["metadata"]["namespace"], body["metadata"]["name"]))

    def gone(self, namespace: str, name: str) -> None:
        self.log.append(("gone", f"{namespace}/{name}"))
        self.present.discard((namespace, name))

    def known(self) -> list[tuple[str, str]]:
        return list(self.present)

    def listed(self) -> None:
        self.listed_at = len(self.log)


async def _run(api: FakeApi, namespaces: list[str], seconds: float = 100) -> Recorder:
    recorder = Recorder()
    informer = Informer(
        api,
        namespaces=namespaces,
        seen=recorder.seen,
        gone=recorder.gone,
        listed=recorder.listed,
        known=recorder.known,
    )
    task = asyncio.create_task(informer.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return recorder


async def test_pages_are_seen_then_listed_is_signalled_then_the_watch_goes_on_from_the_lists_version() -> (
    None
):
    api = FakeApi(
        [obj("a", f"o{i}") for i in range(5)],
        [
            [
                {"type": "MODIFIED", "object": obj("a", "o1", "101")},
                {"type": "DELETED", "object": obj("a", "o2", "102")},
            ]
        ],
    )
    recorder = await _run(api, ["a"])
    assert recorder.log == [("seen", f"a/o{i}") for i in range(5)] + [("seen", "a/o1"), ("gone", "a/o2")]
    assert recorder.listed_at == 5
    watches = [params for _, params in api.requests if params.get("watch")]
    assert watches[0]["resourceVersion"] == "100"
    assert watches[1]["resourceVersion"] == "102", "the next watch goes on from the last event's version"


async def test_an_expired_version_lists_again_and_what_the_new_listing_lacks_is_gone() -> None:
    api = FakeApi(
        [obj("a", "o1"), obj("a", "o2")],
        [
            [
                {"type": "MEANWHILE", "objects": [obj("a", "o2", "200")]},  # o1 deleted meanwhile
                {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}},
            ]
        ],
    )
    recorder = await _run(api, ["a"])
    assert recorder.log == [("seen", "a/o1"), ("seen", "a/o2"), ("seen", "a/o2"), ("gone", "a/o1")]


async def test_an_expired_continue_token_starts_the_listing_over() -> None:
    api = FakeApi([obj("a", f"o{i}") for i in range(3)], [])
    api.expire_continue_once = True
    recorder = await _run(api, ["a"])
    assert recorder.log == [
        ("seen", "a/o0"),
        ("seen", "a/o1"),
        ("seen", "a/o0"),
        ("seen", "a/o1"),
        ("seen", "a/o2"),
    ]
    assert recorder.listed_at == 5


async def test_a_failing_watch_is_retried_with_backoff_and_listed_waits_for_every_namespace() -> None:
    api = FakeApi([obj("a", "o1")], [[{"type": "RAISE", "status": 500}], [{"type": "RAISE", "status": 500}]])
    recorder = await _run(api, ["a", "b"], seconds=10)
    paths = [path for path, params in api.requests if not params.get("watch")]
    assert any("/namespaces/a/" in p for p in paths)
    assert any("/namespaces/b/" in p for p in paths)
    assert recorder.listed_at is not None
    assert sum(1 for _, params in api.requests if params.get("watch")) >= 3


async def test_patterns_watch_all_namespaces_and_keep_only_the_matching_ones() -> None:
    api = FakeApi([obj("team-a", "o1"), obj("kube-system", "o2"), obj("team-b", "o3")], [])
    recorder = await _run(api, ["team-*", "!team-b"])
    assert recorder.log == [("seen", "team-a/o1")]
    assert all("/namespaces/" not in path for path, _ in api.requests)


def test_namespace_patterns_follow_kopf() -> None:
    wanted = namespace_filter(["team-*", "!team-b*"])
    assert [n for n in ("team-a", "team-b1", "other") if wanted(n)] == ["team-a"]
    assert namespace_filter([])("anything")
