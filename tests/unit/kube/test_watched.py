"""The listing before kopf's watches start, and the comparison after kopf lists anew (watched.py), through
the official asyncio client against a stand-in API server; and the paged listing under them
(kube_client.pages)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web
from kubernetes.aio import client

from cams_webhook_operator.kube import client as kube_client
from cams_webhook_operator.kube import watched
from cams_webhook_operator.kube.client import ApiException, pages
from cams_webhook_operator.kube.watched import Followed, Following
from tests.unit.fake_api_server import FakeApiServer, api_client
from tests.unit.local_http import serving

PWH = "/apis/camswebhook.io/v1alpha1"


class Receiver:
    """What the controller would keep: the keys seen and not gone."""

    def __init__(self, *known: tuple[str, str]) -> None:
        self.keys: set[tuple[str, str]] = set(known)
        self.seen: list[tuple[str, str]] = []
        self.gone: list[tuple[str, str]] = []

    def followed(self, plural: str = "phonewebhooks", *, namespaced: bool = True) -> Followed:
        def seen(body: Mapping[str, Any]) -> None:
            key = (body["metadata"].get("namespace") or "", body["metadata"]["name"])
            self.seen.append(key)
            self.keys.add(key)

        def gone(namespace: str, name: str) -> None:
            self.gone.append((namespace, name))
            self.keys.discard((namespace, name))

        group = "" if plural == "namespaces" else "camswebhook.io"
        version = "v1" if plural == "namespaces" else "v1alpha1"
        return Followed(group, version, plural, namespaced, seen, gone, lambda: sorted(self.keys))


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_client, "PAGE", 2)


async def test_every_object_is_listed_page_by_page_in_every_watched_namespace() -> None:
    server = FakeApiServer()
    server.put(f"{PWH}/namespaces/team-a/phonewebhooks", "a1", "a2", "a3", namespace="team-a")
    server.put(f"{PWH}/namespaces/team-b/phonewebhooks", "b1", namespace="team-b")
    server.put(f"{PWH}/namespaces/team-c/phonewebhooks", "c1", namespace="team-c")
    receiver = Receiver()
    async with api_client(server) as api:
        await Following(api, namespaces=["team-a", "team-b"]).list_all(receiver.followed())
    assert receiver.seen == [("team-a", "a1"), ("team-a", "a2"), ("team-a", "a3"), ("team-b", "b1")]
    assert [(path, query.get("limit"), query.get("continue")) for _, path, query in server.requests] == [
        (f"{PWH}/namespaces/team-a/phonewebhooks", "2", None),
        (f"{PWH}/namespaces/team-a/phonewebhooks", "2", "2"),
        (f"{PWH}/namespaces/team-b/phonewebhooks", "2", None),
    ]


async def test_namespace_patterns_list_every_namespace_and_keep_the_matching_ones() -> None:
    server = FakeApiServer()
    for namespace in ("team-a", "team-b", "other"):
        server.collections.setdefault(f"{PWH}/phonewebhooks", [])
        server.put(f"{PWH}/phonewebhooks", f"in-{namespace}", namespace=namespace)
    receiver = Receiver()
    async with api_client(server) as api:
        await Following(api, namespaces=["team-*", "!team-b"]).list_all(receiver.followed())
    assert receiver.seen == [("team-a", "in-team-a")]


async def test_cluster_scoped_resources_are_listed_once_whatever_the_namespaces() -> None:
    server = FakeApiServer()
    server.put("/api/v1/namespaces", "team-a", "kube-system")
    receiver = Receiver()
    async with api_client(server) as api:
        await Following(api, namespaces=["team-a"]).list_all(
            receiver.followed("namespaces", namespaced=False)
        )
    assert receiver.seen == [("", "team-a"), ("", "kube-system")]


@pytest.mark.looptime
async def test_a_listing_that_fails_is_tried_again_until_it_succeeds() -> None:
    server = FakeApiServer(failures=3)
    server.put(f"{PWH}/phonewebhooks", "a", namespace="ns")
    receiver = Receiver()
    async with api_client(server) as api:
        await Following(api, namespaces=[]).list_all(receiver.followed())
    assert receiver.seen == [("ns", "a")]
    assert len(server.requests) == 4


async def test_an_expired_continue_token_starts_the_listing_over_and_says_so() -> None:
    server = FakeApiServer(expire_tokens=1)
    server.put(f"{PWH}/phonewebhooks", "a", "b", "c", namespace="ns")
    started_over: list[int] = []
    names: list[str] = []
    async with api_client(server) as api:
        custom = client.CustomObjectsApi(api)
        async for page in pages(
            custom.list_cluster_custom_object_without_preload_content,
            group="camswebhook.io",
            version="v1alpha1",
            plural="phonewebhooks",
            started_over=lambda: started_over.append(len(names)),
        ):
            names.extend(item["metadata"]["name"] for item in page["items"])
    assert started_over == [2], "told once, after the first page"
    assert names == ["a", "b", "a", "b", "c"]


async def test_an_expired_first_page_is_the_callers_to_handle() -> None:
    server = FakeApiServer(failures=1)
    async with api_client(server) as api:
        custom = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as refused:
            async for _ in pages(
                custom.list_cluster_custom_object_without_preload_content,
                group="camswebhook.io",
                version="v1alpha1",
                plural="phonewebhooks",
            ):
                pass
    assert refused.value.status == 500


async def test_an_object_deleted_while_no_watch_saw_it_is_forgotten_and_only_that_one() -> None:
    server = FakeApiServer()
    server.put(f"{PWH}/phonewebhooks", "kept", "recreated", namespace="ns")
    server.hidden.add("recreated")  # created again after the listing's snapshot: read, it exists
    receiver = Receiver(("ns", "kept"), ("ns", "deleted"), ("ns", "recreated"))
    async with api_client(server) as api:
        forgotten = await Following(api, namespaces=[]).catch_up(receiver.followed())
    assert forgotten == [("ns", "deleted")]
    assert receiver.keys == {("ns", "kept"), ("ns", "recreated")}
    listing = [accept for (_, path, _), accept in zip(server.requests, server.accepts, strict=True)]
    assert kube_client.METADATA_ONLY in listing[0], "names only, not whole objects"
    reads = [path for method, path, query in server.requests if "limit" not in query]
    assert reads == [
        f"{PWH}/namespaces/ns/phonewebhooks/deleted",
        f"{PWH}/namespaces/ns/phonewebhooks/recreated",
    ]


@pytest.mark.looptime
async def test_a_new_listing_of_kopfs_is_compared_once_it_has_settled() -> None:
    server = FakeApiServer()
    server.put(f"{PWH}/phonewebhooks", "kept", namespace="ns")
    receiver = Receiver(("ns", "kept"), ("ns", "deleted"))
    followed = receiver.followed()
    async with api_client(server) as api:
        following = Following(api, namespaces=[])
        comparing = asyncio.create_task(following.catch_up_after_relists(followed))
        await asyncio.sleep(100)
        assert server.requests == [], "nothing compared before kopf lists anew"
        for _ in range(3):
            following.relisted(followed)  # three objects of one listing of kopf's
        await asyncio.sleep(watched.SETTLE_SECONDS + 1)
        comparing.cancel()
        await asyncio.gather(comparing, return_exceptions=True)
    assert receiver.gone == [("ns", "deleted")]
    assert sum(1 for _, _, query in server.requests if "limit" in query) == 1, "one comparison per listing"


@pytest.mark.parametrize("name", ["", ".", "..", "..."])
def test_a_name_of_dots_only_never_goes_into_a_path(name: str) -> None:
    with pytest.raises(ValueError, match="not a name"):
        kube_client.name(name)


@pytest.mark.parametrize(
    ("no_proxy", "expected"),
    [
        ("", "http://proxy.corp:3128"),
        ("api.cluster.local", None),
        (".cluster.local", None),
        ("other", "http://proxy.corp:3128"),
    ],
)
def test_the_api_servers_proxy_is_looked_up_once_as_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, expected: str | None
) -> None:
    """Not per request (aiohttp's trust_env looks it up in a thread for every request)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert kube_client.environment_proxy("https://api.cluster.local:6443") == expected


VERSION = {
    "major": "1",
    "gitVersion": "v1.36.3",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.26",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@pytest.mark.looptime
@pytest.mark.parametrize(("minor", "streams"), [("33", False), ("34", True), ("36+", True)])
async def test_watches_stream_their_initial_state_from_1_34_once_the_api_server_answers(
    minor: str, streams: bool
) -> None:
    answers = [web.Response(status=503), web.json_response(VERSION | {"minor": minor})]

    async def handle(request: web.Request) -> web.StreamResponse:
        assert request.path.rstrip("/") == "/version"
        return answers.pop(0)

    async with serving(handle) as url:
        configuration = client.Configuration(host=url)
        async with client.ApiClient(configuration) as api:
            assert await kube_client.streams_initial_events(api) is streams
    assert answers == [], "asked again after the API server failed"
