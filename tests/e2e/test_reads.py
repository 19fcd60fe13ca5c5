"""What the operator learns from reading CAMS, on the real API server: a number's health, a change made in
the console (reverted), and callback URLs held by Secrets (applied, rotated, never shown)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from .harness import wait_for
from .system import FAST_DRIFT, SPACE, URL_TOKEN, System


def test_number_health_shows_in_status_wide_columns_events_and_metrics_from_the_reads_alone(
    system: System,
) -> None:
    """WhatsApp lowers a number's quality rating: within one drift period the object says so (condition,
    status.live, the wide QUALITY column, one Warning Event, the metric), Ready stays True, and the
    simulator's call log shows no call the drift reads would not have made anyway."""
    number = "8613800008888"
    system.apply(
        "health", annotations=FAST_DRIFT, phoneNumber=number, statusCallbackUrl="https://h.example/s"
    )
    system.wait_condition("health", "Ready", "Applied")
    healthy = system.wait_condition("health", "NumberHealthy", "Healthy", timeout=20)
    assert "quality GREEN" in healthy["message"]
    wide = _get_pwh(system, "-o", "wide")
    assert "QUALITY" in wide.splitlines()[0]
    assert "GREEN" in wide
    assert "CONNECTED" in wide
    assert "QUALITY" not in _get_pwh(system), "kubectl get pwh stays as narrow as it was"

    system.simulator.set_webhook(SPACE, number, QualityRating="RED")
    changed = time.monotonic()

    def unhealthy() -> dict[str, Any] | None:
        condition = system.condition("health", "NumberHealthy")
        return condition if condition and condition["status"] == "False" else None

    condition = wait_for(unhealthy, timeout=10, what="NumberHealthy=False")
    print(f"\nquality drop in status {time.monotonic() - changed:.1f}s after it happened (drift period 2 s)")
    assert condition["reason"] == "QualityRed"
    _a_red_number_is_shown_once_and_stays_ready(system, number)
    _limited_is_told_from_out_of_service_and_unknown_is_not_judged(system, number)


def _get_pwh(system: System, *flags: str) -> str:
    return system.kubectl.run("get", "pwh", "health", "-n", system.namespace, *flags).stdout


def _a_red_number_is_shown_once_and_stays_ready(system: System, number: str) -> None:
    status = system.get("health")["status"]
    assert status["live"]["qualityRating"] == "RED"
    assert status["conditions"][0]["type"] == "Ready"
    assert status["conditions"][0]["status"] == "True", "a quality rating never makes the object unready"
    assert "RED" in _get_pwh(system, "-o", "wide")
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


def _limited_is_told_from_out_of_service_and_unknown_is_not_judged(system: System, number: str) -> None:
    """FLAGGED: sending limited for a while; BANNED: out of service, a Warning; a rating that turns UNKNOWN
    says nothing, so no Warning."""

    def reason_becomes(reason: str) -> None:
        wait_for(
            lambda: (system.condition("health", "NumberHealthy") or {}).get("reason") == reason,
            timeout=10,
            what=f"NumberHealthy {reason}",
        )

    system.simulator.set_webhook(SPACE, number, QualityRating="GREEN", Status="FLAGGED")
    reason_becomes("NumberLimited")
    system.simulator.set_webhook(SPACE, number, Status="BANNED")
    reason_becomes("NumberOutOfService")
    assert "BANNED" in system.condition("health", "NumberHealthy")["message"]  # type: ignore[index]
    statuses = [e for e in system.events("health") if e["reason"] == "NumberStatusChanged"]
    assert {e["type"] for e in statuses} == {"Warning"}
    system.simulator.set_webhook(SPACE, number, QualityRating="UNKNOWN", Status="CONNECTED")
    reason_becomes("Healthy")
    time.sleep(3)  # another read of the UNKNOWN rating
    drops = [e for e in system.events("health") if e["reason"] == "QualityDegraded"]
    assert len(drops) == 1, "GREEN to UNKNOWN is no Warning: only the earlier drop to RED was"


def test_drift_made_outside_kubernetes_is_detected_and_reverted(system: System) -> None:
    numbers = ["8613800006661", "8613800006662"]
    for i, number in enumerate(numbers):
        system.apply(
            f"drift{i}",
            annotations=FAST_DRIFT,
            phoneNumber=number,
            statusCallbackUrl="https://ours.example/s",
        )
        system.wait_condition(f"drift{i}", "Ready")
    system.simulator.set_webhook(SPACE, numbers[0], StatusCallbackUrl="https://changed-in-console.example")
    wait_for(
        lambda: system.held(numbers[0])["StatusCallbackUrl"] == "https://ours.example/s",
        timeout=20,
        what="the drift to be reverted",
    )
    assert "DriftDetected" in system.event_reasons("drift0")
    assert [len(system.simulator.calls(n)) for n in numbers] == [2, 1]
    wait_for(
        lambda: system.get("drift1")["status"].get("lastDriftCheckTime"), what="the check time in status"
    )

    wait_for(lambda: len(system.simulator.reads()) >= 3, timeout=20, what="three periods of drift checks")
    reads = system.simulator.reads()
    assert {c["params"]["CustSpaceId"] for c in reads} == {SPACE}
    # One read per space per period (2 s, spread by +-10 %) for both objects together, not one per object.
    times = [c["at"] for c in reads]
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 1.7


def test_callback_urls_from_a_secret_are_applied_rotated_and_kept_out_of_status_and_events(
    system: System,
) -> None:
    """A token in a callback URL lives in a Secret: CAMS gets it, rotation reaches CAMS, a change made
    outside Kubernetes is reverted, and status, Events and the log (scanned by the fixture) never show it."""
    number = "8613800004321"
    system.apply_secret("hooks", inbound=f"https://hooks.example/in?token={URL_TOKEN}-1")
    system.apply(
        "tokens",
        annotations=FAST_DRIFT,
        phoneNumber=number,
        statusCallbackUrl="https://hooks.example/status",
        upCallbackUrlFrom={"secretKeyRef": {"name": "hooks", "key": "inbound"}},
    )
    system.wait_condition("tokens", "Ready")

    def held() -> str:
        return system.held(number)["UpCallbackUrl"]

    assert held() == f"https://hooks.example/in?token={URL_TOKEN}-1"
    live = wait_for(lambda: system.get("tokens")["status"].get("live"), what="status.live from a read")
    assert live["upCallbackUrl"] == "https://hooks.example/redacted?redacted"
    assert (live["upCallbackUrlMatches"], live["statusCallbackUrlMatches"]) == (True, True)

    system.apply_secret("hooks", inbound=f"https://hooks.example/in?token={URL_TOKEN}-2")
    rotated = time.monotonic()
    wait_for(lambda: held().endswith("-2"), timeout=30, what="the rotated URL in CAMS")
    print(f"\nrotated URL in CAMS {time.monotonic() - rotated:.1f} s after the Secret changed (refresh 3 s)")

    system.simulator.set_webhook(SPACE, number, UpCallbackUrl="https://elsewhere.example/in")
    wait_for(lambda: held().endswith("-2"), timeout=20, what="the drift from the Secret's URL reverted")
    assert "DriftDetected" in system.event_reasons("tokens")
    assert len(system.simulator.calls(number)) == 3, "applied, rotated, reverted: nothing more"
    _a_secret_without_the_key_stalls_and_leaves_cams_alone(system, number)


def _a_secret_without_the_key_stalls_and_leaves_cams_alone(system: System, number: str) -> None:
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
