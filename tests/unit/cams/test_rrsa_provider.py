"""RRSA's provider when STS misbehaves, over httpx's mock transport and a fake clock: one exchange per
retry step whatever the number of callers, no caller waiting on a failing STS, valid credentials kept
through failed refreshes, and STS's codes classified as CAMS's are. Each failed on the provider before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cams_webhook_operator.cams.credentials import IdentityError, RrsaConfig
from cams_webhook_operator.cams.sts import RrsaProvider

pytestmark = pytest.mark.looptime


def _issued(key: str, lifetime: float = 3600) -> httpx.Response:
    expiration = (datetime.now(UTC) + timedelta(seconds=lifetime)).strftime("%Y-%m-%dT%H:%M:%SZ")
    credentials = {"AccessKeyId": key, "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": expiration}
    return httpx.Response(200, json={"Credentials": credentials})


def _refused(code: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"Code": code, "Message": "no"})


class Sts:
    """Answers exchanges from a script (the last answer repeats) and counts them."""

    def __init__(self, *answers: Callable[[], httpx.Response]) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.tokens: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.tokens.append(dict(httpx.QueryParams(request.content.decode()))["OIDCToken"])
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer()


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("token-1")
    return path


def _provider(sts: Sts, token: Path) -> RrsaProvider:
    loop = asyncio.get_running_loop()
    return RrsaProvider(
        RrsaConfig("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", token),
        transport=httpx.MockTransport(sts),
        clock=loop.time,
        retry_base_seconds=1,
        retry_max_seconds=60,
    )


async def test_forty_callers_of_a_refused_role_make_one_exchange_per_retry_step(token: Path) -> None:
    sts = Sts(lambda: _refused("AuthenticationFail.OIDCToken.Invalid"))
    provider = _provider(sts, token)
    results = await asyncio.gather(*(provider.credentials() for _ in range(40)), return_exceptions=True)
    assert all(isinstance(r, IdentityError) and not r.transient for r in results)
    assert "the role's trust policy" in str(results[0]), "a refusal for good says what to check"
    assert sts.calls == 1
    for _ in range(40):  # within the retry step: the failure is remembered
        with pytest.raises(IdentityError):
            await provider.credentials()
    assert sts.calls == 1
    await asyncio.sleep(1.5)
    with pytest.raises(IdentityError):
        await provider.credentials()  # starts the next exchange in the background, answers at once
    await asyncio.sleep(0)
    assert sts.calls == 2
    await provider.aclose()


async def test_no_caller_waits_on_a_failing_sts(token: Path) -> None:
    hang = asyncio.Event()  # never set: from the second exchange on, STS does not answer at all
    calls = 0

    async def unavailable_then_hanging(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            await hang.wait()
        return _refused("ServiceUnavailable", 503)

    provider = RrsaProvider(
        RrsaConfig("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", token),
        transport=httpx.MockTransport(unavailable_then_hanging),
        clock=asyncio.get_running_loop().time,
    )
    with pytest.raises(IdentityError) as first:
        await provider.credentials()
    assert first.value.transient
    await asyncio.sleep(2)
    async with asyncio.timeout(0.01):  # the exchange hangs in the background; the caller is answered
        with pytest.raises(IdentityError):
            await provider.credentials()
    await asyncio.sleep(0.1)
    assert calls == 2, "the retry exchange went out, and hangs without holding any caller"
    await provider.aclose()


async def test_a_failed_refresh_keeps_the_valid_credentials_and_tries_again(token: Path) -> None:
    sts = Sts(lambda: _issued("key-1", lifetime=900), lambda: _refused("ServiceUnavailable", 503))
    provider = _provider(sts, token)
    assert (await provider.credentials()).access_key_id == "key-1"
    await asyncio.sleep(700)  # less than a third of the life left: refresh, which fails
    assert (await provider.credentials()).access_key_id == "key-1"
    await asyncio.sleep(0)
    assert sts.calls == 2
    sts.answers = [lambda: _issued("key-2", lifetime=900)]
    await asyncio.sleep(2)  # the retry step
    await provider.credentials()
    await asyncio.sleep(0)
    assert (await provider.credentials()).access_key_id == "key-2"
    await provider.aclose()


@pytest.mark.parametrize(
    ("answer", "transient"),
    [
        (lambda: _refused("Throttling.User"), True),
        (lambda: _refused("AuthenticationFail.OIDCToken.Expired"), True),
        (lambda: _refused("EntityNotExist.Role", 404), False),
        (lambda: _refused("InvalidParameter.DurationSeconds"), False),
    ],
    ids=["throttled", "token-expired", "no-role", "bad-duration"],
)
async def test_sts_codes_are_classified_not_only_http_statuses(
    token: Path, answer: Callable[[], httpx.Response], transient: bool
) -> None:
    provider = _provider(Sts(answer), token)
    with pytest.raises(IdentityError) as refused:
        await provider.credentials()
    assert refused.value.transient is transient
    await provider.aclose()


async def test_an_expired_token_is_read_again_from_the_file(token: Path) -> None:
    sts = Sts(lambda: _refused("AuthenticationFail.OIDCToken.Expired"), lambda: _issued("key-1"))
    provider = _provider(sts, token)
    with pytest.raises(IdentityError):
        await provider.credentials()
    token.write_text("token-2")  # noqa: ASYNC240 -- the kubelet writes a new one; a test file, tiny
    recovered: list[bool] = []
    provider.on_recovered = lambda: recovered.append(True)
    await asyncio.sleep(1.5)  # the provider tried again by itself at the end of the retry step
    assert (await provider.credentials()).access_key_id == "key-1"
    assert sts.tokens == ["token-1", "token-2"]
    assert recovered == [True], "the controller is told, to retry the objects that waited"
    await provider.aclose()


async def test_a_slow_first_exchange_holds_no_caller_for_long(token: Path) -> None:
    """STS unreachable from the start (a 10 s connect timeout): callers are told to come back after a
    second instead of holding the operator's workers for the whole timeout."""
    answer = asyncio.Event()

    async def slow(_: httpx.Request) -> httpx.Response:
        await answer.wait()
        return _issued("key-1")

    provider = RrsaProvider(
        RrsaConfig("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", token),
        transport=httpx.MockTransport(slow),
        clock=asyncio.get_running_loop().time,
    )
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(provider.credentials() for _ in range(16)), return_exceptions=True)
    assert asyncio.get_running_loop().time() - started <= 1.5
    assert all(isinstance(r, IdentityError) and r.transient for r in results)
    answer.set()
    await asyncio.sleep(0.1)
    assert (await provider.credentials()).access_key_id == "key-1", "the one exchange went on meanwhile"
    await provider.aclose()
