"""The controller's HTTP requests to the API server, against a small local server standing in for it: what
goes on the wire, what a refusal raises, and how often the token is asked for."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from cams_webhook_operator.kube_http import (
    MERGE_PATCH,
    PAGE,
    TOKEN_REUSE_SECONDS,
    KubeHttp,
    api_server_proxy,
    listing,
)

from .local_http import serving


@dataclass
class FakeConfiguration:
    """The attributes of kubernetes.client.Configuration that KubeHttp reads."""

    host: str
    tokens: list[str]
    asked: int = 0
    verify_ssl: bool = True
    ssl_ca_cert: str | None = None
    ca_cert_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    assert_hostname: bool | None = None
    proxy: str | None = None
    no_proxy: str | None = None

    def auth_settings(self) -> dict[str, Any]:
        self.asked += 1
        return {"BearerToken": {"value": f"Bearer {self.tokens[min(self.asked, len(self.tokens)) - 1]}"}}


@dataclass
class Seen:
    requests: list[tuple[str, str, str | None, str | None, bytes]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.requests.append(
            (
                request.method,
                request.path_qs,
                request.headers.get("Content-Type"),
                request.headers.get("Authorization"),
                body,
            )
        )
        if request.path.endswith("/gone"):
            return web.json_response({"kind": "Status", "reason": "NotFound"}, status=404)
        return web.json_response({"metadata": {"resourceVersion": "7"}})

    async with serving(handle) as url:
        yield url, seen


async def test_a_patch_goes_as_compact_json_with_its_content_type_and_the_answer_comes_back(
    server: tuple[str, Seen],
) -> None:
    url, seen = server
    http = KubeHttp(FakeConfiguration(url, ["t1"]))
    try:
        answer = await http.request(
            "PATCH", "/apis/x/status", body={"status": {"a": None}}, content_type=MERGE_PATCH
        )
    finally:
        await http.aclose()
    assert answer == {"metadata": {"resourceVersion": "7"}}
    assert seen.requests == [("PATCH", "/apis/x/status", MERGE_PATCH, "Bearer t1", b'{"status":{"a":null}}')]


async def test_a_get_sends_no_body_and_its_query(server: tuple[str, Seen]) -> None:
    url, seen = server
    http = KubeHttp(FakeConfiguration(url, ["t1"]))
    try:
        await http.request("GET", "/api/v1/leases", params={"labelSelector": "a/b=true"})
    finally:
        await http.aclose()
    method, path, content_type, _, body = seen.requests[0]
    assert (method, path, content_type, body) == ("GET", "/api/v1/leases?labelSelector=a/b%3Dtrue", None, b"")


async def test_a_refusal_raises_the_official_clients_exception_with_status_and_body(
    server: tuple[str, Seen],
) -> None:
    url, _ = server
    http = KubeHttp(FakeConfiguration(url, ["t1"]))
    try:
        with pytest.raises(ApiException) as raised:
            await http.request("GET", "/api/v1/secrets/gone")
    finally:
        await http.aclose()
    assert raised.value.status == 404
    assert json.loads(raised.value.body or "{}")["reason"] == "NotFound"


async def test_the_token_is_asked_for_once_a_minute_and_a_renewed_one_is_then_used(
    server: tuple[str, Seen],
) -> None:
    url, seen = server
    now = [0.0]
    configuration = FakeConfiguration(url, ["old", "renewed"])
    http = KubeHttp(configuration, clock=lambda: now[0])
    try:
        for _ in range(3):
            await http.request("GET", "/a")
        now[0] = TOKEN_REUSE_SECONDS + 1
        await http.request("GET", "/a")
    finally:
        await http.aclose()
    assert configuration.asked == 2
    assert [r[3] for r in seen.requests] == ["Bearer old"] * 3 + ["Bearer renewed"]


@pytest.mark.parametrize(
    ("proxy", "no_proxy", "used"),
    [
        (None, None, None),
        ("http://proxy.example:3128", None, "http://proxy.example:3128"),
        ("http://proxy.example:3128", "127.0.0.1,.cluster.local", None),
        ("socks5://proxy.example:1080", None, None),
    ],
)
def test_the_proxy_is_the_one_the_official_client_would_use(
    proxy: str | None, no_proxy: str | None, used: str | None
) -> None:
    configuration = FakeConfiguration("https://127.0.0.1:6443", ["t"], proxy=proxy, no_proxy=no_proxy)
    assert api_server_proxy(configuration) == used


class PagedLeases:
    """Three pages of one Lease each; the continue token of the second page expires once when asked."""

    def __init__(self, *, expire: str | None = None) -> None:
        self.asked: list[dict[str, str]] = []
        self.expire = expire

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        params = dict(params or {})
        self.asked.append(params)
        token = params.get("continue", "0")
        if token == self.expire:
            self.expire = None
            raise ApiException(status=410, reason="Expired")
        following = str(int(token) + 1) if token != "2" else ""
        return {"items": [{"name": f"lease-{token}"}], "metadata": {"continue": following}}


async def _names(leases: PagedLeases, started_over: list[int]) -> list[str]:
    names = []
    pages = listing(
        leases, "/leases", {"labelSelector": "claim=true"}, started_over=lambda: started_over.append(1)
    )
    async for page in pages:
        names += [item["name"] for item in page["items"]]
    return names


async def test_a_listing_asks_page_after_page_with_its_selector_until_no_continue_token() -> None:
    leases = PagedLeases()
    assert await _names(leases, []) == ["lease-0", "lease-1", "lease-2"]
    selector = {"labelSelector": "claim=true", "limit": PAGE}
    assert leases.asked == [selector, {**selector, "continue": "1"}, {**selector, "continue": "2"}]


async def test_an_expired_continue_token_starts_the_listing_over_and_says_so() -> None:
    leases = PagedLeases(expire="1")
    started_over: list[int] = []
    names = await _names(leases, started_over)
    assert started_over == [1]
    assert names == ["lease-0", "lease-0", "lease-1", "lease-2"]  # the caller clears what it gathered
    assert [p.get("continue") for p in leases.asked] == [None, "1", None, "1", "2"]


async def test_an_expired_first_page_is_the_callers_to_handle() -> None:
    leases = PagedLeases(expire="0")
    with pytest.raises(ApiException) as raised:
        await _names(leases, [])
    assert raised.value.status == 410
