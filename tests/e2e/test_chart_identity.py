"""The operator run as the chart's ServiceAccount and nothing else: the chart is installed, a token is
minted for its ServiceAccount (`kubectl create token`), and the operator's process gets a kubeconfig that
holds only that token. The whole lifecycle works (apply, a refusal, drift, Clear deletion, the leader Lease,
an account's status), and no request of the operator's is refused: the chart's RBAC is sufficient, and the
`can-i` checks of test_helm.py show it is minimal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import Kubectl, simulator_in, start_operator, wait_for

CHART = Path(__file__).resolve().parents[2] / "helm" / "cams-webhook-operator"
SECRET = "chart-identity-secret-Jx81"
SPACE = "space-chart"


def _kubeconfig_with_token(kubectl: Kubectl, token: str, path: Path) -> Path:
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "operator",
                        "context": {"cluster": admin["clusters"][0]["name"], "user": "operator"},
                    }
                ],
                "current-context": "operator",
            }
        )
    )
    return path


def _condition(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    obj: dict[str, Any] = kubectl.json("get", "phonewebhook", name, "-n", namespace)
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["status"] == "True" and c["type"] in ("Ready", "Stalled")), {})


@pytest.mark.skipif(
    bool(os.environ.get("CAMS_E2E_KUBECONFIG")),
    reason="installs the chart cluster-wide in the local control plane",
)
@pytest.mark.parametrize("listed", [False, True], ids=["cluster-wide", "listed-namespaces"])
def test_the_operator_works_with_only_the_charts_rbac(
    helm_bin: Path, kubectl: Kubectl, namespace: str, tmp_path: Path, listed: bool
) -> None:
    team = f"{namespace}-team"
    kubectl.run("create", "namespace", team)
    release = f"id{int(listed)}"
    helm = [str(helm_bin), "--kubeconfig", str(kubectl.kubeconfig)]
    values = ["--set", f"watchNamespaces={{{team}}}"] if listed else []
    env = {**os.environ, "HELM_CACHE_HOME": str(tmp_path / "hc"), "HELM_CONFIG_HOME": str(tmp_path / "hf")}
    subprocess.run(
        [*helm, "install", release, str(CHART), "-n", namespace, *values],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    service_account = f"{release}-cams-webhook-operator"
    token = kubectl.run(
        "create", "token", service_account, "-n", namespace, "--duration", "1h"
    ).stdout.strip()
    kubeconfig = _kubeconfig_with_token(kubectl, token, tmp_path / "kubeconfig")

    simulator = simulator_in(
        tmp_path,
        {
            "accounts": [
                {
                    "accessKeyId": "LTAI-chart",
                    "accessKeySecret": SECRET,
                    "uid": "5",
                    "spaces": [{"id": SPACE}],
                }
            ]
        },
    )
    operator = start_operator(
        kubeconfig=kubeconfig,
        endpoint=simulator.endpoint,
        namespace=[team] if listed else [],
        operator_namespace=namespace,
        log=tmp_path / "operator.log",
        extra_env={
            "CAMS_LEADER_ELECTION_ID": service_account,
            "CAMS_MIN_DRIFT_INTERVAL_SECONDS": "1",
        },
    )
    try:
        kubectl.apply(
            yaml.safe_dump_all(
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "team-key", "namespace": team},
                        "stringData": {"accessKeyId": "LTAI-chart", "accessKeySecret": SECRET},
                    },
                    {
                        "apiVersion": "camswebhook.io/v1alpha1",
                        "kind": "CamsAccount",
                        "metadata": {"name": "team", "namespace": team},
                        "spec": {"credentials": {"secretRef": {"name": "team-key"}}},
                    },
                    *(
                        {
                            "apiVersion": "camswebhook.io/v1alpha1",
                            "kind": "PhoneWebhook",
                            "metadata": {
                                "name": name,
                                "namespace": team,
                                "annotations": {"camswebhook.io/drift-check-interval": "2s"},
                            },
                            "spec": {
                                "custSpaceId": SPACE,
                                "phoneNumber": number,
                                "statusCallbackUrl": f"https://{name}.example/s",
                                "deletionPolicy": "Clear",
                                "accountRef": {"kind": "CamsAccount", "name": account},
                            },
                        }
                        for name, number, account in (
                            ("applied", "6581000001", "team"),
                            ("refused", "6581000002", "missing"),
                        )
                    ),
                ]
            )
        )
        wait_for(
            lambda: _condition(kubectl, team, "applied").get("reason") == "Applied",
            timeout=60,
            what="Applied",
        )
        wait_for(
            lambda: _condition(kubectl, team, "refused").get("reason") == "AccountNotFound",
            what="AccountNotFound",
        )
        account = kubectl.json("get", "camsaccount", "team", "-n", team)
        assert account["status"]["conditions"][0]["status"] == "True", "the account's status is written"

        # Drift: changed behind the operator's back, reverted.
        simulator.post(
            "/_simulator/webhooks",
            {
                "CustSpaceId": SPACE,
                "PhoneNumber": "6581000001",
                "StatusCallbackUrl": "https://console.example",
            },
        )
        wait_for(
            lambda: (
                (simulator.webhook(SPACE, "6581000001") or {}).get("StatusCallbackUrl")
                == "https://applied.example/s"
            ),
            timeout=30,
            what="the drift reverted",
        )
        # The leader Lease and the claim are the operator's, in the release namespace.
        lease = kubectl.json("get", "lease", service_account, "-n", namespace)
        assert lease["spec"]["holderIdentity"]
        claims = kubectl.json("get", "leases", "-n", namespace, "-l", "camswebhook.io/claim=true")["items"]
        assert len(claims) == 1
        # Clear deletion: CAMS cleared, the finalizer removed.
        kubectl.run("delete", "phonewebhook", "applied", "-n", team, "--timeout=30s")
        assert (simulator.webhook(SPACE, "6581000001") or {}).get("StatusCallbackUrl") == ""
        operator.scrape()
    finally:
        operator.stop()
        simulator.stop()
        kubectl.run("delete", "namespace", team, "--wait=false", check=False)
        subprocess.run(
            [*helm, "uninstall", release, "-n", namespace], env=env, capture_output=True, timeout=120
        )
    log = operator.output()
    assert "Listing the claims failed" not in log
    # kopf's APIForbiddenError, the client's "Reason: Forbidden", the operator's own "HTTP 403" warnings.
    for refusal in ("forbidden", "http 403", "status=403"):
        assert refusal not in log.lower(), f"a request of the operator's was refused:\n{log}"
    assert SECRET not in log
    assert token not in log, "the ServiceAccount's token was logged"
