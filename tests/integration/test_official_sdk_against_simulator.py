"""Alibaba's own SDK, pointed at the simulator, gets CAMS's answers: the wire format is the real one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alibabacloud_cams20200606 import models as cams_models
from alibabacloud_cams20200606.client import Client
from alibabacloud_tea_openapi import models as openapi_models

from .conftest import Served


def _client(endpoint: str, ak: str, secret: str, token: str | None = None) -> Client:
    config = openapi_models.Config(
        access_key_id=ak,
        access_key_secret=secret,
        security_token=token,
        endpoint=endpoint.removeprefix("http://"),
        protocol="http",
    )
    return Client(config)


def _update(client: Client, space: str) -> Any:
    return client.update_phone_webhook(
        cams_models.UpdatePhoneWebhookRequest(
            cust_space_id=space,
            phone_number="8613800001234",
            status_callback_url="https://hooks.example.com/status?a=b c",
            up_callback_url="https://hooks.example.com/up",
            http_flag="Y",
            queue_flag="N",
        )
    )


async def test_official_sdk_update_is_accepted(served: Served) -> None:
    response = await asyncio.to_thread(
        _update, _client(served.endpoint, "LTAI-good", "good-secret"), "space-1"
    )
    assert response.body.code == "OK"
    assert response.body.request_id
    assert served.simulator.state()["webhooks"]["space-1/8613800001234"]["StatusCallbackUrl"] == (
        "https://hooks.example.com/status?a=b c"
    )


async def test_official_sdk_with_sts_token_is_accepted(served: Served) -> None:
    client = _client(served.endpoint, "STS.temp", "sts-secret", "sts-token")
    response = await asyncio.to_thread(_update, client, "space-2")
    assert response.body.code == "OK"


async def test_official_sdk_sees_permission_denied_as_an_error(served: Served) -> None:
    client = _client(served.endpoint, "LTAI-denied", "denied-secret")
    with pytest.raises(Exception, match=r"Ram\.PermissionDeny"):
        await asyncio.to_thread(_update, client, "space-3")


async def test_official_sdk_with_a_wrong_secret_fails_the_signature(served: Served) -> None:
    client = _client(served.endpoint, "LTAI-good", "not-the-secret")
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        await asyncio.to_thread(_update, client, "space-1")


async def test_official_sdk_reads_the_phone_numbers(served: Served) -> None:
    client = _client(served.endpoint, "LTAI-good", "good-secret")
    await asyncio.to_thread(_update, client, "space-1")
    response = await asyncio.to_thread(
        client.query_chatapp_phone_numbers,
        cams_models.QueryChatappPhoneNumbersRequest(cust_space_id="space-1"),
    )
    assert response.body.code == "OK"
    assert [n.phone_number for n in response.body.phone_numbers] == ["8613800001234"]
    number = response.body.phone_numbers[0]
    assert number.up_callback_url == "https://hooks.example.com/up"
    # The number's health, under the names of the official SDK's model (which the operator reads too).
    assert (number.status, number.quality_rating, number.messaging_limit_tier) == (
        "CONNECTED",
        "GREEN",
        "TIER_1000",
    )
    assert (number.name_status, number.code_verification_status) == ("Approval", "VERIFIED")
