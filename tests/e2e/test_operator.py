"""The operator as users run it (its console script) against the real API server and the simulator."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import (
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    simulator_in,
    start_operator,
    wait_for,
)

OPERATOR_SECRET = "e2e-operator-secret-Zq81"
STS_SECRET = "e2e-sts-secret-Pw42"
STS_TOKEN = "e2e-sts-token-Lm07"
DENIED_SECRET = "e2e-denied-secret-Kd55"
URL_TOKEN = "e2e-url-token-Rv63"  # in callback URLs held by Secrets
OPERATOR_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-e2e",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": OPERATOR_SECRET,
    # Shorter than the defaults (60 s, 300 s) so that the scenarios below wait seconds, not minutes.
    "CAMS_SECRET_REFRESH_SECONDS": "3",
    "CAMS_CLAIM_GRACE_SECONDS": "8",
    "CAMS_MIN_DRIFT_INTERVAL_SECONDS": "1",
}
SIMULATOR_CONFIG = {
    "qps": 10,
    "accounts": [
        {
            "accessKeyId": "LTAI-e2e",
            "accessKeySecret": OPERATOR_SECRET,
            "uid": "1",
            "spaces": [{"id": "space-e2e"}],
        },
        {
            "accessKeyId": "STS.e2e",
            "accessKeySecret": STS_SECRET,
            "securityToken": STS_TOKEN,
            "uid": "2",
            "spaces": [{"id": "space-sts"}],
        },
        {
            "accessKeyId": "LTAI-denied",
            "accessKeySecret": DENIED_SECRET,
            "uid": "3",
            "permitted": False,
            "spaces": [{"id": "space-denied"}],
        },
    ],
}


@dataclass
class System:
    kubectl: Kubectl
    namespace: str
    simulator: SimulatorProcess
    operator: OperatorProcess
    tmp: Path

    def restart_operator(self, *namespaces: str, extra_env: dict[str, str] | None = None) -> None:
        """Restart the operator, watching `namespaces` (default: the test's own)."""
        self.operator.stop()
        self.operator = start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=self.simulator.endpoint,
            namespace=list(namespaces or [self.namespace]),
            log=self.tmp / "operator.log",
            extra_env=extra_env or OPERATOR_ENV,
            verbose=True,
        )

    def apply(self, name: str, namespace: str | None = None, **spec: Any) -> None:
        body = {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {"name": name, "namespace": namespace or self.namespace},
            "spec": {"custSpaceId": "space-e2e", **spec},
        }
        self.kubectl.apply(yaml.safe_dump(body))

    def apply_secret(self, name: str, **data: str) -> None:
        self.kubectl.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": self.namespace},
                    "stringData": data,
                }
            )
        )

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.json(
            "get", "phonewebhook", name, "-n", namespace or self.namespace
        )
        return obj

    def condition(self, name: str, kind: str, namespace: str | None = None) -> dict[str, Any] | None:
        conditions = self.get(name, namespace).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == kind), None)

    def wait_condition(
        self,
        name: str,
        kind: str,
        reason: str | None = None,
        timeout: float = 30,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        def holds() -> dict[str, Any] | None:
            condition = self.condition(name, kind, namespace)
            if (
                condition
                and condition["status"] == "True"
                and (reason is None or condition["reason"] == reason)
            ):
                return condition
            return None

        return wait_for(holds, timeout=timeout, what=f"{kind}={reason or 'True'} on {name}")

    def events(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", "events", "-n", self.namespace, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        return items


@pytest.fixture
def system(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[System]:
    simulator = simulator_in(tmp_path, SIMULATOR_CONFIG)
    operator = start_operator(
        kubeconfig=kubectl.kubeconfig,
        endpoint=simulator.endpoint,
        namespace=namespace,
        log=tmp_path / "operator.log",
        extra_env=OPERATOR_ENV,
        verbose=True,  # DEBUG: every watch event and API call is logged, and none may show a secret
    )
    running = System(kubectl, namespace, simulator, operator, tmp_path)
    try:
        yield running
        # Whatever the scenario left behind, /metrics is still served (an InSync condition once broke it).
        running.operator.scrape()
    finally:
        running.operator.stop()
        simulator.stop()
    # Whatever happened, no secret, token or signature may have been logged, plain or as a Secret's
    # data carries it (base64), even at DEBUG.
    log = running.operator.output()
    assert "DEBUG" in log, "the scan is meaningful only at the most verbose level"
    for value in (OPERATOR_SECRET, STS_SECRET, STS_TOKEN, DENIED_SECRET, URL_TOKEN):
        assert value not in log
        assert base64.b64encode(value.encode()).decode() not in log
    assert "Signature=" not in log


def test_create_update_and_delete(system: System) -> None:
    system.apply(
        "support",
        phoneNumber="8613800001234",
        statusCallbackUrl="https://hooks.example.com/status",
        upCallbackUrl="https://hooks.example.com/inbound",
        httpFlag=True,
        queueFlag=False,
    )
    ready = system.wait_condition("support", "Ready")
    assert ready["reason"] == "Applied"
    status = system.get("support")["status"]
    assert (status["code"], status["observedGeneration"]) == ("OK", 1)
    assert status["requestId"]
    assert len(system.simulator.calls("8613800001234")) == 1
    assert system.simulator.webhook("space-e2e", "8613800001234") == {
        "StatusCallbackUrl": "https://hooks.example.com/status",
        "UpCallbackUrl": "https://hooks.example.com/inbound",
        "HttpFlag": "Y",
        "QueueFlag": "N",
    }
    row = system.kubectl.run("get", "phonewebhooks", "-n", system.namespace).stdout.splitlines()[1].split()
    assert row[:4] == ["support", "8613800001234", "True", "OK"]
    assert "Applied" in {event["reason"] for event in system.events("support")}
    calls_ok = system.operator.metric(
        "cams_webhook_operator_cams_calls_total", action="UpdatePhoneWebhook", code="OK"
    )
    assert calls_ok == 1
    assert system.operator.metric("cams_webhook_operator_objects", condition="Ready") == 1

    system.apply(
        "support",
        phoneNumber="8613800001234",
        statusCallbackUrl="https://hooks.example.com/v2/status",
        upCallbackUrl="https://hooks.example.com/inbound",
        httpFlag=True,
        queueFlag=False,
    )
    wait_for(lambda: system.get("support")["status"]["observedGeneration"] == 2, what="generation 2 observed")
    obj = system.get("support")
    assert obj["metadata"]["generation"] == obj["status"]["observedGeneration"] == 2
    # The operator keeps its state in status only: kopf writes no annotation and holds no finalizer.
    assert not obj["metadata"].get("annotations", {}).keys() - {
        "kubectl.kubernetes.io/last-applied-configuration"
    }
    assert not obj["metadata"].get("finalizers")
    assert system.condition("support", "Ready")["status"] == "True"  # type: ignore[index]
    assert len(system.simulator.calls("8613800001234")) == 2
    assert system.simulator.webhook("space-e2e", "8613800001234")["StatusCallbackUrl"] == (  # type: ignore[index]
        "https://hooks.example.com/v2/status"
    )

    deleted = system.kubectl.run("delete", "phonewebhook", "support", "-n", system.namespace, "--timeout=30s")
    assert "deleted" in deleted.stdout
    assert (
        system.kubectl.run("get", "phonewebhook", "support", "-n", system.namespace, check=False).returncode
        != 0
    )
    # deletionPolicy Retain (the default): CAMS keeps the webhook.
    assert system.simulator.webhook("space-e2e", "8613800001234")["HttpFlag"] == "Y"  # type: ignore[index]


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
    assert "PermissionDenied" in {event["reason"] for event in system.events("denied")}
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
    wait_for(lambda: system.get("n0")["status"]["observedGeneration"] == 2, what="the change after restart")
    assert [len(system.simulator.calls(number)) for number in numbers] == [2, 1, 1, 1, 1]


def test_two_objects_for_one_number_the_later_waits_and_takes_over(system: System, kubectl: Kubectl) -> None:
    other = f"{system.namespace}-b"
    kubectl.run("create", "namespace", other)
    system.restart_operator(system.namespace, other)
    system.apply("first", phoneNumber="8613800007777", statusCallbackUrl="https://team-a.example/status")
    system.wait_condition("first", "Ready")
    system.apply(
        "second",
        namespace=other,
        phoneNumber="8613800007777",
        statusCallbackUrl="https://team-b.example/status",
    )
    conflict = system.wait_condition("second", "Stalled", "Conflict", namespace=other)
    assert conflict["message"].startswith(
        "A PhoneWebhook of another namespace already manages the webhook of 8613800007777"
    ), "another team's objects are not named"
    assert len(system.simulator.calls("8613800007777")) == 1
    # The claim is a Lease in the operator's namespace, naming its holder.
    (lease,) = kubectl.json("get", "leases", "-n", system.namespace, "-l", "camswebhook.io/claim=true")[
        "items"
    ]
    assert lease["spec"]["holderIdentity"] == f"{system.namespace}/first"

    # A restart lists both objects in any order; the later one must still not be applied.
    system.restart_operator(system.namespace, other)
    system.apply("first", phoneNumber="8613800007777", statusCallbackUrl="https://team-a.example/v2")
    wait_for(lambda: system.get("first")["status"]["observedGeneration"] == 2, what="first's change")
    assert system.condition("second", "Stalled", namespace=other)["reason"] == "Conflict"  # type: ignore[index]

    # Deleted and created again at once (an Argo CD Replace, a restore): the number stays with it.
    replaced = system.get("first")
    system.kubectl.run("delete", "phonewebhook", "first", "-n", system.namespace)
    system.apply("first", phoneNumber="8613800007777", statusCallbackUrl="https://team-a.example/v2")
    wait_for(lambda: system.get("first")["metadata"]["uid"] != replaced["metadata"]["uid"], what="re-created")
    system.wait_condition("first", "Ready")
    time.sleep(10)  # beyond the grace period (8 s): the re-created owner kept the claim
    assert system.condition("second", "Stalled", namespace=other)["reason"] == "Conflict"  # type: ignore[index]

    # Deleted for good: the waiting object takes over once the grace period is over.
    system.kubectl.run("delete", "phonewebhook", "first", "-n", system.namespace)
    deleted_at = time.monotonic()
    system.wait_condition("second", "Ready", namespace=other)
    assert time.monotonic() - deleted_at >= 8 - 1, "not before the grace period"
    assert system.simulator.webhook("space-e2e", "8613800007777")["StatusCallbackUrl"] == (  # type: ignore[index]
        "https://team-b.example/status"
    )
    assert [c["params"]["StatusCallbackUrl"] for c in system.simulator.calls("8613800007777")] == [
        "https://team-a.example/status",
        "https://team-a.example/v2",
        "https://team-a.example/v2",  # the re-created object, applied once
        "https://team-b.example/status",
    ]


def test_an_older_observer_switched_to_manage_does_not_take_the_number(system: System) -> None:
    system.apply("observer", phoneNumber="8613800006666", managementMode="Observe")
    system.wait_condition("observer", "Ready", "Observed")
    system.apply("owner", phoneNumber="8613800006666", statusCallbackUrl="https://owner.example/status")
    system.wait_condition("owner", "Ready", "Applied")
    system.apply(
        "observer",
        phoneNumber="8613800006666",
        managementMode="Manage",
        statusCallbackUrl="https://observer.example/status",
    )
    conflict = system.wait_condition("observer", "Stalled", "Conflict")
    assert "PhoneWebhook owner already manages" in conflict["message"], "same namespace: named"
    assert [c["params"]["StatusCallbackUrl"] for c in system.simulator.calls("8613800006666")] == [
        "https://owner.example/status"
    ]


def test_pause_and_reconcile_request_annotations(system: System) -> None:
    number = "8613800008888"
    body = {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "PhoneWebhook",
        "metadata": {
            "name": "paused",
            "namespace": system.namespace,
            "annotations": {"camswebhook.io/paused": "true"},
        },
        "spec": {"custSpaceId": "space-e2e", "phoneNumber": number, "upCallbackUrl": "https://h.example/up"},
    }
    system.kubectl.apply(json.dumps(body))
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
    system.kubectl.run("delete", "phonewebhook", "clear", "-n", system.namespace, "--timeout=30s")
    assert system.simulator.webhook("space-e2e", number) == {
        "StatusCallbackUrl": "",
        "UpCallbackUrl": "",
        "HttpFlag": "N",
        "QueueFlag": "N",
    }
    assert "Cleared" in {event["reason"] for event in system.events("clear")}

    # When CAMS cannot clear, the object stays (and says why) until a person releases it.
    system.apply("stuck", phoneNumber="8613800009998", deletionPolicy="Clear", httpFlag=True)
    system.wait_condition("stuck", "Ready")
    system.simulator.post("/_simulator/faults", {"failRate": 1.0})
    system.kubectl.run("delete", "phonewebhook", "stuck", "-n", system.namespace, "--wait=false")
    reconciling = system.wait_condition("stuck", "Reconciling", "TransientError")
    assert "before deletion" in reconciling["message"]
    system.kubectl.run(
        "annotate", "pwh", "stuck", "-n", system.namespace, "camswebhook.io/release-without-clearing=true"
    )
    wait_for(
        lambda: (
            system.kubectl.run("get", "pwh", "stuck", "-n", system.namespace, check=False).returncode != 0
        ),
        what="the released object to go",
    )
    system.simulator.post("/_simulator/faults", {"failRate": 0.0})
    assert system.simulator.webhook("space-e2e", "8613800009998")["HttpFlag"] == "Y"  # type: ignore[index]


def test_a_failure_that_repeats_is_counted_on_one_event(system: System) -> None:
    """client-go's recorder aggregates repeats; so does the operator: one Event per object and reason,
    its count going up, however many retries a long failure makes."""
    system.restart_operator(
        extra_env={**OPERATOR_ENV, "CAMS_RETRY_BASE_SECONDS": "0.2", "CAMS_RETRY_MAX_SECONDS": "0.4"}
    )
    # The key has read the space once (before its first claim there): what fails below are updates.
    system.apply("proves-the-key", phoneNumber="8613800004440", statusCallbackUrl="https://flaky.example/s")
    system.wait_condition("proves-the-key", "Ready", "Applied")
    system.simulator.post("/_simulator/faults", {"failRate": 1.0})
    number = "8613800004444"
    system.apply("flaky", phoneNumber=number, statusCallbackUrl="https://flaky.example/s")
    wait_for(lambda: len(system.simulator.calls(number)) >= 8, timeout=30, what="eight failed calls")
    system.simulator.post("/_simulator/faults", {"failRate": 0.0})
    system.wait_condition("flaky", "Ready", "Applied")
    failures = len(system.simulator.calls(number)) - 1
    events = {event["reason"]: event for event in system.events("flaky")}
    assert len(system.events("flaky")) == 2, "one Event per reason, not one per retry"
    assert events["TransientError"]["count"] == failures
    assert events["TransientError"]["type"] == "Warning"
    assert events["Applied"]["count"] == 1

    # An outage of the account (every call of several objects fails): still one Event per object and
    # reason, however long it lasts.
    numbers = [f"861380000450{i}" for i in range(4)]
    system.simulator.post("/_simulator/faults", {"failRate": 1.0})
    for i, number in enumerate(numbers):
        system.apply(f"outage{i}", phoneNumber=number, statusCallbackUrl="https://outage.example/s")
    wait_for(
        lambda: sum(len(system.simulator.calls(n)) for n in numbers) >= 20, timeout=60, what="20 failed calls"
    )
    time.sleep(5)  # probes go on, one every 2 s
    system.simulator.post("/_simulator/faults", {"failRate": 0.0})
    for i in range(4):
        system.wait_condition(f"outage{i}", "Ready", "Applied", timeout=60)
        reasons = [event["reason"] for event in system.events(f"outage{i}")]
        assert len(reasons) == len(set(reasons)), f"outage{i}: {reasons}"


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
    system.kubectl.run("delete", "phonewebhook", "leaving", "-n", system.namespace, "--wait=false")
    stalled = system.wait_condition("leaving", "Stalled", "SecretNotFound")
    assert "release-without-clearing" in stalled["message"]
    assert len(system.simulator.calls(number)) == 1, "no call with the credentials it may no longer use"
    system.apply_secret("gone-first", accessKeyId="LTAI-e2e", accessKeySecret=OPERATOR_SECRET)

    def gone() -> bool:
        found = system.kubectl.run("get", "phonewebhook", "leaving", "-n", system.namespace, check=False)
        return found.returncode != 0

    wait_for(gone, timeout=30, what="the object to go once its Secret is back")
    assert system.simulator.webhook("space-e2e", number)["StatusCallbackUrl"] == ""  # type: ignore[index]


def test_deleting_a_namespace_with_clear_objects_completes_and_clears_cams(system: System) -> None:
    """kube-controller-manager's namespace controller deletes the Secret, the account and the objects in no
    set order; every Clear object is still cleared and the namespace goes away."""
    doomed = f"{system.namespace}-doomed"
    system.kubectl.run("create", "namespace", doomed)
    # The operator's own namespace (claims, leader Lease) stays; it watches both.
    system.restart_operator(system.namespace, doomed)
    system.kubectl.apply(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "team-key", "namespace": doomed},
                    "stringData": {"accessKeyId": "LTAI-e2e", "accessKeySecret": OPERATOR_SECRET},
                },
                {
                    "apiVersion": "camswebhook.io/v1alpha1",
                    "kind": "CamsAccount",
                    "metadata": {"name": "team", "namespace": doomed},
                    "spec": {"credentials": {"secretRef": {"name": "team-key"}}},
                },
            ]
        )
    )
    account = {"accountRef": {"kind": "CamsAccount", "name": "team"}}
    objects: dict[str, tuple[str, dict[str, Any]]] = {
        "via-account": ("8613800007001", {**account, "deletionPolicy": "Clear"}),
        "via-secret": (
            "8613800007002",
            {"credentialsSecretRef": {"name": "team-key"}, "deletionPolicy": "Clear"},
        ),
        "via-default": ("8613800007003", {"deletionPolicy": "Clear"}),
        "retained": ("8613800007004", account),
    }
    for name, (number, spec) in objects.items():
        system.apply(
            name, namespace=doomed, phoneNumber=number, statusCallbackUrl=f"https://{name}.example/s", **spec
        )
    for name in objects:
        system.wait_condition(name, "Ready", "Applied", namespace=doomed)

    deleted = time.monotonic()
    system.kubectl.run("delete", "namespace", doomed, "--wait=false")
    wait_for(
        lambda: not system.kubectl.json("get", "phonewebhooks", "-n", doomed)["items"],
        timeout=30,
        what=f"the PhoneWebhooks of {doomed} to be gone",
    )
    objects_gone = time.monotonic() - deleted
    wait_for(
        lambda: system.kubectl.run("get", "namespace", doomed, check=False).returncode != 0,
        timeout=60,
        what=f"namespace {doomed} to be gone",
    )
    print(
        f"\nnamespace deletion: PhoneWebhooks gone after {objects_gone:.1f}s, "
        f"the namespace after {time.monotonic() - deleted:.1f}s"
    )
    # Events cannot be posted in a namespace being deleted; that is no reason for a warning.
    assert "Could not post Event" not in system.operator.output()
    for name, (number, spec) in objects.items():
        held = system.simulator.webhook("space-e2e", number)
        assert held is not None
        expected = "" if spec.get("deletionPolicy") == "Clear" else f"https://{name}.example/s"
        assert held["StatusCallbackUrl"] == expected, name


def test_number_health_shows_in_status_wide_columns_events_and_metrics_from_the_reads_alone(
    system: System,
) -> None:
    """WhatsApp lowers a number's quality rating: within one drift period the object says so (condition,
    status.live, the wide QUALITY column, one Warning Event, the metric), Ready stays True, and the
    simulator's call log shows no call the drift reads would not have made anyway."""
    number = "8613800008888"
    body = {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "PhoneWebhook",
        "metadata": {
            "name": "health",
            "namespace": system.namespace,
            "annotations": {"camswebhook.io/drift-check-interval": "2s"},
        },
        "spec": {
            "custSpaceId": "space-e2e",
            "phoneNumber": number,
            "statusCallbackUrl": "https://h.example/s",
        },
    }
    system.kubectl.apply(json.dumps(body))
    system.wait_condition("health", "Ready", "Applied")
    healthy = system.wait_condition("health", "NumberHealthy", "Healthy", timeout=20)
    assert "quality GREEN" in healthy["message"]
    wide = system.kubectl.run("get", "pwh", "health", "-n", system.namespace, "-o", "wide").stdout
    assert "QUALITY" in wide.splitlines()[0]
    assert "GREEN" in wide
    assert "CONNECTED" in wide
    narrow = system.kubectl.run("get", "pwh", "health", "-n", system.namespace).stdout
    assert "QUALITY" not in narrow, "kubectl get pwh stays as narrow as it was"

    system.simulator.post(
        "/_simulator/webhooks", {"CustSpaceId": "space-e2e", "PhoneNumber": number, "QualityRating": "RED"}
    )
    changed = time.monotonic()

    def unhealthy() -> dict[str, Any] | None:
        condition = system.condition("health", "NumberHealthy")
        return condition if condition and condition["status"] == "False" else None

    condition = wait_for(unhealthy, timeout=10, what="NumberHealthy=False")
    print(f"\nquality drop in status {time.monotonic() - changed:.1f}s after it happened (drift period 2 s)")
    assert condition["reason"] == "QualityRed"
    status = system.get("health")["status"]
    assert status["live"]["qualityRating"] == "RED"
    assert status["conditions"][0]["type"] == "Ready"
    assert status["conditions"][0]["status"] == "True", "a quality rating never makes the object unready"
    assert "RED" in system.kubectl.run("get", "pwh", "health", "-n", system.namespace, "-o", "wide").stdout
    wait_for(
        lambda: system.operator.metric("cams_webhook_operator_numbers_by_quality", quality="RED") == 1,
        what="the RED number counted",
    )
    time.sleep(5)  # two more reads of the same RED rating: still one Event
    drops = [e for e in system.events("health") if e["reason"] == "QualityDegraded"]
    assert len(drops) == 1
    assert drops[0]["type"] == "Warning"
    assert drops[0].get("count", 1) == 1
    assert len(system.simulator.calls(number)) == 1, (
        "health came from the reads: no UpdatePhoneWebhook of its own"
    )


def test_drift_made_outside_kubernetes_is_detected_and_reverted(system: System) -> None:
    numbers = ["8613800006661", "8613800006662"]
    for i, number in enumerate(numbers):
        body = {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {
                "name": f"drift{i}",
                "namespace": system.namespace,
                "annotations": {"camswebhook.io/drift-check-interval": "2s"},
            },
            "spec": {
                "custSpaceId": "space-e2e",
                "phoneNumber": number,
                "statusCallbackUrl": "https://ours.example/s",
            },
        }
        system.kubectl.apply(json.dumps(body))
        system.wait_condition(f"drift{i}", "Ready")
    system.simulator.post(
        "/_simulator/webhooks",
        {
            "CustSpaceId": "space-e2e",
            "PhoneNumber": numbers[0],
            "StatusCallbackUrl": "https://changed-in-console.example",
        },
    )
    wait_for(
        lambda: (
            system.simulator.webhook("space-e2e", numbers[0])["StatusCallbackUrl"]  # type: ignore[index]
            == "https://ours.example/s"
        ),
        timeout=20,
        what="the drift to be reverted",
    )
    assert "DriftDetected" in {event["reason"] for event in system.events("drift0")}
    assert [len(system.simulator.calls(n)) for n in numbers] == [2, 1]
    wait_for(
        lambda: system.get("drift1")["status"].get("lastDriftCheckTime"), what="the check time in status"
    )

    def reads() -> list[dict[str, Any]]:
        calls = system.simulator.get("/_simulator/calls")
        return [c for c in calls if c["action"] == "QueryChatappPhoneNumbers"]

    wait_for(lambda: len(reads()) >= 3, timeout=20, what="three periods of drift checks")
    assert {c["params"]["CustSpaceId"] for c in reads()} == {"space-e2e"}
    # One read per space per period (2 s, spread by +-10 %) for both objects together, not one per object.
    times = [c["at"] for c in reads()]
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 1.7


def test_two_replicas_one_acts_and_the_other_takes_over_when_it_dies(system: System) -> None:
    lease_env = {**OPERATOR_ENV, "CAMS_LEASE_SECONDS": "6"}
    system.restart_operator(extra_env=lease_env)
    first = system.operator
    second = start_operator(
        kubeconfig=system.kubectl.kubeconfig,
        endpoint=system.simulator.endpoint,
        namespace=system.namespace,
        log=system.tmp / "operator-2.log",
        extra_env=lease_env,
        verbose=True,
    )
    try:
        lease = f"lease/cams-webhook-operator-{system.namespace}"

        def holder() -> str:
            return system.kubectl.run(
                "get", lease, "-n", system.namespace, "-o", "jsonpath={.spec.holderIdentity}", check=False
            ).stdout

        assert first.popen is not None
        assert second.popen is not None
        first_pid, second_pid = first.popen.pid, second.popen.pid
        wait_for(lambda: f"_{first_pid}_" in holder(), what="the first replica to lead")
        numbers = [f"8613800005{i:03d}" for i in range(5)]
        for i, number in enumerate(numbers):
            system.apply(f"ha{i}", phoneNumber=number, statusCallbackUrl="https://ha.example/s")
        for i in range(5):
            system.wait_condition(f"ha{i}", "Ready")
        assert [len(system.simulator.calls(n)) for n in numbers] == [1] * 5, "exactly one replica acts"

        first.popen.kill()  # no goodbye: the lease must expire
        killed = time.monotonic()
        first.popen.wait()
        system.operator = second  # the replica the fixture checks (/metrics) and stops at the end
        system.apply("after", phoneNumber="8613800005999", statusCallbackUrl="https://ha.example/s")
        system.wait_condition("after", "Ready", timeout=30)
        took = time.monotonic() - killed
        print(f"takeover after kill -9: the new object was Ready {took:.1f}s later")
        # Documented bound: lease duration + retry period (6 + 2 s here), then a reconcile.
        assert took < 6 + 2 + 5, f"took over in {took:.1f}s"
        assert f"_{second_pid}_" in holder()
        assert [len(system.simulator.calls(n)) for n in numbers] == [1] * 5, (
            "the new leader made no call for them"
        )
        assert len(system.simulator.calls("8613800005999")) == 1
    finally:
        if system.operator is not second:
            second.stop()


def test_callback_urls_from_a_secret_are_applied_rotated_and_kept_out_of_status_and_events(
    system: System,
) -> None:
    """A token in a callback URL lives in a Secret: CAMS gets it, rotation reaches CAMS, a change made
    outside Kubernetes is reverted, and status, Events and the log (scanned by the fixture) never show it."""
    number = "8613800004321"
    system.apply_secret("hooks", inbound=f"https://hooks.example/in?token={URL_TOKEN}-1")
    body = {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "PhoneWebhook",
        "metadata": {
            "name": "tokens",
            "namespace": system.namespace,
            "annotations": {"camswebhook.io/drift-check-interval": "2s"},
        },
        "spec": {
            "custSpaceId": "space-e2e",
            "phoneNumber": number,
            "statusCallbackUrl": "https://hooks.example/status",
            "upCallbackUrlFrom": {"secretKeyRef": {"name": "hooks", "key": "inbound"}},
        },
    }
    system.kubectl.apply(json.dumps(body))
    system.wait_condition("tokens", "Ready")

    def held() -> str:
        return system.simulator.webhook("space-e2e", number)["UpCallbackUrl"]  # type: ignore[index]

    assert held() == f"https://hooks.example/in?token={URL_TOKEN}-1"
    live = wait_for(lambda: system.get("tokens")["status"].get("live"), what="status.live from a read")
    assert live["upCallbackUrl"] == "https://hooks.example/redacted?redacted"
    assert (live["upCallbackUrlMatches"], live["statusCallbackUrlMatches"]) == (True, True)

    system.apply_secret("hooks", inbound=f"https://hooks.example/in?token={URL_TOKEN}-2")
    rotated = time.monotonic()
    wait_for(lambda: held().endswith("-2"), timeout=30, what="the rotated URL in CAMS")
    print(f"\nrotated URL in CAMS {time.monotonic() - rotated:.1f} s after the Secret changed (refresh 3 s)")

    system.simulator.post(
        "/_simulator/webhooks",
        {"CustSpaceId": "space-e2e", "PhoneNumber": number, "UpCallbackUrl": "https://elsewhere.example/in"},
    )
    wait_for(lambda: held().endswith("-2"), timeout=20, what="the drift from the Secret's URL reverted")
    assert "DriftDetected" in {event["reason"] for event in system.events("tokens")}
    assert len(system.simulator.calls(number)) == 3, "applied, rotated, reverted: nothing more"

    # The Secret loses its key: the object stalls, says which, and CAMS is left alone.
    system.kubectl.run("delete", "secret", "hooks", "-n", system.namespace)
    system.apply_secret("hooks", other="x")
    stalled = system.wait_condition("tokens", "Stalled", "CallbackUrlKeyNotFound", timeout=30)
    assert f"{system.namespace}/hooks" in stalled["message"]
    assert "inbound" in stalled["message"]
    assert len(system.simulator.calls(number)) == 3
    shown = system.kubectl.run("get", "phonewebhook", "tokens", "-n", system.namespace, "-o", "yaml").stdout
    assert "upCallbackUrl:" in shown, "status.live still shows where the URL CAMS holds leads"
    assert URL_TOKEN not in shown + json.dumps(system.events("tokens"))
    assert URL_TOKEN not in system.operator.scrape()
