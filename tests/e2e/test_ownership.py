"""Who may change a number, on the real API server: one object per number (the claim, across namespaces,
restarts and a re-creation), an observer that turns manager, and one acting replica of two."""

from __future__ import annotations

import time

from .harness import Kubectl, wait_for
from .system import OPERATOR_ENV, System

NUMBER = "8613800007777"


def test_two_objects_for_one_number_the_later_waits_and_takes_over(system: System, kubectl: Kubectl) -> None:
    other = f"{system.namespace}-b"
    kubectl.run("create", "namespace", other)
    system.restart_operator(system.namespace, other)
    system.apply("first", phoneNumber=NUMBER, statusCallbackUrl="https://team-a.example/status")
    system.wait_condition("first", "Ready")
    system.apply(
        "second", namespace=other, phoneNumber=NUMBER, statusCallbackUrl="https://team-b.example/status"
    )
    conflict = system.wait_condition("second", "Stalled", "Conflict", namespace=other)
    assert conflict["message"].startswith(
        f"A PhoneWebhook of another namespace already manages the webhook of {NUMBER}"
    ), "another team's objects are not named"
    assert len(system.simulator.calls(NUMBER)) == 1
    # The claim is a Lease in the operator's namespace, naming its holder.
    assert kubectl.claim_holders(system.namespace) == [f"{system.namespace}/first"]

    # A restart lists both objects in any order; the later one must still not be applied.
    system.restart_operator(system.namespace, other)
    system.apply("first", phoneNumber=NUMBER, statusCallbackUrl="https://team-a.example/v2")
    system.wait_generation("first", 2)
    assert system.condition("second", "Stalled", namespace=other)["reason"] == "Conflict"  # type: ignore[index]

    _a_re_created_owner_keeps_the_number(system, other)
    _deleted_for_good_the_waiting_object_takes_over(system, other)
    assert [c["params"]["StatusCallbackUrl"] for c in system.simulator.calls(NUMBER)] == [
        "https://team-a.example/status",
        "https://team-a.example/v2",
        "https://team-a.example/v2",  # the re-created object, applied once
        "https://team-b.example/status",
    ]


def _a_re_created_owner_keeps_the_number(system: System, other: str) -> None:
    """Deleted and created again at once (an Argo CD Replace, a restore): the number stays with it."""
    replaced = system.get("first")
    system.delete("first")
    system.apply("first", phoneNumber=NUMBER, statusCallbackUrl="https://team-a.example/v2")
    wait_for(lambda: system.get("first")["metadata"]["uid"] != replaced["metadata"]["uid"], what="re-created")
    system.wait_condition("first", "Ready")
    time.sleep(10)  # beyond the grace period (8 s): the re-created owner kept the claim
    assert system.condition("second", "Stalled", namespace=other)["reason"] == "Conflict"  # type: ignore[index]


def _deleted_for_good_the_waiting_object_takes_over(system: System, other: str) -> None:
    """Once the grace period is over, and not before."""
    system.delete("first")
    deleted_at = time.monotonic()
    system.wait_condition("second", "Ready", namespace=other)
    assert time.monotonic() - deleted_at >= 8 - 1, "not before the grace period"
    assert system.held(NUMBER)["StatusCallbackUrl"] == "https://team-b.example/status"


def test_an_older_observer_switched_to_manage_does_not_take_the_number(system: System) -> None:
    system.apply("observer", phoneNumber="8613800006666", managementMode="Observe")
    system.wait_condition("observer", "Ready", "NotFound")  # observed: the space does not list it yet
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


def test_two_replicas_one_acts_and_the_other_takes_over_when_it_dies(system: System) -> None:
    lease_env = {**OPERATOR_ENV, "CAMS_LEASE_SECONDS": "6"}
    system.restart_operator(extra_env=lease_env)
    first = system.operator
    second = system.start_operator(extra_env=lease_env, log="operator-2.log")
    try:
        assert first.popen is not None
        assert second.popen is not None
        first_pid, second_pid = first.popen.pid, second.popen.pid
        wait_for(lambda: f"_{first_pid}_" in _leader(system), what="the first replica to lead")
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
        assert f"_{second_pid}_" in _leader(system)
        assert [len(system.simulator.calls(n)) for n in numbers] == [1] * 5, (
            "the new leader made no call for them"
        )
        assert len(system.simulator.calls("8613800005999")) == 1
    finally:
        if system.operator is not second:
            second.stop()


def _leader(system: System) -> str:
    """The holder of the leader Lease (the process id is part of it)."""
    lease = f"lease/cams-webhook-operator-{system.namespace}"
    return system.kubectl.run(
        "get", lease, "-n", system.namespace, "-o", "jsonpath={.spec.holderIdentity}", check=False
    ).stdout
