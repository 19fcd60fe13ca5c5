"""The operator run as the chart's ServiceAccount and nothing else: the chart is installed, a token is
minted for its ServiceAccount (`kubectl create token`), and the operator's process gets a kubeconfig that
holds only that token. The whole lifecycle works (apply, a refusal, drift, Clear deletion, the leader Lease,
an account's status), and no request of the operator's is refused: the chart's RBAC is sufficient, and the
`can-i` checks of test_helm.py show it is minimal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import Kubectl, SimulatorProcess, simulator_in, start_operator, wait_for
from .helm_cli import Helm
from .manifests import cams_account, condition, key_secret, one_account, phone_webhook

CHART = Path(__file__).resolve().parents[2] / "helm" / "cams-webhook-operator"
SECRET = "chart-identity-secret-Jx81"
SPACE = "space-chart"
NUMBER = "6581000001"


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


def _verdict(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    """The reason of the object's Ready or Stalled condition, whichever is True."""
    obj = kubectl.json("get", "phonewebhook", name, "-n", namespace)
    held = [condition(obj, kind) for kind in ("Ready", "Stalled")]
    return next((c["reason"] for c in held if c and c["status"] == "True"), None)


def _team_objects(team: str) -> list[dict[str, Any]]:
    """A team's key and account, an object that uses it and one whose account does not exist; both Clear,
    read every two seconds."""
    objects = [
        phone_webhook(
            name,
            team,
            annotations={"camswebhook.io/drift-check-interval": "2s"},
            custSpaceId=SPACE,
            phoneNumber=number,
            statusCallbackUrl=f"https://{name}.example/s",
            deletionPolicy="Clear",
            accountRef={"kind": "CamsAccount", "name": account},
        )
        for name, number, account in (("applied", NUMBER, "team"), ("refused", "6581000002", "missing"))
    ]
    return [
        key_secret("team-key", team, "LTAI-chart", SECRET),
        cams_account("team", team, credentials={"secretRef": {"name": "team-key"}}),
        *objects,
    ]


@pytest.mark.skipif(
    bool(os.environ.get("CAMS_E2E_KUBECONFIG")),
    reason="installs the chart cluster-wide in the local control plane",
)
@pytest.mark.parametrize("listed", [False, True], ids=["cluster-wide", "listed-namespaces"])
def test_the_operator_works_with_only_the_charts_rbac(
    helm: Helm, kubectl: Kubectl, namespace: str, tmp_path: Path, listed: bool
) -> None:
    team = f"{namespace}-team"
    kubectl.run("create", "namespace", team)
    release = f"id{int(listed)}"
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        *(["--set", f"watchNamespaces={{{team}}}"] if listed else []),
    )
    service_account = f"{release}-cams-webhook-operator"
    token = kubectl.run(
        "create", "token", service_account, "-n", namespace, "--duration", "1h"
    ).stdout.strip()
    simulator = simulator_in(tmp_path, one_account("LTAI-chart", SECRET, SPACE))
    operator = None
    try:
        operator = start_operator(
            kubeconfig=_kubeconfig_with_token(kubectl, token, tmp_path / "kubeconfig"),
            endpoint=simulator.endpoint,
            namespace=[team] if listed else [],
            operator_namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={"CAMS_LEADER_ELECTION_ID": service_account, "CAMS_MIN_DRIFT_INTERVAL_SECONDS": "1"},
        )
        kubectl.apply(yaml.safe_dump_all(_team_objects(team)))
        _the_lifecycle_works(kubectl, simulator, team)
        # The leader Lease and the claim are the operator's, in the release namespace.
        assert kubectl.json("get", "lease", service_account, "-n", namespace)["spec"]["holderIdentity"]
        assert kubectl.claim_holders(namespace) == [f"{team}/applied"]
        # Clear deletion: CAMS cleared, the finalizer removed.
        kubectl.run("delete", "phonewebhook", "applied", "-n", team, "--timeout=30s")
        assert (simulator.webhook(SPACE, NUMBER) or {}).get("StatusCallbackUrl") == ""
        operator.scrape()
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()
        kubectl.run("delete", "namespace", team, "--wait=false", check=False)
        helm("uninstall", release, "-n", namespace, check=False)
    _no_request_was_refused(operator.output(), token)


def _the_lifecycle_works(kubectl: Kubectl, simulator: SimulatorProcess, team: str) -> None:
    """Applied, refused for its missing account, the account's status written, a drift reverted."""
    wait_for(lambda: _verdict(kubectl, team, "applied") == "Applied", timeout=60, what="Applied")
    wait_for(lambda: _verdict(kubectl, team, "refused") == "AccountNotFound", what="AccountNotFound")
    account = kubectl.json("get", "camsaccount", "team", "-n", team)
    assert account["status"]["conditions"][0]["status"] == "True", "the account's status is written"
    simulator.set_webhook(SPACE, NUMBER, StatusCallbackUrl="https://console.example")
    wait_for(
        lambda: (
            (simulator.webhook(SPACE, NUMBER) or {}).get("StatusCallbackUrl") == "https://applied.example/s"
        ),
        timeout=30,
        what="the drift reverted",
    )


def _no_request_was_refused(log: str, token: str) -> None:
    assert "Listing the claims failed" not in log
    # kopf's APIForbiddenError, the client's "Reason: Forbidden", the operator's own "HTTP 403" warnings.
    for refusal in ("forbidden", "http 403", "status=403"):
        assert refusal not in log.lower(), f"a request of the operator's was refused:\n{log}"
    assert SECRET not in log
    assert token not in log, "the ServiceAccount's token was logged"
