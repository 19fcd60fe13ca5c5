"""The controller with fake Kubernetes and CAMS, on fake loop time (looptime): when it calls, what it
writes, what it retries. Waiting a minute for a retry costs no real time, so nothing here races a timer."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.api.refs import ObjectRef
from cams_webhook_operator.cams.credentials import Credentials, RrsaConfig
from cams_webhook_operator.cams.messages import LiveNumber, WebhookUpdate
from cams_webhook_operator.cams.outcomes import Outcome
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.decisions.plans import fingerprint, webhook_update
from cams_webhook_operator.decisions.state import Claimant
from cams_webhook_operator.engine.controller import Controller
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.claims import ClaimRecord
from cams_webhook_operator.wiring import build_controller
from tests.unit.fakes import (
    DEFAULT_ACCOUNT,
    SECRET_VALUE,
    TEAM_ACCOUNT,
    TOKEN_VALUE,
    FakeCams,
    FakeKube,
    loop_clock,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    settle,
)

pytestmark = pytest.mark.looptime


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


async def test_new_object_is_applied_once_and_reported_ready(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(statusCallbackUrl="https://a.example/s", httpFlag=True))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert len(cams.calls) == 1
    update, credentials = cams.calls[0]
    assert (update.status_callback_url, update.http_flag) == ("https://a.example/s", True)
    assert credentials.access_key_id == "LTAI-operator"
    status = kube.statuses["pwh"]
    assert (status.code, status.observed_generation) == ("OK", 1)
    assert [(t, r) for t, r, _ in kube.events] == [("Normal", "Applied")]


async def test_nothing_is_decided_before_the_listing_is_over(kube: FakeKube) -> None:
    """Who manages a number is decided only once every object that may claim it is known: a restart
    decides nothing on half a listing."""
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube, listed=False)
    controller.intake.observe(pwh_body(statusCallbackUrl="https://a.example/s"))
    task = asyncio.create_task(controller.run())
    await asyncio.sleep(60)
    assert (cams.calls, kube.statuses) == ([], {})
    controller.listed.set()
    await asyncio.sleep(10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (len(cams.calls), ready_reason(kube)) == (1, "Applied")


def test_the_claimants_of_a_number_follow_objects_added_switched_and_forgotten() -> None:
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=FakeKube())
    states = controller._states
    claim = ("space", "8613800001234")
    controller.intake.observe(pwh_body(name="one", created="2026-11-27T10:00:00Z"))
    controller.intake.observe(pwh_body(name="two", created="2026-11-27T11:00:00Z"))
    assert sorted(c.name for c in states.claimants(claim)) == ["one", "two"]
    controller.intake.observe(pwh_body(name="two", generation=2, managementMode="Observe"))
    assert [c.name for c in states.claimants(claim)] == ["one"]
    controller.intake.forget("ns", "one")
    assert states.claimants(claim) == []
    controller.intake.observe(pwh_body(name="two", generation=3))
    assert [(c.name, c.applied) for c in states.claimants(claim)] == [("two", False)]


async def test_workers_let_the_event_loop_run_between_objects_that_need_no_await(kube: FakeKube) -> None:
    """Paused objects are decided from memory alone; the leader's lease renewal (another task) must still
    run between them, or a restart over tens of thousands of objects loses the lease."""
    controller = make_controller(settings=make_settings(workers=1), cams=FakeCams(), kube=kube)
    for i in range(200):
        controller.intake.observe(pwh_body(name=f"pwh-{i}", annotations=PAUSED))
    ticks_at_write: list[int] = []
    ticks = 0
    patch = kube.patch_status

    async def counting_patch(ref: ObjectRef, status: PhoneWebhookStatus) -> bool:
        ticks_at_write.append(ticks)
        return await patch(ref, status)

    kube.patch_status = counting_patch  # type: ignore[method-assign]

    async def tick() -> None:  # bounded: the fake clock moves only once the loop has nothing to run
        nonlocal ticks
        for _ in range(1000):
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await settle(controller, lambda: len(kube.statuses) == 200)
    ticker.cancel()
    assert len(set(ticks_at_write)) >= 150, "the other task ran between the objects"


async def test_own_status_events_and_restart_over_in_sync_objects_make_no_call(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    written = kube.statuses["pwh"]
    controller.intake.observe(pwh_body(status=written))  # the watch echoes our status write
    restarted = make_controller(settings=make_settings(), cams=cams, kube=kube)
    patches_before = kube.patches
    restarted.intake.observe(pwh_body(status=written))
    await settle(restarted, lambda: True)
    assert len(cams.calls) == 1
    assert kube.patches == patches_before, "an in-sync object needs no status write either"
    assert kube.claim_reads == 0, "the claims were listed once, not read one by one"
    assert [record.holder for record in kube.records.values()] == ["ns/pwh"]


async def test_spec_change_is_applied_again(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: len(cams.calls) == 1 and ready_reason(kube) is not None)
    controller.intake.observe(
        pwh_body(generation=2, status=kube.statuses["pwh"], upCallbackUrl="https://b.example/u")
    )
    await settle(controller, lambda: kube.statuses["pwh"].observed_generation == 2)
    assert len(cams.calls) == 2
    assert cams.calls[1][0].up_callback_url == "https://b.example/u"


async def test_throttled_call_is_retried_with_backoff_until_applied(kube: FakeKube) -> None:
    cams = FakeCams("System.LimitControl", "System.LimitControl", "OK")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert len(cams.calls) == 3
    assert [r for _, r, _ in kube.events] == ["Throttled", "Applied"], "one Throttled Event per episode"


async def test_permanent_refusal_stalls_without_a_hot_retry(kube: FakeKube) -> None:
    cams = FakeCams("Ram.PermissionDeny")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: "pwh" in kube.statuses)
    status = kube.statuses["pwh"]
    assert {c.type: c.status for c in status.conditions}["Stalled"] == "True"
    assert status.next_attempt_time is not None
    # A restart over the stalled object waits for the long retry instead of calling again.
    restarted = make_controller(settings=make_settings(), cams=cams, kube=kube)
    restarted.intake.observe(pwh_body(status=status))
    await settle(restarted, lambda: True, limit=1)
    assert len(cams.calls) == 1


async def test_a_fixed_secret_is_read_again_within_a_minute_and_retried_at_once(kube: FakeKube) -> None:
    """Secrets are got by name, never watched: the refresh reads them again every minute."""
    kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "wrong"}
    cams = FakeCams("SignatureDoesNotMatch")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: "pwh" in kube.statuses)
    assert kube.statuses["pwh"].conditions[0].reason == "InvalidCredentials"
    kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "right"}
    fixed = asyncio.get_running_loop().time()
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_secret for _, credentials in cams.calls] == ["wrong", "right"]
    assert cams.call_times[1] - fixed <= 60, "picked up by the next refresh, not the hour-long retry"


async def test_a_key_cams_refuses_makes_its_secret_be_read_again_at_once(kube: FakeKube) -> None:
    kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "old"}

    class RotatedWhileCalling(FakeCams):
        async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome:
            kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "new"}
            return await super().update_phone_webhook(update, credentials)

    cams = RotatedWhileCalling("InvalidAccessKeyId.NotFound")
    controller = make_controller(settings=make_settings(secret_refresh_seconds=3600), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_secret for _, credentials in cams.calls] == ["old", "new"]
    assert cams.call_times[1] - cams.call_times[0] < 5, "no refresh interval waited"


async def test_missing_secret_stalls_and_its_creation_applies(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "cams-creds"}))
    await settle(controller, lambda: "pwh" in kube.statuses)
    stalled = kube.statuses["pwh"]
    assert [(c.type, c.reason) for c in stalled.conditions if c.status == "True"] == [
        ("Stalled", "SecretNotFound")
    ]
    assert "ns/cams-creds" in stalled.conditions[0].message
    assert cams.calls == []
    kube.secrets[("ns", "cams-creds")] = {
        "accessKeyId": "STS.key",
        "accessKeySecret": SECRET_VALUE,
        "securityToken": TOKEN_VALUE,
    }
    await settle(controller, lambda: ready_reason(kube) == "Applied")  # within the next refresh
    assert cams.calls[0][1] == Credentials("STS.key", SECRET_VALUE, TOKEN_VALUE)


async def test_reading_an_unchanged_secret_again_changes_nothing(kube: FakeKube) -> None:
    kube.secrets[("ns", "c")] = {"accessKeyId": "A", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    reads, patches = kube.secret_reads, kube.patches
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(185)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert kube.secret_reads == reads + 3, "one read per minute"
    assert (len(cams.calls), kube.patches) == (1, patches)


async def test_no_credentials_anywhere_stalls_with_what_to_configure(kube: FakeKube) -> None:
    settings = OperatorSettings(qps=1000.0)
    controller = make_controller(settings=settings, cams=FakeCams(), kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: "pwh" in kube.statuses)
    ready = kube.statuses["pwh"].conditions[0]
    assert ready.reason == "NoCredentials"
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in ready.message


async def test_deleted_object_is_forgotten(kube: FakeKube) -> None:
    cams = FakeCams("System.LimitControl")
    settings = make_settings(retry_base_seconds=30, retry_max_seconds=60)
    controller = make_controller(settings=settings, cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: len(cams.calls) == 1)  # its retry is due 15-30 s later
    controller.intake.forget("ns", "pwh")
    await settle(controller, lambda: True, limit=1)
    await asyncio.sleep(60)
    assert len(cams.calls) == 1


async def test_no_secret_or_token_reaches_status_or_events(kube: FakeKube) -> None:
    kube.secrets[("ns", "c")] = {
        "accessKeyId": "STS.k",
        "accessKeySecret": SECRET_VALUE,
        "securityToken": TOKEN_VALUE,
    }
    cams = FakeCams("Ram.PermissionDeny")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: "pwh" in kube.statuses)
    written = json.dumps([s.model_dump(mode="json") for s in kube.statuses.values()]) + json.dumps(
        kube.events
    )
    assert SECRET_VALUE not in written
    assert TOKEN_VALUE not in written
    assert SECRET_VALUE not in repr(cams.calls[0][1])
    assert TOKEN_VALUE not in repr(cams.calls[0][1])


async def test_metrics_count_calls_throttling_waits_and_conditions(kube: FakeKube) -> None:
    cams = FakeCams("System.LimitControl", "OK")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    registry = controller.metrics.registry

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"cams_webhook_operator_{name}", labels)

    # The Alibaba Cloud account STS says the key belongs to: no part of the AccessKey ID.
    account = "account:uid-of-LTAI-operator"
    assert (
        sample("cams_calls_total", action="UpdatePhoneWebhook", code="System.LimitControl", account=account)
        == 1
    )
    assert sample("cams_calls_total", action="UpdatePhoneWebhook", code="OK", account=account) == 1
    assert sample("cams_throttled_total", account=account) == 1
    assert sample("cams_call_duration_seconds_count", action="UpdatePhoneWebhook") == 2
    assert sample("limiter_wait_seconds_count") == 2
    assert sample("reconciles_total", result="applied") == 1
    assert sample("objects", condition="Ready") == 1
    assert sample("objects", condition="Stalled") == 0
    assert sample("workqueue_depth") == 0


async def test_a_secret_no_object_names_any_more_is_forgotten(kube: FakeKube) -> None:
    kube.secrets[("ns", "c")] = {"accessKeyId": "A", "accessKeySecret": "S"}
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    reads = kube.secret_reads
    controller.intake.forget("ns", "pwh")
    controller.intake.observe(
        pwh_body(name="other", phoneNumber="8613800004321", credentialsSecretRef={"name": "c"})
    )
    await settle(controller, lambda: ready_reason(kube, "other") == "Applied")
    assert kube.secret_reads == reads + 1, "the cached data went with the last object that named it"


async def test_a_second_object_for_the_same_number_is_held_until_the_first_is_deleted(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(name="first", created="2026-11-27T10:00:00Z"))
    controller.intake.observe(
        pwh_body(name="second", created="2026-11-27T10:05:00Z", statusCallbackUrl="https://b.example/s")
    )
    await settle(controller, lambda: ready_reason(kube, "first") == "Applied" and "second" in kube.statuses)
    conflict = kube.statuses["second"].conditions[0]
    assert (conflict.status, conflict.reason) == ("False", "Conflict")
    assert "PhoneWebhook first already manages" in conflict.message
    assert len(cams.calls) == 1
    assert ("Warning", "Conflict") in [(t, r) for t, r, _ in kube.events]

    controller.intake.forget("ns", "first")
    deleted = asyncio.get_running_loop().time()
    await settle(controller, lambda: ready_reason(kube, "second") == "Applied")
    assert [update.status_callback_url for update, _ in cams.calls] == [None, "https://b.example/s"]
    assert cams.call_times[1] - deleted >= 300, "the number waited out the grace period for a re-creation"


async def test_an_object_cams_already_holds_keeps_its_number_when_claims_are_first_recorded(
    kube: FakeKube,
) -> None:
    """Objects applied before claims existed: the index says which one CAMS holds the spec of, and it keeps
    the number whichever object is decided first."""
    holder = Claimant("2026-11-27T10:00:00Z", "other-ns", "original", applied=True)
    newcomer = Claimant("2026-11-27T09:00:00Z", "ns", "pwh")  # older, but never applied
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.ownership.claimants_of = lambda claim: [newcomer, holder]
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: "pwh" in kube.statuses)
    conflict = kube.statuses["pwh"].conditions[0]
    assert conflict.reason == "Conflict"
    assert conflict.message.startswith("A PhoneWebhook of another namespace"), "other teams are not named"
    assert (cams.calls, kube.records) == ([], {}), "nothing claimed on the holder's behalf either"


async def test_switching_an_older_observer_to_manage_never_takes_the_number(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(name="observer", created="2026-11-27T09:00:00Z", managementMode="Observe")
    )
    controller.intake.observe(pwh_body(name="owner", created="2026-11-27T10:00:00Z"))
    await settle(controller, lambda: ready_reason(kube, "owner") == "Applied" and "observer" in kube.statuses)
    controller.intake.observe(
        pwh_body(name="observer", generation=2, created="2026-11-27T09:00:00Z", statusCallbackUrl="https://x")
    )
    await settle(controller, lambda: _reason(kube, "observer") == "Conflict")
    assert len(cams.calls) == 1
    assert [record.holder for record in kube.records.values()] == ["ns/owner"]


async def test_an_owner_created_again_under_its_name_keeps_its_number(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    running = asyncio.create_task(controller.run())
    try:
        controller.intake.observe(pwh_body(name="owner"))
        await _until(lambda: ready_reason(kube, "owner") == "Applied")
        controller.intake.observe(pwh_body(name="waiter", statusCallbackUrl="https://waiter.example"))
        await _until(lambda: _reason(kube, "waiter") == "Conflict")
        controller.intake.forget("ns", "owner")  # an Argo CD Replace: deleted ...
        recreated = pwh_body(name="owner")
        recreated["metadata"]["uid"] = "uid-owner-2"
        controller.intake.observe(recreated)  # ... and created again at once,
        # Decided at once; whether this runs before or after the release of the old claim, the re-created
        # owner ends up holding it (the release checks that the object is not back; a later reconcile
        # would reclaim it anyway), so this test pins the policy, not that ordering.
        await controller.reconcile(("ns", "owner"))
        await asyncio.sleep(3600)  # long after the grace period
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert "https://waiter.example" not in [update.status_callback_url for update, _ in cams.calls]
    assert _reason(kube, "waiter") == "Conflict"
    (claim,) = kube.records.values()
    assert (claim.holder, claim.released_at) == ("ns/owner", None)


PAUSED = {"camswebhook.io/paused": "true"}


async def test_a_paused_object_makes_no_call_until_unpaused(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(annotations=PAUSED))
    await settle(controller, lambda: "pwh" in kube.statuses)
    ready = kube.statuses["pwh"].conditions[0]
    assert (ready.status, ready.reason) == ("False", "Paused")
    assert "not applied" in ready.message
    assert cams.calls == []
    controller.intake.observe(pwh_body(status=kube.statuses["pwh"]))  # the annotation is removed
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert len(cams.calls) == 1


async def test_pausing_an_applied_object_keeps_it_ready(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    controller.intake.observe(pwh_body(status=kube.statuses["pwh"], annotations=PAUSED))
    await settle(controller, lambda: ready_reason(kube) == "Paused")
    assert "CAMS holds this spec" in kube.statuses["pwh"].conditions[0].message
    assert len(cams.calls) == 1


async def test_a_reconcile_request_forces_one_call_and_is_echoed(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    request = {"camswebhook.io/reconcile-requested-at": "2026-11-27T12:00:00Z"}
    controller.intake.observe(pwh_body(status=kube.statuses["pwh"], annotations=request))
    await settle(controller, lambda: kube.statuses["pwh"].last_handled_reconcile_at == "2026-11-27T12:00:00Z")
    assert len(cams.calls) == 2
    restarted = make_controller(settings=make_settings(), cams=cams, kube=kube)
    restarted.intake.observe(pwh_body(status=kube.statuses["pwh"], annotations=request))
    await settle(restarted, lambda: True)
    assert len(cams.calls) == 2, "a request already handled is not handled again"


FINALIZER = "camswebhook.io/clear-webhook"


async def test_clear_policy_holds_a_finalizer_and_retain_drops_it(kube: FakeKube) -> None:
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=kube)
    controller.intake.observe(pwh_body(deletionPolicy="Clear"))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert kube.finalizers["pwh"] == [FINALIZER]
    controller.intake.observe(pwh_body(generation=2, status=kube.statuses["pwh"], finalizers=[FINALIZER]))
    await settle(controller, lambda: kube.statuses["pwh"].observed_generation == 2)
    assert kube.finalizers["pwh"] == []


async def test_deleting_a_clear_object_clears_cams_then_releases_it(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(deletionPolicy="Clear", statusCallbackUrl="https://a.example/s", httpFlag=True)
    )
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    controller.intake.observe(
        pwh_body(
            status=kube.statuses["pwh"],
            finalizers=[FINALIZER],
            deleting=True,
            deletionPolicy="Clear",
            statusCallbackUrl="https://a.example/s",
            httpFlag=True,
        )
    )
    await settle(controller, lambda: kube.finalizers.get("pwh") == [])
    cleared = cams.calls[-1][0]
    assert (cleared.status_callback_url, cleared.up_callback_url, cleared.http_flag, cleared.queue_flag) == (
        "",
        "",
        False,
        False,
    )
    assert ("Normal", "Cleared") in [(t, r) for t, r, _ in kube.events]


async def test_a_refused_clear_keeps_the_object_until_released_by_annotation(kube: FakeKube) -> None:
    cams = FakeCams("OK", "Ram.PermissionDeny")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(deletionPolicy="Clear"))
    await settle(controller, lambda: ready_reason(kube) == "Applied")

    def deleting(**extra: Any) -> dict[str, Any]:
        return pwh_body(
            status=kube.statuses["pwh"],
            finalizers=[FINALIZER],
            deleting=True,
            deletionPolicy="Clear",
            **extra,
        )

    controller.intake.observe(deleting())
    await settle(controller, lambda: kube.statuses["pwh"].conditions[2].status == "True")
    stalled = kube.statuses["pwh"].conditions[2]
    assert stalled.reason == "PermissionDenied"
    assert "camswebhook.io/release-without-clearing=true" in stalled.message
    assert kube.finalizers["pwh"] == [FINALIZER]
    controller.intake.observe(deleting(annotations={"camswebhook.io/release-without-clearing": "true"}))
    await settle(controller, lambda: kube.finalizers["pwh"] == [])
    assert len(cams.calls) == 2, "released without another call"


async def test_an_object_cams_never_accepted_is_deleted_without_a_call(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    kube.finalizers["pwh"] = [FINALIZER]
    controller.intake.observe(pwh_body(finalizers=[FINALIZER], deleting=True, deletionPolicy="Clear"))
    await settle(controller, lambda: kube.finalizers["pwh"] == [])
    assert cams.calls == []


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


class FakeRrsa:
    def __init__(self) -> None:
        self.config = RrsaConfig("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", Path("/token"))
        self.issued = 0

    async def credentials(self) -> Credentials:
        if self.issued == 0 or self.stale:
            self.issued += 1
            self.stale = False
        return Credentials(f"STS.{self.issued}", SECRET_VALUE, TOKEN_VALUE)

    def invalidate(self) -> None:
        self.stale = True

    stale = False
    on_recovered = None
    failing = False


async def test_leader_and_rrsa_gauges_say_whether_this_replica_acts_and_sts_answers(kube: FakeKube) -> None:
    rrsa = FakeRrsa()
    leads = True
    controller = make_controller(
        settings=make_settings(ALIBABA_CLOUD_ACCESS_KEY_ID=None, ALIBABA_CLOUD_ACCESS_KEY_SECRET=None),
        cams=FakeCams("OK"),
        kube=kube,
        rrsa=rrsa,
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
    controller = make_controller(settings=settings, cams=cams, kube=kube, rrsa=rrsa)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_id for _, credentials in cams.calls] == ["STS.1", "STS.2"]


async def test_an_observed_object_reads_but_never_updates_until_switched_to_manage(kube: FakeKube) -> None:
    cams = FakeCams()
    cams.live["8613800001234"] = LiveNumber("8613800001234", "https://set-in-console.example", "", "VERIFIED")
    controller = make_controller(settings=make_settings(drift_interval_seconds=60), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(managementMode="Observe", statusCallbackUrl="https://ours.example"))
    await settle(controller, lambda: ready_reason(kube) == "Observed")
    status = kube.statuses["pwh"]
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


async def test_an_observer_does_not_hold_a_number_against_a_manager(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(name="watcher", created="2026-11-27T09:00:00Z", managementMode="Observe")
    )
    controller.intake.observe(
        pwh_body(name="manager", created="2026-11-27T10:00:00Z", statusCallbackUrl="https://m.example")
    )
    await settle(controller, lambda: ready_reason(kube, "manager") == "Applied")
    assert len(cams.calls) == 1


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


async def test_a_fixed_secret_whose_retry_is_throttled_is_still_applied(kube: FakeKube) -> None:
    kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "wrong"}
    cams = FakeCams("SignatureDoesNotMatch", "System.LimitControl")
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(credentialsSecretRef={"name": "c"}))
    await settle(controller, lambda: "pwh" in kube.statuses)
    kube.secrets[("ns", "c")] = {"accessKeyId": "LTAI-x", "accessKeySecret": "right"}
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_secret for _, credentials in cams.calls] == ["wrong", "right", "right"]


async def test_a_failed_status_patch_is_written_later_without_calling_cams_again(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    kube.fail_patches = 2  # the patches after the accepted call fail
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert len(cams.calls) == 1, "CAMS's answer was kept; only the status write was repeated"
    assert kube.statuses["pwh"].code == "OK"


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
        await _until(lambda: all(_reason(kube, f"o{i}") == "CamsUnavailable" for i in range(30)))
        before = len(cams.calls)
        await asyncio.sleep(120)
        during = len(cams.calls) - before
        assert during <= 120 / 2, f"{during} calls in 2 min of outage: one probe every 2 s at most"
        unavailable = [e for e in kube.events if e[1] == "CamsUnavailable"]
        assert len(unavailable) == 30, "one Event per object for the whole outage"
        cams.down = False
        back = loop.time()
        await _until(lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(30)))
        assert max(cams.call_times) - back <= 2 + 30 / 10, "one probe interval, then the quota's time"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _until(check: Any, limit: float = 600.0) -> None:
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 -- polling fakes that have no events to wait on
            await asyncio.sleep(0.1)


def _reason(kube: FakeKube, name: str) -> str | None:
    status = kube.statuses.get(name)
    return status.conditions[1].reason if status and status.conditions else None


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


async def test_a_refused_account_route_makes_no_call_and_is_decided_again_when_the_account_changes(
    kube: FakeKube,
) -> None:
    kube.secrets[("ns", "team-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    other_space = {
        "metadata": TEAM_ACCOUNT["metadata"],
        "spec": {**TEAM_ACCOUNT["spec"], "spaces": ["elsewhere"]},
    }
    controller.intake.observe_account(other_space, "CamsAccount")
    controller.intake.observe(pwh_body(accountRef={"kind": "CamsAccount", "name": "team"}))
    await settle(controller, lambda: "pwh" in kube.statuses)
    stalled = kube.statuses["pwh"].conditions[2]
    assert (stalled.status, stalled.reason) == ("True", "SpaceNotAllowed")
    assert cams.calls == []
    assert [r for _, r, _ in kube.events] == ["SpaceNotAllowed"]
    controller.intake.observe_account(
        {**TEAM_ACCOUNT, "metadata": {**TEAM_ACCOUNT["metadata"], "generation": 2}}, "CamsAccount"
    )
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [credentials.access_key_id for _, credentials in cams.calls] == ["LTAI-team"]


async def test_accounts_report_whether_their_credentials_can_be_used(kube: FakeKube) -> None:
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=kube)
    controller.intake.observe_account(TEAM_ACCOUNT, "CamsAccount")
    team = ("CamsAccount", "ns", "team")
    await settle(controller, lambda: team in kube.account_statuses)
    assert kube.account_statuses[team].conditions[0].reason == "SecretNotFound"
    assert (
        kube.account_statuses[("ClusterCamsAccount", "", "platform")].conditions[0].reason
        == "CredentialsFound"
    )
    kube.secrets[("ns", "team-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    await settle(controller, lambda: kube.account_statuses[team].conditions[0].status == "True")
    status = kube.account_statuses[team]
    assert (status.credentials, status.observed_generation) == ("Secret ns/team-key", 1)
    assert "S" not in json.dumps(status.model_dump(mode="json")).replace("Secret", "").replace("Stalled", "")


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
    await settle(controller, lambda: _reason(kube, "pwh") == "SpaceNotAllowed")
    assert kube.statuses["pwh"].live is None
    running = asyncio.create_task(controller.run())
    await asyncio.sleep(3600)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert (len(cams.queries), cams.calls) == (reads, [])


async def test_a_namespaced_accounts_quota_paces_only_its_own_objects(kube: FakeKube) -> None:
    """Two CamsAccounts on one key: the slow one's qps paces its own objects, never the other's."""
    kube.secrets[("ns", "team-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    kube.secrets[("ns", "same-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(qps=50.0), cams=cams, kube=kube)
    slow = {"metadata": {**TEAM_ACCOUNT["metadata"]}, "spec": {**TEAM_ACCOUNT["spec"], "qps": 2}}
    fast = {
        "metadata": {**TEAM_ACCOUNT["metadata"], "name": "fast", "uid": "uid-fast"},
        "spec": {"credentials": {"secretRef": {"name": "same-key"}}},
    }
    controller.intake.observe_account(slow, "CamsAccount")
    controller.intake.observe_account(fast, "CamsAccount")
    for i in range(10):
        account = "team" if i % 2 else "fast"
        ref = {"kind": "CamsAccount", "name": account}
        controller.intake.observe(pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}", accountRef=ref))
    await settle(controller, lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(10)))
    times = {u.phone_number: t for (u, _), t in zip(cams.calls, cams.call_times, strict=True)}
    slow_times = sorted(times[f"861380000{i:04d}"] for i in range(1, 10, 2))
    fast_times = sorted(times[f"861380000{i:04d}"] for i in range(0, 10, 2))
    assert fast_times[-1] - fast_times[0] < 0.5, "the other account's objects went at the lane's pace"
    # A burst of 2, then one every 0.5 s: 5 calls over 1.5 s.
    assert 1.4 <= slow_times[-1] - slow_times[0] <= 2.0, slow_times


async def test_two_cluster_accounts_on_one_secret_pace_the_lane_at_the_smaller_qps_whichever_came_last(
    kube: FakeKube,
) -> None:
    kube.secrets[("default", "shared")] = {"accessKeyId": "LTAI-shared", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(qps=50.0), cams=cams, kube=kube)
    for name, qps in (("slow", 2), ("fast", 40)):  # the fast one changed last
        controller.intake.observe_account(
            {
                "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
                "spec": {
                    "credentials": {"secretRef": {"name": "shared", "namespace": "default"}},
                    "namespaces": ["ns"],
                    "qps": qps,
                },
            },
            "ClusterCamsAccount",
        )
    for i in range(10):
        ref = {"kind": "ClusterCamsAccount", "name": "slow" if i % 2 else "fast"}
        controller.intake.observe(pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}", accountRef=ref))
    await settle(controller, lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(10)))
    span = max(cams.call_times) - min(cams.call_times)
    assert span >= 9 / 2 - 1.5, f"10 calls in {span:.1f} s: the smaller quota (2/s) paces the lane"


async def test_two_keys_of_one_alibaba_account_share_one_lane(kube: FakeKube) -> None:
    """CAMS counts its quota per Alibaba Cloud account: two AccessKeys of one account are paced together."""
    kube.secrets[("ns", "key-1")] = {"accessKeyId": "LTAI-one", "accessKeySecret": "S1"}
    kube.secrets[("ns", "key-2")] = {"accessKeyId": "LTAI-two", "accessKeySecret": "S2"}
    cams = FakeCams()
    cams.account_of.update({"LTAI-one": "1234", "LTAI-two": "1234"})
    controller = make_controller(settings=make_settings(qps=2.0, burst=1), cams=cams, kube=kube)
    for i in range(10):
        secret = {"name": f"key-{1 + i % 2}"}
        controller.intake.observe(
            pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}", credentialsSecretRef=secret)
        )
    await settle(controller, lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(10)))
    span = max(cams.call_times) - min(cams.call_times)
    assert span >= 9 / 2 - 0.5, f"10 calls in {span:.1f} s: one lane at 2/s, not two"


def _applied_by_0_1_0(spec: PhoneWebhookSpec) -> PhoneWebhookStatus:
    """The status 0.1.0 wrote once CAMS accepted `spec` with the operator's own AccessKey."""
    return PhoneWebhookStatus.model_validate(
        {
            "observedGeneration": 1,
            "appliedFingerprint": fingerprint(webhook_update(spec), account="ak:LTAI-operator"),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Applied",
                    "message": "applied",
                    "lastTransitionTime": "2026-11-27T10:00:00Z",
                    "observedGeneration": 1,
                },
            ],
        }
    )


async def test_an_object_applied_with_the_implicit_identity_stays_in_sync_through_the_default_account(
    kube: FakeKube,
) -> None:
    """Upgrading from 0.1.0: the digest that release wrote (spec, and the operator's AccessKey ID as the
    account) is what the default ClusterCamsAccount with operatorIdentity yields: no call, only a claim."""
    spec = PhoneWebhookSpec.model_validate({"custSpaceId": "space", "phoneNumber": "8613800001234"})
    written_by_0_1_0 = _applied_by_0_1_0(spec)
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(status=written_by_0_1_0))
    await settle(controller, lambda: bool(kube.records))
    assert cams.calls == []
    assert [record.holder for record in kube.records.values()] == ["ns/pwh"]


async def test_a_url_with_a_password_stored_by_0_1_0_stays_applied_with_one_warning_per_generation(
    kube: FakeKube,
) -> None:
    """0.1.0 allowed user:password@ in a literal URL; the API server now refuses new ones only. Such an
    object stays in sync without a call, and says once how to move the URL into a Secret."""
    url = "https://hook:s3cret@example.com/in"
    spec = PhoneWebhookSpec.model_validate(
        {"custSpaceId": "space", "phoneNumber": "8613800001234", "upCallbackUrl": url}
    )
    applied = _applied_by_0_1_0(spec)
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(status=applied, upCallbackUrl=url))
    await settle(controller, lambda: bool(kube.events))
    controller.intake.observe(pwh_body(status=applied, upCallbackUrl=url, annotations={"note": "re-checked"}))
    await controller.reconcile(("ns", "pwh"))
    assert cams.calls == []
    assert [(type_, reason) for type_, reason, _ in kube.events] == [("Warning", "CredentialsInUrl")]
    assert "upCallbackUrlFrom.secretKeyRef" in kube.events[0][2]
    assert "s3cret" not in kube.events[0][2]
    controller.intake.observe(pwh_body(generation=2, status=applied, upCallbackUrl=url, httpFlag=True))
    await settle(controller, lambda: len(cams.calls) == 1)
    warned = [reason for _, reason, _ in kube.events if reason == "CredentialsInUrl"]
    assert warned == ["CredentialsInUrl"] * 2, "once more for the new generation, which is applied"


async def test_an_observer_whose_read_is_refused_says_so_and_waits_like_a_refused_update(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    cams.query_codes = ["Ram.PermissionDeny"]
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(managementMode="Observe"))
    await settle(controller, lambda: _reason(kube, "pwh") == "PermissionDenied")
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
    await _until(lambda: ready_reason(kube) == "Observed")
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert len(cams.queries) == 2
    assert [reason for _, reason, _ in kube.events] == ["PermissionDenied"], "one Event for the refusal"


async def test_a_read_refused_for_its_rrsa_token_is_renewed_and_read_again_at_once(kube: FakeKube) -> None:
    cams = FakeCams()
    cams.query_codes = ["InvalidSecurityToken.Expired"]
    settings = OperatorSettings(qps=1000.0)  # no AccessKey of its own: the operator's identity is RRSA
    controller = make_controller(settings=settings, cams=cams, kube=kube, rrsa=FakeRrsa())
    controller.intake.observe(pwh_body(managementMode="Observe"))
    await settle(controller, lambda: ready_reason(kube) == "Observed")
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
    assert _reason(kube, "pwh") == "NoAccount"
    assert kube.patches <= 2


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


CLEAR_SPEC: dict[str, Any] = {
    "deletionPolicy": "Clear",
    "accountRef": {"kind": "CamsAccount", "name": "team"},
}


async def _applied_clear_object(kube: FakeKube, cams: FakeCams) -> Controller:
    """A Clear object applied with the team's CamsAccount."""
    kube.secrets[("ns", "team-key")] = {"accessKeyId": "LTAI-team", "accessKeySecret": "S"}
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe_account(TEAM_ACCOUNT, "CamsAccount")
    controller.intake.observe(pwh_body(**CLEAR_SPEC))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    return controller


async def test_a_namespace_deleted_with_its_secret_and_account_first_still_clears_cams(
    kube: FakeKube,
) -> None:
    """Deleting a namespace deletes its Secrets, accounts and PhoneWebhooks in no set order: a Clear object
    clears its webhook with the credentials it was using, and its deletion completes."""
    cams = FakeCams()
    controller = await _applied_clear_object(kube, cams)
    controller.intake.namespace_changed("ns", {}, terminating=True)  # the namespace is being deleted:
    del kube.secrets[("ns", "team-key")]  # its deletion removes the Secret ...
    controller.intake.forget_account("CamsAccount", "ns", "team")  # ... and the account ...
    await settle(controller, lambda: True, limit=120)  # (the refresh sees the Secret gone)
    controller.intake.observe(  # ... and marks the PhoneWebhook deleted
        pwh_body(status=kube.statuses["pwh"], finalizers=[FINALIZER], deleting=True, **CLEAR_SPEC)
    )
    await settle(controller, lambda: kube.finalizers.get("pwh") == [])
    assert [credentials.access_key_id for _, credentials in cams.calls] == ["LTAI-team", "LTAI-team"]
    assert ("Normal", "Cleared") in [(t, r) for t, r, _ in kube.events]


async def test_a_clear_object_whose_account_was_revoked_makes_no_call_when_deleted(kube: FakeKube) -> None:
    """Outside a namespace's deletion a refused object makes no call, not even to clear: the platform
    revoked the account, and the credentials it used are no longer the object's to use."""
    cams = FakeCams()
    controller = await _applied_clear_object(kube, cams)
    revoked = {**TEAM_ACCOUNT, "spec": {**TEAM_ACCOUNT["spec"], "spaces": ["another-space"]}}
    controller.intake.observe_account(
        {**revoked, "metadata": {**TEAM_ACCOUNT["metadata"], "generation": 2}}, "CamsAccount"
    )
    controller.intake.observe(
        pwh_body(status=kube.statuses["pwh"], finalizers=[FINALIZER], deleting=True, **CLEAR_SPEC)
    )
    await settle(controller, lambda: _reason(kube, "pwh") == "SpaceNotAllowed")
    assert len(cams.calls) == 1, "applied once, never cleared"
    assert kube.finalizers.get("pwh") != [], "kept until CAMS is cleared or the release annotation says so"
    assert "release-without-clearing" in kube.statuses["pwh"].conditions[2].message


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
    controller = make_controller(settings=settings, cams=cams, kube=kube, rrsa=rrsa)
    for i in range(40):
        controller.intake.observe(pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}"))
    running = asyncio.create_task(controller.run())
    try:
        await asyncio.sleep(600)  # ten minutes of STS down
        assert exchanges <= 600 / 30 + 10, f"{exchanges} exchanges: one per retry step, not one per object"
        assert cams.calls == []
        sts_up = True
        back = loop.time()
        await _until(lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(40)))
        assert loop.time() - back <= 30 + 5, "within one retry step of STS's return"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await rrsa.aclose()


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


URL_TOKEN = "tok-9f8e7d6c5b4a"


async def test_a_url_from_a_secret_is_applied_and_its_rotation_reaches_cams_within_the_refresh(
    kube: FakeKube,
) -> None:
    kube.secrets[("ns", "hooks")] = {"inbound": f"https://hooks.example/in?token={URL_TOKEN}-1"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(secret_refresh_seconds=30), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(upCallbackUrlFrom={"secretKeyRef": {"name": "hooks", "key": "inbound"}})
    )
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [update.up_callback_url for update, _ in cams.calls] == [
        f"https://hooks.example/in?token={URL_TOKEN}-1"
    ]
    first = kube.statuses["pwh"].applied_fingerprint
    kube.secrets[("ns", "hooks")] = {"inbound": f"https://hooks.example/in?token={URL_TOKEN}-2"}
    rotated = asyncio.get_running_loop().time()
    await settle(controller, lambda: len(cams.calls) == 2)
    assert cams.calls[1][0].up_callback_url == f"https://hooks.example/in?token={URL_TOKEN}-2"
    assert cams.call_times[1] - rotated <= 30, "the next refresh of the Secret applies the new URL"
    await settle(controller, lambda: kube.statuses["pwh"].applied_fingerprint != first)
    status = kube.statuses["pwh"]
    assert status.applied_fingerprint == fingerprint(cams.calls[1][0], account="ak:LTAI-operator")
    assert URL_TOKEN not in status.model_dump_json() + json.dumps(kube.events)


async def test_a_missing_url_secret_or_key_stalls_without_a_call_and_says_which(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(statusCallbackUrlFrom={"secretKeyRef": {"name": "hooks", "key": "status"}})
    )
    await settle(controller, lambda: "pwh" in kube.statuses)
    stalled = next(c for c in kube.statuses["pwh"].conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "CallbackUrlSecretNotFound")
    assert "ns/hooks" in stalled.message
    kube.secrets[("ns", "hooks")] = {"other": "x"}
    await settle(controller, lambda: "CallbackUrlKeyNotFound" in str(kube.statuses["pwh"].conditions))
    kube.secrets[("ns", "hooks")] = {"status": f"ftp://hooks.example/s?token={URL_TOKEN}"}
    await settle(controller, lambda: "InvalidCallbackUrl" in str(kube.statuses["pwh"].conditions))
    assert cams.calls == []
    assert URL_TOKEN not in kube.statuses["pwh"].model_dump_json() + json.dumps(kube.events)
    kube.secrets[("ns", "hooks")] = {"status": f"https://hooks.example/s?token={URL_TOKEN}"}
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [update.status_callback_url for update, _ in cams.calls] == [
        f"https://hooks.example/s?token={URL_TOKEN}"
    ]


def test_a_change_to_one_account_re_decides_only_the_objects_that_name_it() -> None:
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=FakeKube())
    team = {"kind": "CamsAccount", "name": "team"}
    controller.intake.observe(pwh_body(name="names-team", phoneNumber="8613800000001", accountRef=team))
    controller.intake.observe(
        pwh_body(name="own-secret", phoneNumber="8613800000002", credentialsSecretRef={"name": "s"})
    )
    controller.intake.observe(pwh_body(name="names-none", phoneNumber="8613800000003"))
    queue = controller._queue
    while len(queue):
        queue._queued.popitem()  # as if every object had been decided
    controller.intake.observe_account(TEAM_ACCOUNT, "CamsAccount")
    assert set(queue._queued) == {("ns", "names-team")}
    while len(queue):
        queue._queued.popitem()
    controller.intake.observe_account(DEFAULT_ACCOUNT, "ClusterCamsAccount")  # the default: those naming none
    assert set(queue._queued) == {("ns", "names-none")}


async def test_objects_applied_account_by_account_are_decided_by_turns_of_their_credentials(
    kube: FakeKube,
) -> None:
    """A GitOps tool applies sorted files: three accounts' objects, one account after the other, in one
    namespace. The last account's first object is decided (its claim written, its call queued) third, not
    after every object of the two accounts before it."""
    for account in range(3):
        kube.secrets[("ns", f"acct-{account}")] = {
            "accessKeyId": f"LTAI-{account}",
            "accessKeySecret": f"secret-{account}",
        }
    controller = make_controller(settings=make_settings(workers=1), cams=FakeCams(), kube=kube)
    for account in range(3):
        for i in range(4):
            controller.intake.observe(
                pwh_body(
                    f"a{account}-{i}",
                    credentialsSecretRef={"name": f"acct-{account}"},
                    phoneNumber=f"86138000{account}{i:04d}",
                )
            )
    await settle(controller, lambda: len(kube.records) == 12)
    holders = [record.holder.removeprefix("ns/") for record in kube.records.values()]
    assert holders[:6] == ["a0-0", "a1-0", "a2-0", "a0-1", "a1-1", "a2-1"]


async def test_an_object_whose_status_write_finds_it_deleted_is_forgotten(
    kube: FakeKube,
) -> None:
    """A deletion no watch event reported (kopf listed again after it): the 404 of the status write is the
    news: the object is forgotten (its claim released, as for a DELETED event)."""
    deleted: set[str] = set()
    patch = kube.patch_status

    async def patch_unless_deleted(ref: ObjectRef, status: PhoneWebhookStatus) -> bool:
        return False if ref.name in deleted else await patch(ref, status)

    kube.patch_status = patch_unless_deleted  # type: ignore[method-assign]
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body("first"))
    await settle(controller, lambda: ready_reason(kube, "first") == "Applied")
    deleted.add("first")
    controller.intake.observe(pwh_body("first", generation=2, statusCallbackUrl="https://changed"))
    await settle(controller, lambda: ("ns", "first") not in controller.intake.known(), limit=60)
    assert ("ns", "first") not in controller.intake.known()


async def test_an_object_stalled_on_its_url_secret_claims_nothing_until_it_can_be_applied(
    kube: FakeKube,
) -> None:
    """Taking a claim is an act of the plan: an object stalled before any call (its URL Secret is missing)
    holds no number, and one that can be applied takes it before its call."""
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(
        pwh_body(statusCallbackUrlFrom={"secretKeyRef": {"name": "hooks", "key": "status"}})
    )
    await settle(controller, lambda: "pwh" in kube.statuses)
    assert ready_reason(kube) != "Applied"
    assert kube.records == {}, "a stalled object claims no number"
    kube.secrets[("ns", "hooks")] = {"status": "https://hooks.example/s"}
    controller.intake.secret_changed("ns", "hooks", "2")
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    assert [record.holder for record in kube.records.values()] == ["ns/pwh"]


async def test_a_claim_whose_holder_went_while_no_replica_led_is_released_when_acting_begins(
    kube: FakeKube,
) -> None:
    """A claim held by an object deleted while no replica led is let go when a replica starts to act, so
    that the number is free for another object after the grace period (and no sooner)."""
    kube.records[("s", "8613800001234")] = ClaimRecord("ns/gone", None, "1")
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(name="newcomer", phoneNumber="8613800001234", custSpaceId="s"))
    started = asyncio.get_running_loop().time()
    await settle(controller, lambda: ready_reason(kube, "newcomer") == "Applied")
    assert cams.call_times[0] - started >= 300, "the released claim waited out its grace period"
    assert kube.records[("s", "8613800001234")].holder == "ns/newcomer"
