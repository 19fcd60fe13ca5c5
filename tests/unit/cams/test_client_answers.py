"""What the CAMS client makes of answers that are not the textbook one, served by a small local HTTP server:
field names in another case, a request ID only in a header, an object where a string was expected, a body
that cannot be read, a redirect. Each of these failed before the client handled it."""

from __future__ import annotations

import json

import httpx
import pytest
from aiohttp import web

from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Verdict
from cams_webhook_operator.cams.signing import canonical_query_string
from tests.unit.local_http import Handler, serving

CREDENTIALS = Credentials("LTAI-test", "secret")


async def _call(handler: Handler) -> tuple[Verdict, object]:
    async with serving(handler) as url:
        client = CamsClient(endpoint=url, timeout_seconds=5)
        try:
            outcome = await client.call("UpdatePhoneWebhook", {"PhoneNumber": "1"}, CREDENTIALS)
        finally:
            await client.aclose()
    return outcome.verdict, outcome.answer if outcome.answer else outcome.error


def _answering(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    async def handler(_: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


async def test_lower_case_fields_are_read() -> None:
    verdict, answer = await _call(_answering(200, {"code": "OK", "requestId": "r-1"}))
    assert verdict is Verdict.OK
    assert getattr(answer, "request_id", None) == "r-1"


async def test_the_request_id_comes_from_the_header_when_the_body_has_none() -> None:
    verdict, answer = await _call(
        _answering(400, {"Code": "Ram.PermissionDeny"}, headers={"x-acs-request-id": "from-header"})
    )
    assert verdict is Verdict.PERMANENT
    assert getattr(answer, "request_id", None) == "from-header"


async def test_an_access_denied_detail_object_is_kept_as_json() -> None:
    detail = {"PolicyType": "AccountLevelIdentityBasedPolicy", "AuthAction": "cams:UpdatePhoneWebhook"}
    _, answer = await _call(_answering(403, {"Code": "Ram.PermissionDeny", "AccessDeniedDetail": detail}))
    assert json.loads(getattr(answer, "access_denied_detail", "")) == detail


async def test_a_body_that_cannot_be_decoded_is_a_transient_failure_not_an_exception() -> None:
    async def bad_encoding(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    verdict, error = await _call(bad_encoding)
    assert verdict is Verdict.TRANSIENT
    assert "could not be read" in str(error)


async def test_a_redirect_is_not_followed_and_counts_as_no_answer_from_cams() -> None:
    followed: list[str] = []

    async def redirect(request: web.Request) -> web.StreamResponse:
        if request.path != "/":
            followed.append(request.path)
            return web.json_response({"Code": "OK"})
        raise web.HTTPFound("/elsewhere")

    verdict, answer = await _call(redirect)
    assert verdict is Verdict.TRANSIENT
    assert getattr(answer, "http_status", None) == 302
    assert followed == []


async def test_the_request_carries_no_body_and_no_content_type() -> None:
    """The official SDK sends an RPC call's parameters in the query and nothing in the body."""
    seen: list[tuple[str | None, bytes]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((request.headers.get("Content-Type"), await request.read()))
        return web.json_response({"Code": "OK"})

    verdict, _ = await _call(record)
    assert verdict is Verdict.OK
    assert seen == [(None, b"")]


@pytest.mark.parametrize("status", [502, 503])
async def test_a_gateway_error_page_is_transient(status: int) -> None:
    async def page(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="<html>bad gateway</html>", content_type="text/html")

    verdict, answer = await _call(page)
    assert verdict is Verdict.TRANSIENT
    assert getattr(answer, "code", "missing") is None


@pytest.mark.parametrize("transport", ["aiohttp", "httpx's own"])
async def test_the_query_goes_on_the_wire_exactly_as_it_was_signed(transport: str) -> None:
    """What the server receives, byte for byte, is the canonical query string the signature covers: no
    percent-escape decoded, none added (a URL in a parameter keeps its %3A%2F%2F)."""
    params = {"StatusCallbackUrl": "https://h.example/s?a=b c+d*e~f&x=中", "PhoneNumber": "1"}
    received: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        received.append(request.raw_path)
        return web.json_response({"Code": "OK"})

    async with serving(handler) as url:
        own = httpx.AsyncHTTPTransport() if transport == "httpx's own" else None
        client = CamsClient(endpoint=url, timeout_seconds=5, transport=own)
        try:
            outcome = await client.call("UpdatePhoneWebhook", params, CREDENTIALS)
        finally:
            await client.aclose()
    assert outcome.verdict is Verdict.OK
    assert received == [f"/?{canonical_query_string(params)}"]


@pytest.mark.parametrize(
    ("status", "header", "seconds"),
    [
        (429, "1500", 1.5),
        (400, "200", 0.2),
        (503, " 3000 ", 3.0),
        (429, "999999", 120.0),  # at most the official SDK's longest wait
        (429, "0", None),
        (429, "-5", None),
        (429, "soon", None),
        (200, "1500", None),  # only a 4xx or 5xx answer carries advice, as the official SDK reads it
    ],
)
async def test_x_acs_retry_after_is_read_in_milliseconds_as_the_official_sdk_reads_it(
    status: int, header: str, seconds: float | None
) -> None:
    body = {"Code": "OK" if status == 200 else "Throttling.User", "Message": "m"}
    _, answer = await _call(_answering(status, body, headers={"x-acs-retry-after": header}))
    assert getattr(answer, "retry_after", "missing") == seconds
