"""The operator as users run it (its console script) against the real API server and the simulator: one
object's life (applied, changed, deleted), refusals, restarts, the annotations, and Events that count
repeats."""

from __future__ import annotations

import json
import time
from typing import Any

from .harness import wait_for
from .system import DENIED_SECRET, OPERATOR_ENV, STS_SECRET, STS_TOKEN, System

NUMBER = "8613800001234"
SPEC: dict[str, Any] = {
    "phoneNumber": NUMBER,
    "statusCallbackUrl": "https://hooks.example.com/status",
    "upCallbackUrl": "https://hooks.example.com/inbound",
    "httpFlag": True,
    "queueFlag": False,
}


def test_create_update_and_delete(system: System) -> None:
    system.apply("support", **SPEC)
    _created_is_applied_once_and_shown(system)

    system.apply("support", **{**SPEC, "statusCallbackUrl": "https://hooks.example.com/v2/status"})
    system.wait_generation("support", 2)
    obj = system.get("support")
    assert obj["metadata"]["generation"] == obj["status"]["observedGeneration"] == 2
    # The operator keeps its state in status only: kopf writes no annotation and holds no finalizer.
    assert not obj["metadata"].get("annotations", {}).keys() - {
        "kubectl.kubernetes.io/last-applied-configuration"
    }
    assert not obj["metadata"].get("finalizers")
    assert system.condition("support", "Ready")["status"] == "True"  # type: ignore[index]
    assert len(system.simulator.calls(NUMBER)) == 2
    assert system.held(NUMBER)["StatusCallbackUrl"] == "https://hooks.example.com/v2/status"

    deleted = system.kubectl.run("delete", "phonewebhook", "support", "-n", system.namespace, "--timeout=30s")
    assert "deleted" in deleted.stdout
    assert not system.exists("support")
    # deletionPolicy Retain (the default): CAMS keeps the webhook.
    assert system.held(NUMBER)["HttpFlag"] == "Y"


def _created_is_applied_once_and_shown(system: System) -> None:
    """Ready Applied with CAMS's answer in status, one call, the row of `kubectl get`, the Event, the
    metrics."""
    ready = system.wait_condition("support", "Ready")
    assert ready["reason"] == "Applied"
    status = system.get("support")["status"]
    assert (status["code"], status["observedGeneration"]) == ("OK", 1)
    assert status["requestId"]
    assert len(system.simulator.calls(NUMBER)) == 1
    assert system.held(NUMBER) == {
        "StatusCallbackUrl": "https://hooks.example.com/status",
        "UpCallbackUrl": "https://hooks.example.com/inbound",
        "HttpFlag": "Y",
        "QueueFlag": "N",
    }
    row = system.kubectl.run("get", "phonewebhooks", "-n", system.namespace).stdout.splitlines()[1].split()
    assert row[:5] == ["support", NUMBER, "Manage", "True", "Applied"]
    assert "Applied" in system.event_reasons("support")
    calls_ok = system.operator.metric(
        "cams_webhook_operator_cams_calls_total", action="UpdatePhoneWebhook", code="OK"
    )
    assert calls_ok == 1
    assert system.operator.metric("cams_webhook_operator_objects", condition="Ready") == 1


def test_missing_secret_stalls_and_creating_it_makes_the_object_ready(system: System) -> None:
    system.apply(
        "sts",
        custSpaceId="space-sts",
        phoneNumber="6591234567",
        upCallbackUrl="https://h.example/in",
        credentialsSecretRef={"name": "cams-sts"},
    )
    stalled = system.wait_condition("sts", "Stalled", "SecretNotFound")
    assert f"Secret {system.namespace}/cams-sts" in stalled["message"]
    assert system.condition("sts", "Ready")["status"] == "False"  # type: ignore[index]
    assert system.simulator.calls("6591234567") == []
    before = system.get("sts")["metadata"]

    system.apply_secret(
        "cams-sts", accessKeyId="STS.e2e", accessKeySecret=STS_SECRET, securityToken=STS_TOKEN
    )
    system.wait_condition("sts", "Ready")
    after = system.get("sts")
    assert after["metadata"]["generation"] == before["generation"]
    assert after["metadata"].get("annotations") == before.get("annotations"), (
        "the PhoneWebhook was not touched"
    )
    calls = system.simulator.calls("6591234567")
    assert [(c["accessKeyId"], c["code"]) for c in calls] == [("STS.e2e", "OK")]
    shown = json.dumps(after) + json.dumps(system.events("sts"))
    assert STS_SECRET not in shown
    assert STS_TOKEN not in shown


def test_permission_denied_stalls_without_a_retry_storm(system: System) -> None:
    system.apply_secret("denied", accessKeyId="LTAI-denied", accessKeySecret=DENIED_SECRET)
    system.apply(
        "denied",
        custSpaceId="space-denied",
        phoneNumber="4915112345678",
        credentialsSecretRef={"name": "denied"},
    )
    # The key may do nothing in CAMS: refused when the operator checks it on the space, before it may
    # claim the number, so with no update call at all; CAMS's answer is shown as an update's would be.
    stalled = system.wait_condition("denied", "Stalled", "PermissionDenied")
    assert "Ram.PermissionDeny" in stalled["message"]
    assert "cams:QueryChatappPhoneNumbers" in stalled["message"], "the message names the action to grant"
    status = system.get("denied")["status"]
    assert status["code"] == "Ram.PermissionDeny"
    assert "cams:QueryChatappPhoneNumbers" in status["accessDeniedDetail"]
    assert "PermissionDenied" in system.event_reasons("denied")
    time.sleep(60)  # a minute in which a retry storm would show
    calls = [
        c["action"] for c in system.simulator.get("/_simulator/calls") if c["accessKeyId"] == "LTAI-denied"
    ]
    # STS told once which account the key is of (reads are paced per account); CAMS was read once.
    assert sorted(calls) == ["GetCallerIdentity", "QueryChatappPhoneNumbers"]
    assert system.simulator.calls("4915112345678") == []


def test_restart_over_in_sync_objects_makes_no_call(system: System) -> None:
    numbers = [f"8613800002{i:03d}" for i in range(5)]
    for i, number in enumerate(numbers):
        system.apply(f"n{i}", phoneNumber=number, statusCallbackUrl=f"https://h.example/{i}")
    for i in range(5):
        system.wait_condition(f"n{i}", "Ready")
    system.restart_operator()
    # A change made after the restart is applied; the operator lists the in-sync objects before it.
    system.apply("n0", phoneNumber=numbers[0], statusCallbackUrl="https://h.example/changed")
    system.wait_generation("n0", 2)
    assert [len(system.simulator.calls(number)) for number in numbers] == [2, 1, 1, 1, 1]


def test_pause_and_reconcile_request_annotations(system: System) -> None:
    number = "8613800008888"
    system.apply(
        "paused",
        annotations={"camswebhook.io/paused": "true"},
        phoneNumber=number,
        upCallbackUrl="https://h.example/up",
    )
    wait_for(lambda: (system.condition("paused", "Ready") or {}).get("reason") == "Paused", what="Paused")
    time.sleep(2)
    assert system.simulator.calls(number) == []

    system.kubectl.run("annotate", "pwh", "paused", "-n", system.namespace, "camswebhook.io/paused-")
    system.wait_condition("paused", "Ready", "Applied")
    assert len(system.simulator.calls(number)) == 1

    system.kubectl.run(
        "annotate", "pwh", "paused", "-n", system.namespace, "camswebhook.io/reconcile-requested-at=now-1"
    )
    wait_for(
        lambda: system.get("paused")["status"].get("lastHandledReconcileAt") == "now-1",
        what="request handled",
    )
    assert len(system.simulator.calls(number)) == 2


def test_a_failure_that_repeats_is_counted_on_one_event(system: System) -> None:
    """client-go's recorder aggregates repeats; so does the operator: one Event per object and reason,
    its count going up, however many retries a long failure makes."""
    system.restart_operator(
        extra_env={**OPERATOR_ENV, "CAMS_RETRY_BASE_SECONDS": "0.2", "CAMS_RETRY_MAX_SECONDS": "0.4"}
    )
    # The key has read the space once (before its first claim there): what fails below are updates.
    system.apply("proves-the-key", phoneNumber="8613800004440", statusCallbackUrl="https://flaky.example/s")
    system.wait_condition("proves-the-key", "Ready", "Applied")
    system.simulator.fail(1.0)
    number = "8613800004444"
    system.apply("flaky", phoneNumber=number, statusCallbackUrl="https://flaky.example/s")
    wait_for(lambda: len(system.simulator.calls(number)) >= 8, timeout=30, what="eight failed calls")
    system.simulator.fail(0.0)
    system.wait_condition("flaky", "Ready", "Applied")
    failures = len(system.simulator.calls(number)) - 1
    events = {event["reason"]: event for event in system.events("flaky")}
    assert len(system.events("flaky")) == 2, "one Event per reason, not one per retry"
    assert events["TransientError"]["count"] == failures
    assert events["TransientError"]["type"] == "Warning"
    assert events["Applied"]["count"] == 1
    _an_account_outage_is_one_event_per_object_and_reason(system)


def _an_account_outage_is_one_event_per_object_and_reason(system: System) -> None:
    """Every call of several objects fails for a while: still one Event per object and reason."""
    numbers = [f"861380000450{i}" for i in range(4)]
    system.simulator.fail(1.0)
    for i, number in enumerate(numbers):
        system.apply(f"outage{i}", phoneNumber=number, statusCallbackUrl="https://outage.example/s")
    wait_for(
        lambda: sum(len(system.simulator.calls(n)) for n in numbers) >= 20, timeout=60, what="20 failed calls"
    )
    time.sleep(5)  # probes go on, one every 2 s
    system.simulator.fail(0.0)
    for i in range(4):
        system.wait_condition(f"outage{i}", "Ready", "Applied", timeout=60)
        reasons = [event["reason"] for event in system.events(f"outage{i}")]
        assert len(reasons) == len(set(reasons)), f"outage{i}: {reasons}"


# failure -> (status.code while it lasts, what the message quotes): each answer that is not the textbook one.
ODD_ANSWERS = {
    "error-in-200": ("ServiceUnavailable", "ServiceUnavailable: The request has failed"),
    "lower-case": ("ServiceUnavailable", "ServiceUnavailable: The request has failed"),
    "gateway-html": (None, "HTTP 502"),
    "truncated": (None, "HTTP 200"),
}


def test_answers_that_are_not_the_textbook_one_are_transient_and_never_taken_for_success(
    system: System,
) -> None:
    """An error in an HTTP 200 body, lower-case field names, a gateway's HTML page, a body cut short: each
    is a TransientError showing what CAMS (or the gateway) said, and the object is applied once they stop."""
    system.apply("proves-the-key", phoneNumber="8613800004450", statusCallbackUrl="https://odd.example/s")
    system.wait_condition("proves-the-key", "Ready", "Applied")  # the space's proof read is behind it
    for i, (failure, (code, quoted)) in enumerate(ODD_ANSWERS.items()):
        system.simulator.fail(1.0, failure)
        name, number = f"odd{i}", f"861380000446{i}"
        system.apply(name, phoneNumber=number, statusCallbackUrl="https://odd.example/s")
        reconciling = system.wait_condition(name, "Reconciling", "TransientError")
        assert quoted in reconciling["message"], (failure, reconciling["message"])
        assert system.get(name)["status"].get("code") == code, failure
        assert system.condition(name, "Ready")["status"] == "False"  # type: ignore[index]
        system.simulator.fail(0.0)
        system.wait_condition(name, "Ready", "Applied")
