"""A claim only for credentials that work (issue 28, part 2; the security review's findings 2, 4 and 5).

Team A owns the number. Team B, in another namespace, tries to keep it from A: with a made-up key, with a
real key of another Alibaba account, with a leftover object that CAMS once held, or just asks, without any
credentials, whether the number is claimed. Each attempt fails: A's object converges, B's says why it is
refused, and B learns nothing about claims."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cams_webhook_operator.api import PhoneWebhookStatus
from cams_webhook_operator.decisions.plans import fingerprint, webhook_update
from cams_webhook_operator.decisions.state import Snapshot
from tests.unit.fakes import FakeCams, FakeKube, make_controller, make_settings, pwh_body, settle

pytestmark = pytest.mark.looptime

A_KEY = {"accessKeyId": "LTAI-team-a", "accessKeySecret": "a-secret"}
B_KEY = {"accessKeyId": "LTAI-made-up", "accessKeySecret": "anything"}
NUMBER = "8613800001234"


def _object(namespace: str, name: str, created: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = pwh_body(name=name, created=created, **{"credentialsSecretRef": {"name": "key"}, **spec})
    body["metadata"].update(namespace=namespace, uid=f"uid-{namespace}-{name}")
    return body


def _team_a(**spec: Any) -> dict[str, Any]:
    return _object("team-a", "a-line", "2026-11-27T10:05:00Z", spec)


def _team_b(**spec: Any) -> dict[str, Any]:
    """Team B's object is the older one: under a rule of first come, it would win."""
    return _object("team-b", "squat", "2026-11-27T10:00:00Z", spec)


def _condition(kube: FakeKube, name: str, kind: str) -> tuple[str, str, str]:
    status = kube.statuses.get(name)
    found = next((c for c in status.conditions if c.type == kind), None) if status else None
    return (found.status, found.reason, found.message) if found else ("", "", "")


def ready_reason(kube: FakeKube, name: str) -> bool:
    return _condition(kube, name, "Ready")[0] == "True"


def _stalled(kube: FakeKube, name: str) -> str | None:
    status, reason, _ = _condition(kube, name, "Stalled")
    return reason if status == "True" else None


@pytest.fixture
def kube() -> FakeKube:
    kube = FakeKube()
    kube.secrets[("team-a", "key")] = A_KEY
    kube.secrets[("team-b", "key")] = B_KEY
    return kube


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("InvalidAccessKeyId.NotFound", "InvalidCredentials"),  # a made-up key
        ("SignatureDoesNotMatch", "InvalidCredentials"),  # a real key ID with a made-up secret
        ("Unknown.ResourceOwnerId", "ResourceNotOwned"),  # a real key of another Alibaba account
    ],
    ids=["made-up-key", "known-key-id-wrong-secret", "another-accounts-key"],
)
async def test_a_squatter_whose_key_does_not_reach_the_space_never_holds_the_number(
    kube: FakeKube, code: str, reason: str
) -> None:
    cams = FakeCams()
    cams.refused_keys["LTAI-made-up"] = code
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(_team_b(statusCallbackUrl="https://attacker.example/s"))  # first, and older
    await settle(controller, lambda: "squat" in kube.statuses)
    controller.intake.observe(_team_a(statusCallbackUrl="https://a.example/s"))
    await settle(controller, lambda: ready_reason(kube, "a-line"))

    assert [(u.status_callback_url, c.access_key_id) for u, c in cams.calls] == [
        ("https://a.example/s", "LTAI-team-a")
    ], "the squatter's key never got as far as an update"
    assert [r.holder for r in kube.records.values()] == ["team-a/a-line"]
    stalled = _condition(kube, "squat", "Stalled")
    assert stalled[:2] == ("True", reason)
    assert "space space" in stalled[2]
    assert "team-a" not in stalled[2]


async def test_an_owner_whose_key_is_refused_later_lets_go_of_the_number_at_once(kube: FakeKube) -> None:
    """The key proved itself, claimed, then CAMS refused it (revoked): the claim is deleted, not
    released, so the object waiting for the number does not wait out a grace period."""
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    kube.secrets[("team-b", "key")] = {"accessKeyId": "LTAI-team-b", "accessKeySecret": "b-secret"}
    controller.intake.observe(_team_b(statusCallbackUrl="https://b.example/s"))
    await settle(controller, lambda: ready_reason(kube, "squat"))
    controller.intake.observe(_team_a(statusCallbackUrl="https://a.example/s"))
    await settle(controller, lambda: _stalled(kube, "a-line") == "Conflict")

    cams.refused_keys["LTAI-team-b"] = "Ram.PermissionDeny"
    controller.intake.observe(
        _team_b(generation=2, status=kube.statuses["squat"], statusCallbackUrl="https://b2")
    )
    refused_at = asyncio.get_running_loop().time()
    await settle(controller, lambda: ready_reason(kube, "a-line"))
    assert cams.call_times[-1] - refused_at < 60, "no grace period for a number its holder may not have"
    assert [r.holder for r in kube.records.values()] == ["team-a/a-line"]
    assert _stalled(kube, "squat") == "PermissionDenied"


def _applied_status(body: dict[str, Any]) -> dict[str, Any]:
    """The status of an object that CAMS holds the spec of (as 0.1.0 wrote it, before claims existed)."""
    spec = Snapshot.of(body).spec
    assert spec is not None
    applied = fingerprint(webhook_update(spec), account="ak:LTAI-team-b")
    return PhoneWebhookStatus(observed_generation=1, applied_fingerprint=applied).model_dump(
        mode="json", by_alias=True
    )


async def test_a_refused_leftover_that_cams_held_does_not_keep_the_number_when_no_claim_exists(
    kube: FakeKube,
) -> None:
    """No Lease yet (after the 0.1.0 upgrade, or an admin deleted it): the rule 'the object CAMS already
    holds keeps the number' counts only objects that nothing refuses."""
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    leftover = _team_b(accountRef={"kind": "CamsAccount", "name": "gone"}, credentialsSecretRef=None)
    controller.intake.observe({**leftover, "status": _applied_status(leftover)})
    await settle(controller, lambda: _stalled(kube, "squat") == "AccountNotFound")
    controller.intake.observe(_team_a(statusCallbackUrl="https://a.example/s"))
    await settle(controller, lambda: ready_reason(kube, "a-line"))
    assert [c.access_key_id for _, c in cams.calls] == ["LTAI-team-a"]


@pytest.mark.parametrize("claimed", [True, False], ids=["number-claimed", "number-free"])
async def test_a_tenant_without_credentials_cannot_tell_whether_a_number_is_claimed(
    kube: FakeKube, claimed: bool
) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    if claimed:
        controller.intake.observe(_team_a(statusCallbackUrl="https://a.example/s"))
        await settle(controller, lambda: ready_reason(kube, "a-line"))
    del kube.secrets[("team-b", "key")]
    controller.intake.observe(_team_b())
    await settle(controller, lambda: "squat" in kube.statuses)
    assert _condition(kube, "squat", "Stalled") == (
        "True",
        "SecretNotFound",
        "Secret team-b/key named in spec.credentialsSecretRef was not found; create it with the keys "
        "accessKeyId and accessKeySecret (and securityToken for STS)",
    )


async def test_a_number_held_by_a_released_claim_is_described_as_reserved_until_a_time(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    kube.secrets[("team-b", "key")] = {"accessKeyId": "LTAI-team-b", "accessKeySecret": "b-secret"}
    controller.intake.observe(_team_b())
    await settle(controller, lambda: ready_reason(kube, "squat"))
    controller.intake.forget("team-b", "squat")
    controller.intake.observe(_team_a())
    await settle(controller, lambda: _stalled(kube, "a-line") == "Conflict")
    message = _condition(kube, "a-line", "Stalled")[2]
    assert "is reserved for a deleted PhoneWebhook of another namespace" in message
    assert "already manages" not in message
    assert "takes the number at 2026-11-28 00:05:" in message  # deleted at about 00:00 + the 300 s grace
