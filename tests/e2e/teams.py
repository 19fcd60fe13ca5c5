"""Two teams on one Alibaba account, for the tenancy scenarios: the operator's namespace (where the platform
team keeps the shared key), team A's and team B's namespaces, the simulator that knows the shared account,
a second key of it and another account, and the operator watching both teams with no default account.
The `teams` fixture (conftest.py) starts it and puts the default account back after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import (
    DEFAULT_ACCOUNT_NAME,
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    simulator_in,
    start_operator,
    wait_for,
)
from .manifests import cluster_account, condition, key_secret, phone_webhook

SHARED_SECRET = "e2e-shared-secret-Hq30"
SIMULATOR_CONFIG = {
    "qps": 10,
    "accounts": [
        {
            "accessKeyId": "LTAI-shared",
            "accessKeySecret": SHARED_SECRET,
            "uid": "7",
            "spaces": [{"id": "space-a"}, {"id": "space-b"}],
        },
        {  # a second AccessKey of the shared Alibaba account (the same uid: one quota)
            "accessKeyId": "LTAI-shared-second",
            "accessKeySecret": "second-key-secret",
            "uid": "7",
            "spaces": [{"id": "space-a"}, {"id": "space-b"}],
        },
        {  # another Alibaba account: its key is real, but it does not own space-a or space-b
            "accessKeyId": "LTAI-other-account",
            "accessKeySecret": "other-account-secret",
            "uid": "8",
            "spaces": [{"id": "space-other"}],
        },
    ],
}
DEFAULT_MARK = "camswebhook.io/default-account"


def shared_key_secret(
    name: str, namespace: str, key_id: str = "LTAI-shared", secret: str = SHARED_SECRET
) -> dict[str, Any]:
    """A Secret holding an AccessKey, by default the shared account's."""
    return key_secret(name, namespace, key_id, secret)


@dataclass
class Teams:
    kubectl: Kubectl
    ops: str  # the operator's namespace, where the platform team keeps the shared key
    team_a: str
    team_b: str
    suffix: str
    simulator: SimulatorProcess
    operator: OperatorProcess

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl.apply(json.dumps(obj))

    def apply_cluster_account(self, name: str, **spec: Any) -> None:
        """A ClusterCamsAccount labelled with this run, so that the fixture deletes it after."""
        account = cluster_account(name, **spec)
        account["metadata"]["labels"] = {"e2e-run": self.suffix}
        self.apply(account)

    def phone_webhook(self, namespace: str, name: str, space: str, number: str, **spec: Any) -> None:
        status_url = f"https://{name}.example.com/status"
        self.apply(
            phone_webhook(
                name, namespace, custSpaceId=space, phoneNumber=number, statusCallbackUrl=status_url, **spec
            )
        )

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.json("get", "phonewebhook", name, "-n", namespace)
        return obj

    def condition(self, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
        return condition(self.get(namespace, name), kind)

    def wait(self, namespace: str, name: str, kind: str, reason: str) -> dict[str, Any]:
        def holds() -> dict[str, Any] | None:
            found = self.condition(namespace, name, kind)
            return found if found and found["status"] == "True" and found["reason"] == reason else None

        return wait_for(holds, timeout=30, what=f"{kind}={reason} on {namespace}/{name}")

    def events(self, namespace: str, name: str) -> list[str]:
        return [event["reason"] for event in self.kubectl.events(namespace, name)]


def running_teams(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Teams]:
    """The `teams` fixture's body."""
    suffix = namespace.removeprefix("e2e-")
    ops, team_a, team_b = namespace, f"team-a-{suffix}", f"team-b-{suffix}"
    kubectl.run("create", "namespace", team_a)
    kubectl.run("create", "namespace", team_b)
    kubectl.run("label", "namespace", team_a, f"tenant=a-{suffix}")
    simulator = simulator_in(tmp_path, SIMULATOR_CONFIG)
    # For this run there is no default account: objects that name none must be refused.
    kubectl.run("annotate", "clustercamsaccount", DEFAULT_ACCOUNT_NAME, f"{DEFAULT_MARK}-")
    operator: OperatorProcess | None = None
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=[team_a, team_b],
            log=tmp_path / "operator.log",
            # The operator's own identity is not the shared account: nothing may fall back to it.
            extra_env={
                "CAMS_OPERATOR_NAMESPACE": ops,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-operator-own",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "operator-own-secret",
            },
        )
        yield Teams(kubectl, ops, team_a, team_b, suffix, simulator, operator)
        operator.scrape()
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()
        kubectl.run("annotate", "clustercamsaccount", DEFAULT_ACCOUNT_NAME, f"{DEFAULT_MARK}=true")
        kubectl.run("delete", "clustercamsaccount", "-l", f"e2e-run={suffix}", check=False)
    assert SHARED_SECRET not in operator.output()
