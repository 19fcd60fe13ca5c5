"""The controller on fakes: pausing, reconcile requests, finalizers and deletion with deletionPolicy Clear."""

from __future__ import annotations

from typing import Any

import pytest

from cams_webhook_operator.engine.controller import Controller
from tests.unit.fakes import (
    PAUSED,
    TEAM_ACCOUNT,
    FakeCams,
    FakeKube,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    reason_of,
    settle,
)

pytestmark = pytest.mark.looptime


async def test_a_paused_object_makes_no_call_until_unpaused(kube: FakeKube) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(annotations=PAUSED))
    await settle(controller, lambda: "pwh" in kube.statuses)
    ready, reconciling = kube.statuses["pwh"].conditions[:2]
    assert (ready.status, ready.reason) == ("False", "Paused")
    assert "not applied" in ready.message
    assert (reconciling.status, reconciling.reason) == ("True", "Paused"), "InProgress, not Current"
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


async def test_a_clear_that_cams_accepts_but_does_not_take_keeps_the_object_and_says_what_to_do(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    cams.empty_means_not_given = True
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    body: dict[str, Any] = {"deletionPolicy": "Clear", "statusCallbackUrl": "https://a.example/s?token=t0k"}
    controller.intake.observe(pwh_body(**body))
    await settle(controller, lambda: ready_reason(kube) == "Applied")
    deleting = pwh_body(status=kube.statuses["pwh"], finalizers=[FINALIZER], deleting=True, **body)
    controller.intake.observe(deleting)
    await settle(controller, lambda: kube.statuses["pwh"].conditions[2].reason == "ClearNotApplied")
    stalled = kube.statuses["pwh"].conditions[2]
    assert "still holds StatusCallbackUrl https://a.example/redacted?redacted" in stalled.message
    assert "t0k" not in stalled.message
    assert "camswebhook.io/release-without-clearing=true" in stalled.message
    assert kube.finalizers["pwh"] == [FINALIZER], "not Cleared: the finalizer stays"
    assert ("Warning", "ClearNotApplied") in [(t, r) for t, r, _ in kube.events]
    assert ("Normal", "Cleared") not in [(t, r) for t, r, _ in kube.events]
    assert len(cams.queries) >= 1, "the clear was read back"


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
    await settle(controller, lambda: reason_of(kube, "pwh") == "SpaceNotAllowed")
    assert len(cams.calls) == 1, "applied once, never cleared"
    assert kube.finalizers.get("pwh") != [], "kept until CAMS is cleared or the release annotation says so"
    assert "release-without-clearing" in kube.statuses["pwh"].conditions[2].message
