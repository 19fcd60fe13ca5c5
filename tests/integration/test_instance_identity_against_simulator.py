"""The end of the official default chain against the simulator's stand-ins: the node's RAM role from the
ECS metadata server (IMDSv2's session token, or plain reads where allowed), a credentials URI, the chain
that picks the first that works, and the order wiring.temporary_identity builds it in. The credentials they
give are then used on CAMS."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cams_simulator.config import InstanceRoleConfig, SimulatorConfig, SpaceConfig
from cams_simulator.core import Simulator
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import Credentials, IdentityError
from cams_webhook_operator.cams.instance_identity import (
    CredentialsUriProvider,
    EcsRamRoleProvider,
    FirstWorking,
)
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.cams.outcomes import Verdict
from cams_webhook_operator.cams.refreshing import RefreshingCredentials
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.wiring import temporary_identity

from .conftest import Served, serving

SPACE = "node-space"
CLOSED = "http://127.0.0.1:9"  # nothing listens there
Node = Callable[..., Awaitable[Served]]


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """Starts a simulator whose instance has a RAM role (`options`: InstanceRoleConfig's)."""
    running: list[Any] = []

    async def start(**options: Any) -> Served:
        role = InstanceRoleConfig(
            role_name="worker-role", uid="42", spaces=[SpaceConfig(id=SPACE)], **options
        )
        context = serving(Simulator(SimulatorConfig(accounts=[], instance_role=role), rng=random.Random(5)))
        running.append(context)
        return await context.__aenter__()

    yield start
    for context in running:
        await context.__aexit__(None, None, None)


async def _asked(served: Served) -> list[str]:
    async with httpx.AsyncClient() as http:
        return list((await http.get(f"{served.endpoint}/_simulator/metadata")).json())


async def _update(served: Served, credentials: Credentials) -> Verdict:
    client = CamsClient(endpoint=served.endpoint, timeout_seconds=5)
    try:
        outcome = await client.update_phone_webhook(WebhookUpdate(SPACE, "8613800001234"), credentials)
    finally:
        await client.aclose()
    return outcome.verdict


async def _credentials_of(provider: RefreshingCredentials | FirstWorking) -> Credentials:
    try:
        return await provider.credentials()
    finally:
        await provider.aclose()


async def test_the_nodes_role_is_read_with_a_session_token_and_its_credentials_call_cams(node: Node) -> None:
    served = await node()
    credentials = await _credentials_of(EcsRamRoleProvider(endpoint=served.endpoint))
    assert credentials.access_key_id.startswith("STS.")
    assert credentials.security_token
    assert await _asked(served) == [
        "PUT /latest/api/token",
        "GET /latest/meta-data/ram/security-credentials/ (token)",
        "GET /latest/meta-data/ram/security-credentials/worker-role (token)",
    ], "the role's name asked of the server, every read with IMDSv2's token"
    assert await _update(served, credentials) is Verdict.OK


async def test_a_configured_role_name_is_not_asked_for(node: Node) -> None:
    served = await node()
    await _credentials_of(EcsRamRoleProvider(endpoint=served.endpoint, role_name="worker-role"))
    assert [a for a in await _asked(served) if a.startswith("GET")] == [
        "GET /latest/meta-data/ram/security-credentials/worker-role (token)"
    ]


async def test_an_older_server_is_read_plainly_unless_the_hardened_mode_is_required(node: Node) -> None:
    served = await node(offers_token=False, require_token=False)
    credentials = await _credentials_of(EcsRamRoleProvider(endpoint=served.endpoint))
    assert credentials.access_key_id.startswith("STS.")
    assert "(no token)" in (await _asked(served))[-1]
    with pytest.raises(IdentityError, match="ALIBABA_CLOUD_IMDSV1_DISABLED requires one") as refused:
        await _credentials_of(EcsRamRoleProvider(endpoint=served.endpoint, imdsv1_disabled=True))
    assert refused.value.reason == "InstanceRoleFailed"


async def test_the_nodes_credentials_are_fetched_again_before_they_expire(node: Node) -> None:
    served = await node(issued_lifetime_seconds=3)
    provider = EcsRamRoleProvider(endpoint=served.endpoint)
    try:
        first = await provider.credentials()
        await asyncio.sleep(2.2)  # under a third of their life left: refreshed in the background
        await provider.credentials()
        await asyncio.sleep(0.3)
        second = await provider.credentials()
    finally:
        await provider.aclose()
    assert second.access_key_id != first.access_key_id
    assert await _update(served, second) is Verdict.OK


async def test_a_credentials_uri_serves_the_role_and_is_never_shown_whole(node: Node) -> None:
    served = await node()
    uri = f"{served.endpoint}/_simulator/credentials-uri?token=uri-secret-9"
    credentials = await _credentials_of(CredentialsUriProvider(uri))
    assert await _update(served, credentials) is Verdict.OK
    with pytest.raises(IdentityError) as unreachable:
        await _credentials_of(CredentialsUriProvider(f"{CLOSED}/creds?token=uri-secret-9"))
    assert unreachable.value.reason == "CredentialsUriFailed"
    assert "uri-secret-9" not in str(unreachable.value)


async def test_the_chain_uses_the_first_identity_that_works_and_keeps_it(node: Node) -> None:
    served = await node()
    chain = FirstWorking(
        [
            EcsRamRoleProvider(endpoint=CLOSED),
            CredentialsUriProvider(f"{served.endpoint}/_simulator/credentials-uri"),
        ]
    )
    try:
        credentials = await chain.credentials()
        assert chain.identity.source == "credentials-uri"
        assert await chain.credentials() == credentials, "kept: neither fetched again nor the node asked"
    finally:
        await chain.aclose()
    with pytest.raises(IdentityError) as nothing:
        await _credentials_of(
            FirstWorking([EcsRamRoleProvider(endpoint=CLOSED), CredentialsUriProvider(CLOSED)])
        )
    assert "the RAM role of the node" in str(nothing.value)
    assert "the credentials URI" in str(nothing.value), "every identity tried says why"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ALIBABA_CLOUD_ACCESS_KEY_ID": "k", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}, []),
        (
            {
                "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/r",
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p",
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/token",
                "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:9/c",
            },
            ["rrsa:acs:ram::1:role/r"],
        ),
        ({}, ["ecs-ram-role"]),
        ({"ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:9/c"}, ["ecs-ram-role", "credentials-uri"]),
        (
            {
                "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:9/c",
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            },
            ["credentials-uri"],
        ),
        ({"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}, []),
    ],
    ids=["access-key-first", "rrsa-next", "node-role", "node-role-then-uri", "uri-alone", "nothing"],
)
async def test_the_operator_identity_follows_the_official_default_chains_order(
    env: dict[str, str], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_CREDENTIALS_URI",
    ):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    built = temporary_identity(OperatorSettings())
    try:
        if not expected:
            assert built is None, "an AccessKey of its own needs none; nothing configured gives none"
        elif isinstance(built, FirstWorking):
            assert [p.identity.source for p in built.providers] == expected
        else:
            assert built is not None
            assert [built.identity.source] == expected
            assert isinstance(built, RrsaProvider) is expected[0].startswith("rrsa:")
    finally:
        if built is not None:
            await built.aclose()
