"""Nothing is lost: 200 objects rolled out and then updated while the operator is killed 10 times at
random points, the API server restarts once, and CAMS fails a fifth of all calls."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .harness import REPO, Kubectl, OperatorProcess, SimulatorProcess, simulator_in, start_operator, wait_for
from .manifests import one_account, phone_webhook

N = 200
KILLS = 10
SECRET = "chaos-secret"
ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "chaos-key",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
    # A killed leader's lease must expire before its successor acts; keep that short here.
    "CAMS_LEASE_SECONDS": "3",
    "CAMS_DRIFT_INTERVAL_SECONDS": "0",
}


def _manifests(namespace: str, version: int) -> str:
    return yaml.safe_dump_all(
        phone_webhook(
            f"chaos-{i:03d}",
            namespace,
            custSpaceId="chaos",
            phoneNumber=f"86139{i:08d}",
            statusCallbackUrl=f"https://chaos.example/{i}/v{version}",
            httpFlag=version % 2 == 0,
        )
        for i in range(N)
    )


def _apply_until_accepted(kubectl: Kubectl, manifests: str) -> None:
    """kubectl apply, again while the API server is restarting."""
    wait_for(lambda: kubectl.apply(manifests, check=False).returncode == 0, timeout=60, what="kubectl apply")


def _kill_times() -> list[float]:
    """Moments to kill the operator at, random (but the same every run) over the first minute, none within
    6 s of the API server's restart at 25 s."""
    rng = random.Random(20261128)
    kill_at: list[float] = []
    while len(kill_at) < KILLS:
        moment = rng.uniform(1, 60)
        if abs(moment - 25) > 6:
            kill_at.append(moment)
    return sorted(kill_at)


@dataclass(eq=False)  # a Thread must stay hashable (threading keeps a WeakSet of them)
class Chaos(threading.Thread):
    """Kills the newest operator at each moment of `kill_at` and starts another; restarts the API server
    once, at 25 s. What it did is in `events`; what went wrong, in `failures` (the test reports them)."""

    kubectl: Kubectl
    start_operator: Callable[[], OperatorProcess]
    kill_at: list[float]
    operators: list[OperatorProcess] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)
        self.operators.append(self.start_operator())

    def run(self) -> None:
        try:
            started = time.monotonic()
            restarted_api = False
            for moment in self.kill_at:
                if not restarted_api and moment > 25:
                    time.sleep(max(0.0, 25 - (time.monotonic() - started)))
                    self._restart_the_api_server()
                    self.events.append(f"{time.monotonic() - started:5.1f}s API server restarted")
                    restarted_api = True
                time.sleep(max(0.0, moment - (time.monotonic() - started)))
                victim = self.operators[-1]
                assert victim.popen is not None
                victim.popen.kill()
                victim.popen.wait()
                self.events.append(f"{time.monotonic() - started:5.1f}s operator killed")
                self.operators.append(self.start_operator())
        except BaseException as exc:  # reported by the main thread
            self.failures.append(exc)

    def _restart_the_api_server(self) -> None:
        script = str(REPO / "scripts" / "controlplane.sh")
        state = str(self.kubectl.kubeconfig.parent)
        subprocess.run([script, "restart-apiserver", state], check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(
    bool(os.environ.get("CAMS_E2E_KUBECONFIG")), reason="restarts the local control plane's API server"
)
def test_nothing_is_lost_under_kills_an_api_server_restart_and_failing_cams(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    simulator = simulator_in(tmp_path, one_account("chaos-key", SECRET, "chaos", qps=10, failRate=0.2))
    log = tmp_path / "operator.log"
    chaos = Chaos(
        kubectl,
        lambda: start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=log,
            extra_env=ENV,
        ),
        _kill_times(),
    )
    try:
        chaos.start()
        _apply_until_accepted(kubectl, _manifests(namespace, 1))
        time.sleep(15)  # the update lands in the middle of the rollout
        _apply_until_accepted(kubectl, _manifests(namespace, 2))
        chaos.join(timeout=300)
        assert not chaos.failures, chaos.failures
        assert not chaos.is_alive()
        wait_for(
            lambda: _converged(kubectl, simulator, namespace),
            timeout=300,
            what="every object Ready with CAMS holding its spec",
        )
        calls = simulator.get("/_simulator/state")["calls"]
        updates = {k.split("/", 1)[1]: v for k, v in calls.items() if k.startswith("UpdatePhoneWebhook/")}
        total = sum(updates.values())
        print(f"\nchaos: {len(chaos.events)} events: " + "; ".join(chaos.events))
        print(f"chaos: UpdatePhoneWebhook calls {total} for {2 * N} changes: {updates}")
        # 2N changes, a fifth of calls failing, and at most a handful re-sent per kill (a call answered
        # but not yet recorded in status when the process died).
        assert total <= 2 * N / 0.8 + KILLS * 16
        chaos.operators[-1].scrape()
    finally:
        chaos.operators[-1].stop()
        simulator.stop()
    assert SECRET not in log.read_text()


def _converged(kubectl: Kubectl, simulator: SimulatorProcess, namespace: str) -> bool:
    """Every object Ready for its second version, and CAMS holding that version."""
    if not kubectl.all_ready(namespace, N, generation=2):
        return False
    held: dict[str, dict[str, str]] = simulator.get("/_simulator/state")["webhooks"]
    for item in kubectl.phone_webhooks(namespace):
        webhook = held.get(f"chaos/{item['spec']['phoneNumber']}", {})
        if (
            webhook.get("StatusCallbackUrl") != item["spec"]["statusCallbackUrl"]
            or webhook["HttpFlag"] != "Y"
        ):
            return False
    return True
