"""Never two leaders: the leader's Lease requests hang (an API server that stops answering it, a partition)
while it is busy calling CAMS, and a second replica takes over. No CAMS call and no write to the cluster
may come from the two replicas in overlapping windows.

The witnesses are outside the operator: each replica reaches CAMS and the API server through proxies of
its own, which record every request with when it arrived and when it was answered (CLOCK_MONOTONIC, one
clock for all processes of the machine); the simulator's call log counts the calls.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .harness import Kubectl, OperatorProcess, SimulatorProcess, simulator_in, start_operator, wait_for
from .manifests import one_account, phone_webhook
from .proxy import Forwarded, Proxy, kube_proxy

N = 240  # 24 s of calls at the account's 10 calls/s: the handover happens in the middle
LEASE_SECONDS = 6
KEY, SECRET = "LTAI-stall", "stall-secret-Qw3"


def _manifests(namespace: str) -> str:
    return yaml.safe_dump_all(
        phone_webhook(
            f"stall-{i:03d}",
            namespace,
            custSpaceId="stall",
            phoneNumber=f"86137{i:08d}",
            statusCallbackUrl=f"https://stall.example/{i}",
        )
        for i in range(N)
    )


def _writes(proxy: Proxy, leader_lease: str) -> list[Forwarded]:
    """What a replica changed in the cluster, its leader Lease aside (renewing it is how it leads)."""
    return [
        f
        for f in proxy.forwarded
        if f.method not in ("GET", "HEAD", "OPTIONS") and not f.path.endswith(f"/leases/{leader_lease}")
    ]


@dataclass
class Replica:
    """One replica of the Deployment and the proxies it reaches the API server and CAMS through."""

    operator: OperatorProcess
    kube: Proxy
    cams: Proxy

    def acts(self, lease: str) -> tuple[list[Forwarded], list[Forwarded]]:
        """Its CAMS requests and its writes to the cluster."""
        return self.cams.forwarded, _writes(self.kube, lease)


def _start_replica(
    kubectl: Kubectl, simulator: SimulatorProcess, namespace: str, tmp_path: Path, index: int
) -> Replica:
    kube = kube_proxy(kubectl.kubeconfig, tmp_path / f"kubeconfig-{index}")
    cams = Proxy(simulator.endpoint, keep_host=True).start()
    try:
        operator = start_operator(
            kubeconfig=tmp_path / f"kubeconfig-{index}",
            endpoint=cams.url,
            namespace=namespace,
            log=tmp_path / f"operator-{index}.log",
            extra_env={
                "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY,  # one Deployment: the same credentials in both replicas
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                "CAMS_LEASE_SECONDS": str(LEASE_SECONDS),
            },
            verbose=True,
        )
    except BaseException:
        kube.stop()
        cams.stop()
        raise
    return Replica(operator, kube, cams)


@pytest.mark.skipif(
    bool(os.environ.get("CAMS_E2E_KUBECONFIG")), reason="needs the local control plane's admin kubeconfig"
)
def test_a_leader_whose_lease_requests_hang_stops_before_its_successor_acts(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    simulator = simulator_in(tmp_path, one_account(KEY, SECRET, "stall", qps=10))
    lease = f"cams-webhook-operator-{namespace}"
    replicas: list[Replica] = []
    try:
        replicas.append(_start_replica(kubectl, simulator, namespace, tmp_path, 0))
        wait_for(
            lambda: "Became the leader" in replicas[0].operator.output(), what="the first replica to lead"
        )
        replicas.append(_start_replica(kubectl, simulator, namespace, tmp_path, 1))
        first, second = replicas
        kubectl.apply(_manifests(namespace))

        wait_for(lambda: len(first.cams.forwarded) >= 60, timeout=60, what="the first replica to be busy")
        first.kube.hold(lambda method, path: path.endswith(f"/leases/{lease}"))
        wait_for(lambda: first.kube.held, timeout=10, what="the first replica's next renewal to hang")
        stalled_at = first.kube.held[0][2]
        # Having lost the lease, the first replica stops itself (Kubernetes restarts it as a follower),
        # without waiting for its hung calls.
        popen = first.operator.popen
        assert popen is not None
        wait_for(lambda: popen.poll() is not None, timeout=30, what="the first replica to exit")
        exited_after = time.monotonic() - stalled_at
        wait_for(
            lambda: kubectl.all_ready(namespace, N),
            timeout=120,
            what="every object Ready, the rest applied by the second replica",
        )
        _the_windows_do_not_overlap(first.acts(lease), second.acts(lease), stalled_at, exited_after)
        updates = [c for c in simulator.updates() if c["code"] == "OK"]
        assert len({c["params"]["PhoneNumber"] for c in updates}) == N
        assert len(updates) <= N + 2, "at most the call in flight at the handover is made twice"
    finally:
        for replica in replicas:
            replica.operator.stop()
            replica.kube.stop()
            replica.cams.stop()
        simulator.stop()


def _the_windows_do_not_overlap(
    first: tuple[list[Forwarded], list[Forwarded]],
    second: tuple[list[Forwarded], list[Forwarded]],
    stalled_at: float,
    exited_after: float,
) -> None:
    """The old leader's last CAMS answer and write come before the new leader's first call and write, and
    within a lease duration of its last renewal."""
    (by_first, first_writes), (by_second, second_writes) = first, second
    for witnessed in (by_first, by_second, first_writes, second_writes):
        assert witnessed, "both replicas called CAMS and wrote, one after the other"
    first_stopped = max(w.ended for w in [*by_first, *first_writes])
    second_began = min(w.started for w in [*by_second, *second_writes])
    after = {
        "old leader's last CAMS answer": max(c.ended for c in by_first),
        "its last write": max(w.ended for w in first_writes),
        "new leader's first CAMS call": min(c.started for c in by_second),
        "its first write": min(w.started for w in second_writes),
    }
    print(
        "\nleader stall, seconds after the renewal hung: "
        + ", ".join(f"{what} {at - stalled_at:+.2f}" for what, at in after.items())
        + f", old leader exited {exited_after:+.2f}; gap {second_began - first_stopped:.2f}; "
        f"CAMS requests {len(by_first)} + {len(by_second)} for {N} objects"
    )
    assert first_stopped < second_began, "the two replicas' windows overlap"
    # The first stops at the latest a lease duration after its last renewal was sent; the second cannot
    # take over before it has seen the record unchanged for a whole duration.
    assert first_stopped - stalled_at < LEASE_SECONDS
