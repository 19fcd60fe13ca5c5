"""An operator with neither an AccessKey nor RRSA, on a node with a RAM role: the default account (the
operator's identity) gets the role's credentials from the metadata server's stand-in (its address a
setting, pointed at the simulator), with IMDSv2's session token, refreshes them when they expire, and the
objects are applied with them."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from .harness import Kubectl, simulator_in, start_operator, wait_for
from .manifests import is_ready, phone_webhook

ROLE = {"roleName": "worker-role", "uid": "77", "spaces": [{"id": "node"}], "issuedLifetimeSeconds": 4}


def test_the_nodes_ram_role_is_the_operators_identity_and_is_refreshed(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    simulator = simulator_in(tmp_path, {"accounts": [], "instanceRole": ROLE})
    operator = None
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={"CAMS_METADATA_ENDPOINT": simulator.endpoint, "CAMS_RETRY_MAX_SECONDS": "3"},
        )

        def apply(name: str, number: str) -> None:
            body = phone_webhook(
                name,
                namespace,
                custSpaceId="node",
                phoneNumber=number,
                statusCallbackUrl="https://n.example/s",
            )
            kubectl.apply(yaml.safe_dump(body))

        def ready(name: str) -> bool:
            return is_ready(kubectl.json("get", "phonewebhook", name, "-n", namespace))

        apply("first", "8613800003101")
        wait_for(lambda: ready("first"), what="first Ready with the node's role")
        time.sleep(4.5)  # the first credentials have expired by now
        apply("second", "8613800003102")
        wait_for(lambda: ready("second"), what="second Ready after a refresh")
        keys = [c["accessKeyId"] for n in ("8613800003101", "8613800003102") for c in simulator.calls(n)]
        assert len(keys) == 2
        assert all(str(key).startswith("STS.") for key in keys)
        assert keys[0] != keys[1], "the expired credentials were fetched again"
        asked = simulator.get("/_simulator/metadata")
        reads = [a for a in asked if a.startswith("GET")]
        assert reads, "the metadata server was read"
        assert all(a.endswith("(token)") for a in reads), f"every read carried IMDSv2's token: {asked}"
        operator.scrape()
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()
