"""deletionPolicy Clear on the real API server: CAMS cleared before the object goes, a person's way out when
it cannot be, a Secret deleted first, and a whole namespace deleted in no set order."""

from __future__ import annotations

import time
from typing import Any

from .harness import wait_for
from .manifests import cams_account, key_secret
from .system import OPERATOR_SECRET, System

CLEARED = {"StatusCallbackUrl": "", "UpCallbackUrl": "", "HttpFlag": "N", "QueueFlag": "N"}


def test_deletion_policy_clear_clears_cams_and_can_be_released(system: System) -> None:
    number = "8613800009999"
    system.apply(
        "clear",
        phoneNumber=number,
        deletionPolicy="Clear",
        upCallbackUrl="https://h.example/up",
        httpFlag=True,
    )
    system.wait_condition("clear", "Ready")
    assert system.get("clear")["metadata"]["finalizers"] == ["camswebhook.io/clear-webhook"]
    system.delete("clear", "--timeout=30s")
    assert system.held(number) == CLEARED
    assert "Cleared" in system.event_reasons("clear")

    # When CAMS cannot clear, the object stays (and says why) until a person releases it.
    system.apply("stuck", phoneNumber="8613800009998", deletionPolicy="Clear", httpFlag=True)
    system.wait_condition("stuck", "Ready")
    system.simulator.fail(1.0)
    system.delete("stuck", "--wait=false")
    reconciling = system.wait_condition("stuck", "Reconciling", "TransientError")
    assert "before deletion" in reconciling["message"]
    system.kubectl.run(
        "annotate", "pwh", "stuck", "-n", system.namespace, "camswebhook.io/release-without-clearing=true"
    )
    wait_for(lambda: not system.exists("stuck"), what="the released object to go")
    system.simulator.fail(0.0)
    assert system.held("8613800009998")["HttpFlag"] == "Y"


def test_a_clear_that_cams_accepts_but_does_not_take_keeps_the_object_until_a_person_acts(
    system: System,
) -> None:
    """The simulator takes an empty URL as "not given" (nothing documents what CAMS does): the clear is
    answered OK, the read back shows the URL still held, and the object stays, saying so, until released."""
    number = "8613800009997"
    system.apply(
        "kept", phoneNumber=number, deletionPolicy="Clear", statusCallbackUrl="https://kept.example/s"
    )
    system.wait_condition("kept", "Ready", "Applied")
    system.simulator.post("/_simulator/faults", {"emptyMeansNotGiven": True})
    system.delete("kept", "--wait=false")
    stalled = system.wait_condition("kept", "Stalled", "ClearNotApplied")
    assert "still holds StatusCallbackUrl https://kept.example/redacted" in stalled["message"]
    assert "ClearNotApplied" in system.event_reasons("kept")
    assert "Cleared" not in system.event_reasons("kept")
    assert system.held(number)["StatusCallbackUrl"] == "https://kept.example/s"
    system.kubectl.run(
        "annotate", "pwh", "kept", "-n", system.namespace, "camswebhook.io/release-without-clearing=true"
    )
    wait_for(lambda: not system.exists("kept"), what="the released object to go")
    system.simulator.post("/_simulator/faults", {"emptyMeansNotGiven": False})


def test_a_clear_object_whose_secret_went_first_waits_for_it_outside_a_namespace_deletion(
    system: System,
) -> None:
    """A refused object makes no call, not even to clear, unless its namespace is being deleted (then its
    Secret and account go in no set order: the next test). Here the Secret was deleted by someone: the
    object says so and stays; the Secret back, it clears CAMS and goes."""
    number = "8613800003333"
    system.apply_secret("gone-first", accessKeyId="LTAI-e2e", accessKeySecret=OPERATOR_SECRET)
    system.apply(
        "leaving",
        phoneNumber=number,
        deletionPolicy="Clear",
        statusCallbackUrl="https://leaving.example/s",
        credentialsSecretRef={"name": "gone-first"},
    )
    system.wait_condition("leaving", "Ready", "Applied")
    system.kubectl.run("delete", "secret", "gone-first", "-n", system.namespace)
    time.sleep(4)  # beyond CAMS_SECRET_REFRESH_SECONDS (3 s here): the operator has seen it gone
    system.delete("leaving", "--wait=false")
    stalled = system.wait_condition("leaving", "Stalled", "SecretNotFound")
    assert "release-without-clearing" in stalled["message"]
    assert len(system.simulator.calls(number)) == 1, "no call with the credentials it may no longer use"
    system.apply_secret("gone-first", accessKeyId="LTAI-e2e", accessKeySecret=OPERATOR_SECRET)
    wait_for(
        lambda: not system.exists("leaving"), timeout=30, what="the object to go once its Secret is back"
    )
    assert system.held(number)["StatusCallbackUrl"] == ""


# name -> (number, spec): each way an object of the doomed namespace finds its credentials.
_ACCOUNT = {"accountRef": {"kind": "CamsAccount", "name": "team"}}
DOOMED_OBJECTS: dict[str, tuple[str, dict[str, Any]]] = {
    "via-account": ("8613800007001", {**_ACCOUNT, "deletionPolicy": "Clear"}),
    "via-secret": (
        "8613800007002",
        {"credentialsSecretRef": {"name": "team-key"}, "deletionPolicy": "Clear"},
    ),
    "via-default": ("8613800007003", {"deletionPolicy": "Clear"}),
    "retained": ("8613800007004", _ACCOUNT),
}


def test_deleting_a_namespace_with_clear_objects_completes_and_clears_cams(system: System) -> None:
    """kube-controller-manager's namespace controller deletes the Secret, the account and the objects in no
    set order; every Clear object is still cleared and the namespace goes away."""
    doomed = f"{system.namespace}-doomed"
    system.kubectl.run("create", "namespace", doomed)
    # The operator's own namespace (claims, leader Lease) stays; it watches both.
    system.restart_operator(system.namespace, doomed)
    system.kubectl.apply_objects(
        key_secret("team-key", doomed, "LTAI-e2e", OPERATOR_SECRET),
        cams_account("team", doomed, credentials={"secretRef": {"name": "team-key"}}),
    )
    for name, (number, spec) in DOOMED_OBJECTS.items():
        system.apply(
            name, namespace=doomed, phoneNumber=number, statusCallbackUrl=f"https://{name}.example/s", **spec
        )
    for name in DOOMED_OBJECTS:
        system.wait_condition(name, "Ready", "Applied", namespace=doomed)

    deleted = time.monotonic()
    system.kubectl.run("delete", "namespace", doomed, "--wait=false")
    wait_for(
        lambda: not system.kubectl.phone_webhooks(doomed),
        timeout=30,
        what=f"the PhoneWebhooks of {doomed} to be gone",
    )
    objects_gone = time.monotonic() - deleted
    wait_for(
        lambda: not system.kubectl.exists("namespace", doomed),
        timeout=60,
        what=f"namespace {doomed} to be gone",
    )
    print(
        f"\nnamespace deletion: PhoneWebhooks gone after {objects_gone:.1f}s, "
        f"the namespace after {time.monotonic() - deleted:.1f}s"
    )
    # Events cannot be posted in a namespace being deleted; that is no reason for a warning.
    assert "Could not post Event" not in system.operator.output()
    for name, (number, spec) in DOOMED_OBJECTS.items():
        expected = "" if spec.get("deletionPolicy") == "Clear" else f"https://{name}.example/s"
        assert system.held(number)["StatusCallbackUrl"] == expected, name
