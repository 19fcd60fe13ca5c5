"""What the CAMS client makes of answers that are not the textbook one, over httpx's mock transport: field
names in another case, a request ID only in a header, an object where a string was expected, and answers
httpx itself cannot read. Each of these failed before the client handled it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Verdict

CREDENTIALS = Credentials("LTAI-test", "secret")


async def _call(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[Verdict, object]:
    client = CamsClient(
        endpoint="https://cams.example.com", timeout_seconds=5, transport=httpx.MockTransport(handler)
    )
    outcome = await client.call("UpdatePhoneWebhook", {"PhoneNumber": "1"}, CREDENTIALS)
    await client.aclose()
    return outcome.verdict, outcome.answer if outcome.answer else outcome.error


async def test_lower_case_fields_are_read() -> None:
    verdict, answer = await _call(lambda _: httpx.Response(200, json={"code": "OK", "requestId": "r-1"}))
    assert verdict is Verdict.OK
    assert getattr(answer, "request_id", None) == "r-1"


async def test_the_request_id_comes_from_the_header_when_the_body_has_none() -> None:
    verdict, answer = await _call(
        lambda _: httpx.Response(
            400, json={"Code": "Ram.PermissionDeny"}, headers={"x-acs-request-id": "from-header"}
        )
    )
    assert verdict is Verdict.PERMANENT
    assert getattr(answer, "request_id", None) == "from-header"


async def test_an_access_denied_detail_object_is_kept_as_json() -> None:
    detail = {"PolicyType": "AccountLevelIdentityBasedPolicy", "AuthAction": "cams:UpdatePhoneWebhook"}
    _, answer = await _call(
        lambda _: httpx.Response(403, json={"Code": "Ram.PermissionDeny", "AccessDeniedDetail": detail})
    )
    assert json.loads(getattr(answer, "access_denied_detail", "")) == detail


def _bad_encoding(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"not gzip at all")


def _redirect_loop(_: httpx.Request) -> httpx.Response:
    raise httpx.TooManyRedirects("redirect loop")


@pytest.mark.parametrize("handler", [_bad_encoding, _redirect_loop], ids=["decoding", "redirects"])
async def test_an_answer_httpx_cannot_read_is_a_transient_failure_not_an_exception(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    verdict, error = await _call(handler)
    assert verdict is Verdict.TRANSIENT
    assert "could not be read" in str(error)
