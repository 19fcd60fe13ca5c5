"""The controller on fakes: an object applied once, retried, refused, its Secrets read and re-read, and what
it costs the event loop and the metrics."""

from __future__ import annotations

import asyncio
import json

import pytest

from cams_webhook_operator.api import PhoneWebhookStatus
from cams_webhook_operator.api.refs import ObjectRef
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import WebhookUpdate
from cams_webhook_operator.cams.outcomes import Outcome
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import SecretData
from tests.unit.fakes import (
    PAUSED,
    SECRET_VALUE,
    TOKEN_VALUE,
    FakeCams,
    FakeKube,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    settle,
)

pytestmark = pytest.mark.looptime


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


async def test_objects_arriving_together_read_their_secret_once(kube: FakeKube) -> None:
    """An account's objects arrive together (a GitOps tool applies its directory): each used to read their
    Secret while the first read was still out: 38 to 126 reads of 9 Secrets as 1,000 objects arrived."""
    kube.secrets[("ns", "c")] = {"accessKeyId": "A", "accessKeySecret": "S"}
    read = kube.read_secret

    async def slow_read(namespace: str, name: str) -> SecretData | None:
        await asyncio.sleep(0.05)  # an API server busy with the objects' creation
        return await read(namespace, name)

    kube.read_secret = slow_read  # type: ignore[method-assign]
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    for i in range(20):
        controller.intake.observe(
            pwh_body(name=f"o{i}", phoneNumber=f"861380000{i:04d}", credentialsSecretRef={"name": "c"})
        )
    await settle(controller, lambda: all(ready_reason(kube, f"o{i}") == "Applied" for i in range(20)))
    assert kube.secret_reads == 1
    assert len(cams.calls) == 20


async def test_no_credentials_anywhere_stalls_with_what_to_configure(kube: FakeKube) -> None:
    settings = OperatorSettings(qps=1000.0)
    controller = make_controller(settings=settings, cams=FakeCams(), kube=kube)
    controller.intake.observe(pwh_body())
    await settle(controller, lambda: "pwh" in kube.statuses)
    ready = kube.statuses["pwh"].conditions[0]
    assert ready.reason == "NoCredentials"
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in ready.message


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
