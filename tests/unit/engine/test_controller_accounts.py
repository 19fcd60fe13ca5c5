"""The controller on fakes: accounts, their quotas and lanes, and callback URLs read from Secrets."""

from __future__ import annotations

import asyncio
import json

import pytest

from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.decisions.plans import fingerprint, webhook_update
from tests.unit.fakes import (
    DEFAULT_ACCOUNT,
    TEAM_ACCOUNT,
    FakeCams,
    FakeKube,
    make_controller,
    make_settings,
    pwh_body,
    ready_reason,
    settle,
)

pytestmark = pytest.mark.looptime


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
    assert (status.spaces, status.namespaces) == ("space", None)
    assert "S" not in json.dumps(status.model_dump(mode="json")).replace("Secret", "").replace("Stalled", "")


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
