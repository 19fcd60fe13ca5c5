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
from pathlib import Path

import pytest
import yaml

from .harness import Kubectl, OperatorProcess, simulator_in, start_operator, wait_for
from .proxy import Forwarded, Proxy, kube_proxy

N = 240  # 24 s of calls at the account's 10 calls/s: the handover happens in the middle
LEASE_SECONDS = 6
KEY, SECRET = "LTAI-stall", "stall-secret-Qw3"


def _manifests(namespace: str) -> str:
    return yaml.safe_dump_all(
        {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {"name": f"stall-{i:03d}", "namespace": namespace},
            "spec": {
                "custSpaceId": "stall",
                "phoneNumber": f"86137{i:08d}",
                "statusCallbackUrl": f"https://stall.example/{i}",
            },
        }
        for i in range(N)
    )


def _writes(proxy: Proxy, leader_lease: str) -> list[Forwarded]:
    """What a replica changed in the cluster, its leader Lease aside (renewing it is how it leads)."""
    return [
        f
        for f in proxy.forwarded
        if f.method not in ("GET", "HEAD", "OPTIONS") and not f.path.endswith(f"/leases/{leader_lease}")
    ]


@pytest.mark.skipif(
    bool(os.environ.get("CAMS_E2E_KUBECONFIG")), reason="needs the local control plane's admin kubeconfig"
)
def test_a_leader_whose_lease_requests_hang_stops_before_its_successor_acts(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    simulator = simulator_in(
        tmp_path,
        {
            "qps": 10,
            "accounts": [
                {"accessKeyId": KEY, "accessKeySecret": SECRET, "uid": "1", "spaces": [{"id": "stall"}]}
            ],
        },
    )
    lease_name = f"cams-webhook-operator-{namespace}"
    kube = [kube_proxy(kubectl.kubeconfig, tmp_path / f"kubeconfig-{i}") for i in range(2)]
    cams = [Proxy(simulator.endpoint, keep_host=True).start() for _ in range(2)]
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY,  # one Deployment: the same credentials in both replicas
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "CAMS_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    replicas: list[OperatorProcess] = []
    try:
        for index in range(2):
            replicas.append(
                start_operator(
                    kubeconfig=tmp_path / f"kubeconfig-{index}",
                    endpoint=cams[index].url,
                    namespace=namespace,
                    log=tmp_path / f"operator-{index}.log",
                    extra_env=env,
                    verbose=True,
                )
            )
            if index == 0:
                wait_for(
                    lambda: "Became the leader" in replicas[0].output(), what="the first replica to lead"
                )
        first = replicas[0].popen
        assert first is not None
        kubectl.apply(_manifests(namespace))

        wait_for(lambda: len(cams[0].forwarded) >= 60, timeout=60, what="the first replica to be busy")
        kube[0].hold(lambda method, path: path.endswith(f"/leases/{lease_name}"))
        wait_for(lambda: kube[0].held, timeout=10, what="the first replica's next renewal to hang")
        stalled_at = kube[0].held[0][2]
        # Having lost the lease, the first replica stops itself (Kubernetes restarts it as a follower),
        # without waiting for its hung calls.
        wait_for(lambda: first.poll() is not None, timeout=30, what="the first replica to exit")
        exited_after = time.monotonic() - stalled_at

        def all_ready() -> bool:
            items = kubectl.json("get", "phonewebhooks", "-n", namespace)["items"]
            return len(items) == N and all(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in i.get("status", {}).get("conditions", [])
                )
                for i in items
            )

        wait_for(all_ready, timeout=120, what="every object Ready, the rest applied by the second replica")

        by_first, by_second = cams[0].forwarded, cams[1].forwarded
        first_writes = _writes(kube[0], lease_name)
        second_writes = _writes(kube[1], lease_name)
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
        made = simulator.get("/_simulator/calls")
        updates = [c for c in made if c["action"] == "UpdatePhoneWebhook" and c["code"] == "OK"]
        assert len({c["params"]["PhoneNumber"] for c in updates}) == N
        assert len(updates) <= N + 2, "at most the call in flight at the handover is made twice"
    finally:
        for replica in replicas:
            replica.stop()
        for proxy in [*kube, *cams]:
            proxy.stop()
        simulator.stop()
