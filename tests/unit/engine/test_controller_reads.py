"""The controller on fakes: drift checks, Observe objects and number health, all from reads of CAMS."""

from __future__ import annotations

import asyncio

import pytest

from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.wiring import build_controller
from tests.unit.fakes import (
    PAUSED,
    TEAM_ACCOUNT,
    FakeCams,
    FakeKube,
    FakeRrsa,
    loop_clock,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    reason_of,
    settle,
    until,
)

pytestmark = pytest.mark.looptime


async def test_drift_is_detected_with_one_read_per_space_and_re_applied(kube: FakeKube) -> None:
    cams = FakeCams()
    settings = make_settings(drift_interval_seconds=60)
    controller = make_controller(settings=settings, cams=cams, kube=kube)
    for i in range(5):
        controller.intake.observe(
            pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}", statusCallbackUrl=f"https://a/{i}")
        )
    await settle(controller, lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(5)))
    assert cams.queries == ["space"], "one read before the first call proved the key: no drift check yet"
    assert cams.reads_before_call[0] == 1
    cams.live["8613800000002"] = LiveNumber("8613800000002", "https://changed-in-console", "")
    await settle(controller, lambda: len(cams.calls) == 6)
    assert cams.calls[-1][0].status_callback_url == "https://a/2"
    assert cams.queries == ["space", "space"], "one read for the whole space"
    assert ("Warning", "DriftDetected") in [(t, r) for t, r, _ in kube.events]
    assert controller.metrics.registry.get_sample_value("cams_webhook_operator_drift_detected_total") == 1
    await settle(controller, lambda: all(kube.statuses[f"o{i}"].last_drift_check_time for i in range(5)))


async def test_drift_checks_can_be_turned_off_per_object(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    off = {"camswebhook.io/drift-check-interval": "off"}
    controller.intake.observe(pwh_body(name="off", annotations=off, statusCallbackUrl="https://a"))
    controller.intake.observe(pwh_body(name="on", custSpaceId="other-space", phoneNumber="6591234567"))
    # Runs until the object with checks on has been read several times: the other one never is.
    await settle(controller, lambda: cams.queries.count("other-space") >= 3)
    assert cams.queries.count("space") == 1, "read once, to prove the key before claiming: never checked"


async def test_an_observed_object_reads_but_never_updates_until_switched_to_manage(kube: FakeKube) -> None:
    cams = FakeCams()
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://set-in-console.example", "", "VERIFIED")
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(managementMode="Observe", statusCallbackUrl="https://ours.example"))
    await settle(controller, lambda: ready_reason(kube) == "Differs")  # kubectl get's REASON says so
    status = kube.statuses["pwh"]
    assert status.conditions[0].status == "True", "observing works"
    in_sync = next(c for c in status.conditions if c.type == "InSync")
    assert (in_sync.status, in_sync.reason) == ("False", "Differs")
    assert status.live is not None
    assert (status.live.status_callback_url, status.live.number_status) == (
        "https://set-in-console.example",
        "VERIFIED",
    )
    assert cams.calls == []
    assert cams.queries == ["space"]

    controller.intake.observe(
        pwh_body(
            generation=2, status=status, managementMode="Manage", statusCallbackUrl="https://ours.example"
        )
    )
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert len(cams.calls) == 1
    assert "InSync" not in {c.type for c in kube.statuses["pwh"].conditions}


async def test_metrics_scrape_with_an_observed_object_in_sync(kube: FakeKube) -> None:
    """Regression: an InSync=True condition made every scrape of /metrics fail with a KeyError."""
    from prometheus_client import generate_latest

    cams = FakeCams()
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://ours.example", "", "VERIFIED")
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(managementMode="Observe", statusCallbackUrl="https://ours.example"))
    await settle(controller, lambda: ready_reason(kube) == "Observed")
    assert any(c.type == "InSync" and c.status == "True" for c in kube.statuses["pwh"].conditions)
    controller.intake.observe(pwh_body(status=kube.statuses["pwh"], managementMode="Observe"))
    text = generate_latest(controller.metrics.registry).decode()
    assert 'cams_webhook_operator_objects{condition="InSync"} 1.0' in text
    assert 'cams_webhook_operator_objects{condition="Ready"} 1.0' in text
    assert 'cams_webhook_operator_objects{condition="Stalled"} 0.0' in text


async def test_a_drift_correction_survives_a_throttled_first_try(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(statusCallbackUrl="https://ours.example"))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://console.example", "")
    cams.codes = ["System.LimitControl"]  # the correcting call is throttled once
    await settle(controller, lambda: cams.live["8613800001234"].status_callback_url == "https://ours.example")
    assert len(cams.calls) == 3
    # The retry after the throttled correction needed no new read: the drift was not forgotten.
    assert cams.reads_before_call[1] == cams.reads_before_call[2], cams.reads_before_call


async def test_a_paused_object_is_never_read_nor_reported_as_drifted(kube: FakeKube) -> None:
    """The annotation promises no CAMS call for the object: no update and no drift read for it."""
    cams = FakeCams()
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(statusCallbackUrl="https://ours.example"))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    controller.intake.observe(
        pwh_body(status=kube.statuses["pwh"], annotations=PAUSED, statusCallbackUrl="https://ours.example")
    )
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://console.example", "")
    await settle(controller, lambda: ready_reason(kube) == "Paused")
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(3600)  # an hour of drift intervals
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert cams.queries == ["space"], "the read before its first call (to prove the key), none since"
    assert len(cams.calls) == 1
    assert "DriftDetected" not in [reason for _, reason, _ in kube.events]


async def test_an_observer_of_a_space_its_account_does_not_allow_reads_nothing(kube: FakeKube) -> None:
    kube.secrets[("ns", "team-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    cams = FakeCams()
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://other-team.example/?token=t", "")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe_account(TEAM_ACCOUNT, "CamsAccount")
    ref = {"kind": "CamsAccount", "name": "team"}
    controller.intake.observe(pwh_body(managementMode="Observe", accountRef=ref, custSpaceId="space"))
    await settle(controller, lambda: kube.statuses.get("pwh") and kube.statuses["pwh"].live is not None)
    # The platform team takes the space away from the account: what was read goes with it.
    controller.intake.observe_account(
        {
            "metadata": {**TEAM_ACCOUNT["metadata"], "generation": 2},
            "spec": {**TEAM_ACCOUNT["spec"], "spaces": ["x"]},
        },
        "CamsAccount",
    )
    reads = len(cams.queries)
    await settle(controller, lambda: reason_of(kube, "pwh") == "SpaceNotAllowed")
    assert kube.statuses["pwh"].live is None
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(3600)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert (len(cams.queries), cams.calls) == (reads, [])


async def test_an_observer_whose_read_is_refused_says_so_and_waits_like_a_refused_update(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    cams.query_codes = ["Ram.PermissionDeny"]
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(managementMode="Observe"))
    await settle(controller, lambda: reason_of(kube, "pwh") == "PermissionDenied")
    status = kube.statuses["pwh"]
    assert (status.code, status.request_id) == ("Ram.PermissionDeny", "rq")
    assert "QueryChatappPhoneNumbers: Ram.PermissionDeny" in status.conditions[0].message
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(3000)  # less than CAMS_PERMANENT_RETRY_SECONDS
    assert len(cams.queries) == 1, "not read again every minute"
    # The spec changes: read again at once, and the refusal is over.
    controller.intake.observe(
        pwh_body(generation=2, status=kube.statuses["pwh"], managementMode="Observe", httpFlag=True)
    )
    await until(lambda: ready_reason(kube) == "NotFound")  # read: the space does not list the number
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert len(cams.queries) == 2
    assert [reason for _, reason, _ in kube.events] == ["PermissionDenied"], "one Event for the refusal"


async def test_a_read_refused_for_its_rrsa_token_is_renewed_and_read_again_at_once(kube: FakeKube) -> None:
    cams = FakeCams()
    cams.query_codes = ["InvalidSecurityToken.Expired"]
    settings = OperatorSettings(qps=1000.0)  # no AccessKey of its own: the operator's identity is RRSA
    controller = make_controller(settings=settings, cams=cams, kube=kube, temporary=FakeRrsa())
    controller.intake.observe(pwh_body(managementMode="Observe"))
    await settle(controller, lambda: ready_reason(kube) == "NotFound")  # read: the number is not listed
    assert [credentials.access_key_id for credentials in cams.query_credentials] == ["STS.1", "STS.2"]


async def test_an_observer_without_credentials_waits_instead_of_reading_every_second(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = build_controller(
        settings=OperatorSettings(qps=1000.0), cams=cams, kube=kube, wall_clock=loop_clock
    )  # no account at all: the object is refused before any read
    controller.listed.set()
    controller.intake.observe(pwh_body(managementMode="Observe"))
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(600)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert cams.queries == []
    assert reason_of(kube, "pwh") == "NoAccount"
    assert kube.patches <= 2


async def test_a_quality_drop_read_with_the_drift_check_is_one_warning_and_never_touches_ready(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    number = "8613800001234"
    cams.live[number] = LiveNumber(number, "https://ours.example", "", "CONNECTED", "GREEN", "TIER_1000")
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(statusCallbackUrl="https://ours.example"))
    task = asyncio.create_task(controller.run())
    try:
        await asyncio.sleep(130)  # applied, then two drift reads
        health = next(c for c in kube.statuses["pwh"].conditions if c.type == "NumberHealthy")
        assert (health.status, health.reason) == ("True", "Healthy")
        cams.live[number] = LiveNumber(number, "https://ours.example", "", "CONNECTED", "RED", "TIER_1000")
        await asyncio.sleep(200)  # three more reads, all RED
        status = kube.statuses["pwh"]
        health = next(c for c in status.conditions if c.type == "NumberHealthy")
        assert (health.status, health.reason) == ("False", "QualityRed")
        assert status.conditions[0].type == "Ready"
        assert status.conditions[0].status == "True", "a quality rating never makes an object unready"
        assert status.live is not None
        assert status.live.quality_rating == "RED"
        drops = [e for e in kube.events if e[1] == "QualityDegraded"]
        assert drops == [
            ("Warning", "QualityDegraded", f"The quality rating of {number} changed from GREEN to RED")
        ]
        assert len(cams.calls) == 1, "health comes from the reads: no call of its own"
        registry = controller.metrics.registry
        assert registry.get_sample_value("cams_webhook_operator_numbers_by_quality", {"quality": "RED"}) == 1
        assert (
            registry.get_sample_value("cams_webhook_operator_numbers_by_status", {"status": "CONNECTED"}) == 1
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
