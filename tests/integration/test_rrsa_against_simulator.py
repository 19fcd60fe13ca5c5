"""RRSA against the simulator's STS: the exchange, the cache, refresh before expiry, and failures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cams_simulator.config import RoleConfig, SimulatorConfig, SpaceConfig
from cams_simulator.core import Simulator
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import IdentityError, RrsaConfig
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.cams.outcomes import Verdict
from cams_webhook_operator.cams.sts import RrsaProvider

from .conftest import Served, serving

ROLE = "acs:ram::1:role/cams-operator"
PROVIDER = "acs:ram::1:oidc-provider/ack-rrsa-c1"


@pytest.fixture
async def sts() -> AsyncIterator[Served]:
    config = SimulatorConfig(
        accounts=[],
        roles=[
            RoleConfig(
                role_arn=ROLE,
                oidc_provider_arn=PROVIDER,
                oidc_tokens=["token-1", "token-2"],
                uid="9",
                spaces=[SpaceConfig(id="rrsa-space")],
            )
        ],
        sts_min_duration_seconds=1,
    )
    async with serving(Simulator(config, rng=random.Random(3))) as running:
        yield running


def _provider(sts: Served, token_file: Path, duration: int = 3600) -> RrsaProvider:
    return RrsaProvider(
        RrsaConfig(
            role_arn=ROLE,
            oidc_provider_arn=PROVIDER,
            token_file=token_file,
            sts_endpoint=sts.endpoint,
            duration_seconds=duration,
        )
    )


def _sts_calls(sts: Served) -> int:
    return sum(v for (action, _), v in sts.simulator.codes.items() if action == "AssumeRoleWithOIDC")


async def test_exchanged_credentials_call_cams_and_are_cached(sts: Served, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("token-1\n")
    provider = _provider(sts, token)
    cams = CamsClient(endpoint=sts.endpoint, timeout_seconds=5)
    try:
        first = await provider.credentials()
        assert first.access_key_id.startswith("STS.")
        assert first.security_token
        assert await provider.credentials() is first
        outcome = await cams.update_phone_webhook(WebhookUpdate("rrsa-space", "8613800001234"), first)
    finally:
        await cams.aclose()
        await provider.aclose()
    assert outcome.verdict is Verdict.OK
    assert _sts_calls(sts) == 1


async def test_credentials_are_refreshed_before_they_expire(sts: Served, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("token-1")
    provider = _provider(sts, token, duration=9)
    cams = CamsClient(endpoint=sts.endpoint, timeout_seconds=5)
    try:
        first = await provider.credentials()
        await asyncio.sleep(6.3)  # less than a third of the 9 s left: time to refresh (1.8 s of slack)
        token.write_text("token-2")  # the kubelet rotated the token: it is read anew
        assert await provider.credentials() == first, "still valid: used while the refresh runs"
        await asyncio.sleep(0.3)
        second = await provider.credentials()
        assert second.access_key_id != first.access_key_id
        await asyncio.sleep(3.0)  # the first set has now expired
        update = WebhookUpdate("rrsa-space", "8613800001234")
        expired = await cams.update_phone_webhook(update, first)
        fresh = await cams.update_phone_webhook(update, second)
    finally:
        await cams.aclose()
        await provider.aclose()
    assert expired.answer is not None
    assert (expired.verdict, expired.answer.code) == (Verdict.PERMANENT, "InvalidSecurityToken.Expired")
    assert fresh.verdict is Verdict.OK


async def test_a_refused_token_is_a_permanent_error(sts: Served, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-token-sts-accepts")
    provider = _provider(sts, token)
    try:
        with pytest.raises(IdentityError, match=r"AuthenticationFail\.OIDCToken\.Invalid") as refused:
            await provider.credentials()
    finally:
        await provider.aclose()
    assert not refused.value.transient
    assert "not-a-token-sts-accepts" not in str(refused.value), "the token never goes into a message"


async def test_unreachable_sts_or_missing_token_file_is_transient(tmp_path: Path) -> None:
    missing = RrsaProvider(RrsaConfig(ROLE, PROVIDER, tmp_path / "absent", sts_endpoint="http://127.0.0.1:9"))
    token = tmp_path / "token"
    token.write_text("token-1")
    unreachable = RrsaProvider(RrsaConfig(ROLE, PROVIDER, token, sts_endpoint="http://127.0.0.1:9"))
    try:
        for provider, text in (
            (missing, "cannot read the OIDC token file"),
            (unreachable, "could not reach STS"),
        ):
            with pytest.raises(IdentityError, match=text) as failed:
                await provider.credentials()
            assert failed.value.transient
    finally:
        await missing.aclose()
        await unreachable.aclose()
