"""The simulator is as strict as CAMS: signatures, timestamps, nonces, tokens, flow control, rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cams_simulator.config import AccountConfig, SimulatorConfig, SpaceConfig
from cams_simulator.core import Simulator
from cams_simulator.wire import Request
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.cams.signing import DATE_FORMAT, RequestToSign, sign_headers

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GOOD = AccountConfig(
    access_key_id="AK",
    access_key_secret="SK",
    uid="1",
    spaces=[SpaceConfig(id="space", phone_numbers=["8613800001234"])],
)
STS = AccountConfig(
    access_key_id="STS.AK",
    access_key_secret="SK2",
    security_token="TOKEN",
    uid="2",
    spaces=[SpaceConfig(id="space2")],
)
DENIED = AccountConfig(
    access_key_id="DENIED",
    access_key_secret="SK3",
    uid="3",
    permitted=False,
    spaces=[SpaceConfig(id="space3")],
)
UNSUBSCRIBED = AccountConfig(access_key_id="UNSUB", access_key_secret="SK4", uid="4", subscribed=False)


def _simulator(**config: Any) -> Simulator:
    return Simulator(
        SimulatorConfig(accounts=[GOOD, STS, DENIED, UNSUBSCRIBED], **config), rng=random.Random(1)
    )


_nonces = iter(range(10**9))


def _request(
    *,
    ak: str = "AK",
    sk: str = "SK",
    token: str | None = None,
    query: dict[str, str] | None = None,
    date: datetime = NOW,
    nonce: str | None = None,
    action: str = "UpdatePhoneWebhook",
    tamper: dict[str, str] | None = None,
) -> Request:
    params = (
        query if query is not None else WebhookUpdate("space", "8613800001234", "https://a.example/s").query()
    )
    headers = {
        "host": "cams.local",
        "x-acs-action": action,
        "x-acs-version": "2020-06-06",
        "x-acs-date": date.strftime(DATE_FORMAT),
        "x-acs-signature-nonce": nonce or f"nonce-{next(_nonces)}",
    }
    if token:
        headers["x-acs-security-token"] = token
    signed = sign_headers(RequestToSign("POST", "/", params, headers), access_key_id=ak, access_key_secret=sk)
    lowered = {k.lower(): v for k, v in signed.items()}
    return Request("POST", "/", {**params, **(tamper or {})}, lowered)


def _code(simulator: Simulator, request: Request, monotonic: float = 0.0) -> tuple[int, str]:
    status, body, _ = simulator.handle(request, now=NOW, monotonic=monotonic)
    assert isinstance(body, dict)
    return status, body["Code"]


def test_good_call_stores_the_webhook() -> None:
    simulator = _simulator()
    assert _code(simulator, _request()) == (200, "OK")
    assert simulator.state()["webhooks"] == {
        "space/8613800001234": {
            "StatusCallbackUrl": "https://a.example/s",
            "UpCallbackUrl": "",
            "HttpFlag": "N",
            "QueueFlag": "N",
        }
    }


@pytest.mark.parametrize(
    ("request_kwargs", "expected"),
    [
        ({"sk": "wrong"}, (400, "SignatureDoesNotMatch")),
        ({"tamper": {"StatusCallbackUrl": "https://evil.example"}}, (400, "SignatureDoesNotMatch")),
        ({"ak": "NOPE"}, (404, "InvalidAccessKeyId.NotFound")),
        ({"date": NOW - timedelta(minutes=16)}, (400, "InvalidTimeStamp.Expired")),
        ({"date": NOW + timedelta(minutes=16)}, (400, "InvalidTimeStamp.Expired")),
        (
            {"ak": "STS.AK", "sk": "SK2", "query": {"CustSpaceId": "space2", "PhoneNumber": "1"}},
            (400, "InvalidSecurityToken.Missing"),
        ),
        (
            {
                "ak": "STS.AK",
                "sk": "SK2",
                "token": "OTHER",
                "query": {"CustSpaceId": "space2", "PhoneNumber": "1"},
            },
            (400, "InvalidSecurityToken.MismatchWithAccessKey"),
        ),
        (
            {"ak": "DENIED", "sk": "SK3", "query": {"CustSpaceId": "space3", "PhoneNumber": "1"}},
            (400, "Ram.PermissionDeny"),
        ),
        ({"ak": "UNSUB", "sk": "SK4"}, (400, "Product.Unsubscript")),
        (
            {"query": {"CustSpaceId": "not-mine", "PhoneNumber": "8613800001234"}},
            (400, "Unknown.ResourceOwnerId"),
        ),
        ({"query": {"CustSpaceId": "space", "PhoneNumber": "8600000000000"}}, (400, "InvalidParameter")),
        (
            {"query": {"CustSpaceId": "space", "PhoneNumber": "8613800001234", "HttpFlag": "yes"}},
            (400, "InvalidParameter"),
        ),
        ({"query": {"CustSpaceId": "space"}}, (400, "MissingPhoneNumber")),
        ({"action": "DeleteEverything"}, (404, "InvalidAction.NotFound")),
    ],
    ids=[
        "wrong-secret",
        "tampered-query",
        "unknown-key",
        "date-too-old",
        "date-in-future",
        "sts-without-token",
        "sts-wrong-token",
        "permission-denied",
        "unsubscribed",
        "foreign-space",
        "unknown-number",
        "bad-flag",
        "missing-number",
        "unknown-action",
    ],
)
def test_bad_calls_are_refused_like_cams(request_kwargs: dict[str, Any], expected: tuple[int, str]) -> None:
    assert _code(_simulator(), _request(**request_kwargs)) == expected


def test_sts_call_with_its_token_is_accepted() -> None:
    request = _request(
        ak="STS.AK", sk="SK2", token="TOKEN", query={"CustSpaceId": "space2", "PhoneNumber": "1"}
    )
    assert _code(_simulator(), request) == (200, "OK")


def test_permission_denied_carries_access_denied_detail() -> None:
    _, body, _ = _simulator().handle(
        _request(ak="DENIED", sk="SK3", query={"CustSpaceId": "space3", "PhoneNumber": "1"}),
        now=NOW,
        monotonic=0,
    )
    assert isinstance(body, dict)
    assert "cams:UpdatePhoneWebhook" in body["AccessDeniedDetail"]


def test_a_reused_nonce_is_refused() -> None:
    simulator = _simulator()
    assert _code(simulator, _request(nonce="same")) == (200, "OK")
    assert _code(simulator, _request(nonce="same")) == (400, "SignatureNonceUsed")


def test_unsigned_x_acs_header_is_refused() -> None:
    request = _request()
    headers = {**request.headers, "x-acs-extra": "1"}
    assert _code(_simulator(), Request("POST", "/", request.query, headers)) == (400, "IncompleteSignature")


def test_flow_control_allows_qps_per_account_and_refuses_beyond() -> None:
    simulator = _simulator(qps=10)
    codes = [_code(simulator, _request(), monotonic=0.0)[1] for _ in range(12)]
    assert codes.count("OK") == 10
    assert codes[-2:] == ["System.LimitControl", "System.LimitControl"]
    assert _code(simulator, _request(), monotonic=0.1) == (200, "OK")
    other_account = _request(ak="UNSUB", sk="SK4")
    assert _code(simulator, other_account, monotonic=0.1)[1] == "Product.Unsubscript", "counted per account"


@pytest.mark.parametrize(
    ("throttle_code", "http_status"), [("System.LimitControl", 400), ("Throttling.User", 429)]
)
def test_flow_control_says_when_to_call_again(throttle_code: str, http_status: int) -> None:
    """As Alibaba's gateway does: x-acs-retry-after, in milliseconds, until a call would pass."""
    simulator = _simulator(qps=10, throttle_code=throttle_code)
    for _ in range(10):
        simulator.handle(_request(), now=NOW, monotonic=0.0)
    status, body, headers = simulator.handle(_request(), now=NOW, monotonic=0.05)
    assert isinstance(body, dict)
    assert (status, body["Code"]) == (http_status, throttle_code)
    assert headers == {"x-acs-retry-after": "50"}, "one token every 100 ms, half of it earned"
    assert _code(simulator, _request(), monotonic=0.1) == (200, "OK")


def test_injected_failures_are_5xx() -> None:
    simulator = _simulator(fail_rate=1.0)
    assert _code(simulator, _request()) == (503, "ServiceUnavailable")
    assert simulator.state()["calls"] == {"UpdatePhoneWebhook/ServiceUnavailable": 1}


@pytest.mark.parametrize(
    ("failure", "status", "answer"),
    [
        ("ServiceUnavailable", 503, {"Code": "ServiceUnavailable"}),
        ("error-in-200", 200, {"Code": "ServiceUnavailable"}),
        ("lower-case", 503, {"code": "ServiceUnavailable"}),
        ("gateway-html", 502, b"<html>"),
        ("truncated", 200, b'{"RequestId": "'),
    ],
)
def test_an_injected_failure_is_answered_as_configured(failure: str, status: int, answer: object) -> None:
    got_status, body, _ = _simulator(fail_rate=1.0, failure=failure).handle(_request(), now=NOW, monotonic=0)
    assert got_status == status
    if isinstance(answer, bytes):
        assert isinstance(body, bytes)
        assert body.startswith(answer)
    else:
        assert isinstance(body, dict)
        assert answer.items() <= body.items()  # type: ignore[attr-defined]


def test_query_lists_the_numbers_of_a_space() -> None:
    simulator = _simulator()
    _code(simulator, _request())
    status, body, _ = simulator.handle(
        _request(action="QueryChatappPhoneNumbers", query={"CustSpaceId": "space"}), now=NOW, monotonic=0
    )
    assert status == 200
    assert isinstance(body, dict)
    assert body["PhoneNumbers"][0]["StatusCallbackUrl"] == "https://a.example/s"
