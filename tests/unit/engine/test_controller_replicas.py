"""The controller on fakes: leader and follower replicas, RRSA credentials, and CAMS outages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cams_webhook_operator.cams.credentials import RrsaConfig
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.settings import OperatorSettings
from tests.unit.fakes import (
    FakeCams,
    FakeKube,
    FakeRrsa,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    reason_of,
    settle,
    until,
)

pytestmark = pytest.mark.looptime


async def test_leader_and_rrsa_gauges_say_whether_this_replica_acts_and_sts_answers(kube: FakeKube) -> None:
    rrsa = FakeRrsa()
    leads = True
    controller = make_controller(
        settings=make_settings(ALIBABA_CLOUD_ACCESS_KEY_ID=None, ALIBABA_CLOUD_ACCESS_KEY_SECRET=None),
        cams=FakeCams("OK"),
        kube=kube,
        temporary=rrsa,
        leading=lambda: leads,
    )
    registry = controller.metrics.registry

    def gauge(name: str) -> float | None:
        return registry.get_sample_value(f"cams_webhook_operator_{name}")

    assert (gauge("leader"), gauge("rrsa_failing")) == (0, 0), "a replica whose workers do not run leads not"
    task = asyncio.create_task(controller.run())
    await asyncio.sleep(1)
    assert gauge("leader") == 1
    rrsa.failing = True
    assert gauge("rrsa_failing") == 1
    leads = False
    assert gauge("leader") == 0, "the lease may have run out: it acts no more"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_rrsa_credentials_refused_by_cams_are_renewed_and_retried(kube: FakeKube) -> None:
    cams = FakeCams("InvalidSecurityToken.Expired")
    rrsa = FakeRrsa()
    settings = OperatorSettings(qps=1000.0, retry_base_seconds=0.01, retry_max_seconds=0.05)
    controller = make_controller(settings=settings, cams=cams, kube=kube, temporary=rrsa)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_id for _, credentials in cams.calls] == ["STS.1", "STS.2"]


async def test_one_accounts_backlog_never_delays_another_account(kube: FakeKube) -> None:
    kube.secrets[("ns", "b")] = {"accessKeyId": "LTAI-b", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(qps=1.0), cams=cams, kube=kube)
    for i in range(40):  # 40 s of account A's quota, more than there are workers
        controller.intake.observe(pwh_body(name=f"a{i}", phoneNumber=f"861380000{i:04d}"))
    controller.intake.observe(
        pwh_body(name="b", phoneNumber="6591234567", credentialsSecretRef={"name": "b"})
    )
    started = asyncio.get_running_loop().time()
    await settle(controller, lambda: ready_reason(kube, "b") == "Applied", limit=30)
    applied_b = next(
        t for (u, c), t in zip(cams.calls, cams.call_times, strict=True) if c.access_key_id == "LTAI-b"
    )
    assert applied_b - started < 1.0
    assert sum(1 for _, c in cams.calls if c.access_key_id == "LTAI-operator") <= 12


async def test_an_outage_holds_objects_probes_slowly_and_releases_them_when_cams_answers(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    cams.down = True
    controller = make_controller(settings=make_settings(qps=10.0), cams=cams, kube=kube)
    loop = asyncio.get_running_loop()
    running = asyncio.create_task(controller.run())
    try:
        for i in range(30):
            controller.intake.observe(pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}"))
        await until(lambda: all(reason_of(kube, f"o{i}") == "CamsUnavailable" for i in range(30)))
        before = len(cams.calls)
        await asyncio.sleep(120)
        during = len(cams.calls) - before
        assert during <= 120 / 2, f"{during} calls in 2 min of outage: one probe every 2 s at most"
        unavailable = [e for e in kube.events if e[1] == "CamsUnavailable"]
        assert len(unavailable) == 30, "one Event per object for the whole outage"
        cams.down = False
        back = loop.time()
        await until(lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(30)))
        assert max(cams.call_times) - back <= 2 + 30 / 10, "one probe interval, then the quota's time"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_follower_keeps_up_with_the_leaders_status_and_makes_no_call_on_taking_over(
    kube: FakeKube,
) -> None:
    leader_kube = FakeKube()
    leader = make_controller(settings=make_settings(), cams=FakeCams(), kube=leader_kube)
    leader.intake.observe(pwh_body())
    await settle(leader, lambda: ready_reason(leader_kube) == "Applied")
    follower_cams = FakeCams()
    follower = make_controller(settings=make_settings(), cams=follower_cams, kube=kube)
    follower.intake.observe(pwh_body())  # listed before the leader's status write ...
    follower.intake.observe(pwh_body(status=leader_kube.statuses["pwh"]))  # ... which the watch shows later
    await settle(follower, lambda: True)  # the leader dies; the follower's workers start
    assert follower_cams.calls == []


async def test_a_replica_that_may_no_longer_lead_neither_calls_nor_writes(kube: FakeKube) -> None:
    cams = FakeCams()
    leading = True
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube, leading=lambda: leading)
    controller.intake.observe(pwh_body(name="before"))
    await settle(controller, lambda: ready_reason(kube, "before") == "Applied")
    patches, claims = kube.patches, dict(kube.records)
    leading = False  # the lease may have run out: a paused process resumes, or the network healed
    controller.intake.observe(pwh_body(name="after", phoneNumber="8613800009876"))
    controller.intake.observe(
        pwh_body(name="before", generation=2, status=kube.statuses["before"], httpFlag=True)
    )
    await settle(controller, lambda: True, limit=60)
    assert len(cams.calls) == 1
    assert (kube.patches, kube.records) == (patches, claims)


async def test_objects_refused_rrsa_credentials_retry_as_soon_as_sts_answers_again(
    kube: FakeKube, tmp_path: Path
) -> None:
    """40 objects on an RRSA role while STS is down: one exchange per retry step (not 40), and when STS
    answers again they all converge at once, not each after its own backoff (up to 300 s)."""
    token = tmp_path / "token"
    token.write_text("oidc-token")
    sts_up = False
    exchanges = 0

    def sts(_: httpx.Request) -> httpx.Response:
        nonlocal exchanges
        exchanges += 1
        if not sts_up:
            return httpx.Response(503, json={"Code": "ServiceUnavailable", "Message": "down"})
        expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        issued = {
            "AccessKeyId": "STS.x",
            "AccessKeySecret": "s",
            "SecurityToken": "t",
            "Expiration": expiration,
        }
        return httpx.Response(200, json={"Credentials": issued})

    loop = asyncio.get_running_loop()
    rrsa = RrsaProvider(
        RrsaConfig("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", token),
        transport=httpx.MockTransport(sts),
        clock=loop.time,
        retry_base_seconds=1,
        retry_max_seconds=300,
    )
    settings = OperatorSettings(qps=1000.0, retry_base_seconds=1, retry_max_seconds=300)
    cams = FakeCams()
    controller = make_controller(settings=settings, cams=cams, kube=kube, temporary=rrsa)
    for i in range(40):
        controller.intake.observe(pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}"))
    running = asyncio.create_task(controller.run())
    try:
        await asyncio.sleep(600)  # ten minutes of STS down
        assert exchanges <= 600 / 30 + 10, f"{exchanges} exchanges: one per retry step, not one per object"
        assert cams.calls == []
        sts_up = True
        back = loop.time()
        await until(lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(40)))
        assert loop.time() - back <= 30 + 5, "within one retry step of STS's return"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await rrsa.aclose()
