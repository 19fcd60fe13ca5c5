"""The real CAMS client over HTTP against the simulator: signing on the wire, answers and their verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.cams.outcomes import Verdict

from .conftest import Served

MakeClient = Callable[..., CamsClient]


@pytest.fixture
async def make_client(served: Served) -> AsyncIterator[MakeClient]:
    """CamsClient(s) for the served simulator (or another endpoint), all closed after the test."""
    made: list[CamsClient] = []

    def make(timeout_seconds: float = 5, endpoint: str | None = None) -> CamsClient:
        made.append(CamsClient(endpoint=endpoint or served.endpoint, timeout_seconds=timeout_seconds))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


GOOD = Credentials("LTAI-good", "good-secret")
UPDATE = WebhookUpdate(
    cust_space_id="space-1",
    phone_number="8613800001234",
    # Characters that a form encoder would get wrong: the wire must carry exactly what was signed.
    status_callback_url="https://hooks.example.com/cams/status?tag=a b+c*d~e&x=中",
    up_callback_url="https://hooks.example.com/cams/up",
    http_flag=True,
    queue_flag=False,
)


async def test_update_is_signed_accepted_and_stored(served: Served, make_client: MakeClient) -> None:
    client = make_client()
    outcome = await client.update_phone_webhook(UPDATE, GOOD)
    assert outcome.verdict is Verdict.OK
    assert outcome.answer is not None
    assert outcome.answer.request_id
    assert served.simulator.state()["webhooks"]["space-1/8613800001234"] == {
        "StatusCallbackUrl": UPDATE.status_callback_url,
        "UpCallbackUrl": UPDATE.up_callback_url,
        "HttpFlag": "Y",
        "QueueFlag": "N",
    }


async def test_every_call_has_a_fresh_nonce(make_client: MakeClient) -> None:
    client = make_client()
    verdicts = [(await client.update_phone_webhook(UPDATE, GOOD)).verdict for _ in range(5)]
    assert verdicts == [Verdict.OK] * 5


async def test_sts_token_is_sent_and_signed(make_client: MakeClient) -> None:
    client = make_client()
    update = WebhookUpdate(cust_space_id="space-2", phone_number="8613800001234")
    with_token = await client.update_phone_webhook(update, Credentials("STS.temp", "sts-secret", "sts-token"))
    without = await client.update_phone_webhook(update, Credentials("STS.temp", "sts-secret"))
    assert with_token.verdict is Verdict.OK
    assert without.answer is not None
    assert (without.verdict, without.answer.code) == (Verdict.PERMANENT, "InvalidSecurityToken.Missing")


@pytest.mark.parametrize(
    ("credentials", "space", "code", "reason"),
    [
        (Credentials("LTAI-denied", "denied-secret"), "space-3", "Ram.PermissionDeny", "PermissionDenied"),
        (Credentials("LTAI-good", "wrong-secret"), "space-1", "SignatureDoesNotMatch", "InvalidCredentials"),
        (Credentials("LTAI-nobody", "x"), "space-1", "InvalidAccessKeyId.NotFound", "InvalidCredentials"),
        (GOOD, "space-9", "Unknown.ResourceOwnerId", "ResourceNotOwned"),
    ],
    ids=["permission-denied", "wrong-secret", "unknown-key", "foreign-space"],
)
async def test_refusals_in_4xx_bodies_are_read_and_permanent(
    make_client: MakeClient, credentials: Credentials, space: str, code: str, reason: str
) -> None:
    client = make_client()
    outcome = await client.update_phone_webhook(WebhookUpdate(space, "8613800001234"), credentials)
    assert outcome.answer is not None
    assert (outcome.verdict, outcome.reason, outcome.answer.code) == (Verdict.PERMANENT, reason, code)
    assert outcome.answer.message


async def test_flow_control_answer_is_throttled(make_client: MakeClient) -> None:
    client = make_client()
    verdicts = [(await client.update_phone_webhook(UPDATE, GOOD)).verdict for _ in range(15)]
    assert Verdict.THROTTLED in verdicts
    assert verdicts.count(Verdict.OK) >= 10


@pytest.mark.parametrize(
    ("throttle_code", "http_status"), [("System.LimitControl", 400), ("Throttling.User", 429)]
)
async def test_flow_control_says_when_to_call_again_and_the_client_reads_it(
    served: Served, make_client: MakeClient, throttle_code: str, http_status: int
) -> None:
    served.simulator.config = served.simulator.config.model_copy(update={"throttle_code": throttle_code})
    client = make_client()
    outcomes = [await client.update_phone_webhook(UPDATE, GOOD) for _ in range(12)]
    throttled = [o.answer for o in outcomes if o.verdict is Verdict.THROTTLED and o.answer]
    assert throttled, "12 calls at once are more than 10 calls/s"
    assert {(a.http_status, a.code) for a in throttled} == {(http_status, throttle_code)}
    assert all(a.retry_after is not None and 0 < a.retry_after <= 0.1 for a in throttled), throttled


async def test_injected_5xx_is_transient(served: Served, make_client: MakeClient) -> None:
    served.simulator.set_faults(fail_rate=1.0)
    client = make_client()
    outcome = await client.update_phone_webhook(UPDATE, GOOD)
    assert outcome.answer is not None
    assert (outcome.verdict, outcome.answer.http_status) == (Verdict.TRANSIENT, 503)


async def test_slow_answer_times_out_as_transient(served: Served, make_client: MakeClient) -> None:
    served.simulator.set_faults(latency_ms=500)
    client = make_client(timeout_seconds=0.1)
    outcome = await client.update_phone_webhook(UPDATE, GOOD)
    assert (outcome.verdict, outcome.answer) == (Verdict.TRANSIENT, None)
    assert outcome.error is not None
    assert "in time" in outcome.error


async def test_unreachable_endpoint_is_transient(make_client: MakeClient) -> None:
    client = make_client(timeout_seconds=2, endpoint="http://127.0.0.1:9")
    outcome = await client.update_phone_webhook(UPDATE, GOOD)
    assert outcome.verdict is Verdict.TRANSIENT
    assert outcome.error is not None
    assert "could not reach" in outcome.error


@pytest.mark.parametrize(
    ("credentials", "account", "code"),
    [
        (GOOD, "1", "OK"),
        (Credentials("STS.temp", "sts-secret", "sts-token"), "2", "OK"),
        (Credentials("LTAI-denied", "denied-secret"), "3", "OK"),  # no right in CAMS: STS still tells
        (Credentials("LTAI-good", "made-up"), None, "SignatureDoesNotMatch"),
        (Credentials("LTAI-made-up", "x"), None, "InvalidAccessKeyId.NotFound"),
    ],
    ids=["access-key", "sts-credentials", "key-without-rights", "known-key-wrong-secret", "made-up-key"],
)
async def test_sts_tells_which_account_credentials_belong_to(
    served: Served, credentials: Credentials, account: str | None, code: str
) -> None:
    client = CamsClient(endpoint=served.endpoint, timeout_seconds=5, sts_endpoint=served.endpoint)
    try:
        outcome, found = await client.caller_identity(credentials)
    finally:
        await client.aclose()
    assert found == account
    assert outcome.answer is not None
    assert outcome.answer.code == code
    call = served.simulator.calls_of()[-1]
    assert (call["action"], call["code"]) == ("GetCallerIdentity", code)


async def test_without_an_sts_endpoint_no_account_is_learned(make_client: MakeClient) -> None:
    outcome, found = await make_client().caller_identity(GOOD)
    assert (found, outcome.verdict) == (None, Verdict.TRANSIENT)
