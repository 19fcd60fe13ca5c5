"""The Helm chart: lint, render, server-side dry-run of everything rendered, a real install, and the
operator's ServiceAccount allowed exactly what it needs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import REPO, Kubectl

CHART = REPO / "helm" / "cams-webhook-operator"
HA_RRSA = CHART / "ci" / "ha-rrsa-values.yaml"


@pytest.fixture(scope="module")
def helm(kubectl: Kubectl, helm_bin: Path) -> list[str]:
    return [str(helm_bin), "--kubeconfig", str(kubectl.kubeconfig)]


# helm built from source assumes Kubernetes v1.20 when rendering offline (release builds set it by
# ldflags); render for the version the local control plane runs.
KUBE_VERSION = ("--kube-version", "v1.36.3")


def _helm(helm: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if args[0] in ("lint", "template"):
        args = (args[0], *KUBE_VERSION, *args[1:])
    result = subprocess.run(
        [*helm, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/helm-cache",
            "HELM_CONFIG_HOME": "/tmp/helm-config",
            "HELM_DATA_HOME": "/tmp/helm-data",
        },
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("values", [[], ["-f", str(HA_RRSA)]], ids=["defaults", "ha-rrsa"])
def test_chart_lints_and_everything_rendered_is_accepted(
    helm: list[str], kubectl: Kubectl, namespace: str, values: list[str]
) -> None:
    assert "0 chart(s) failed" in _helm(helm, "lint", "--strict", str(CHART), *values).stdout
    rendered = _helm(helm, "template", "cwo", str(CHART), "-n", namespace, *values).stdout
    for watched in ("team-a", "team-b"):
        kubectl.run("create", "namespace", watched, check=False)
    applied = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    kinds = {line.split("/", 1)[0] for line in applied.stdout.splitlines()}
    expected = {
        "serviceaccount",
        "deployment.apps",
        "service",
        "role.rbac.authorization.k8s.io",
        "rolebinding.rbac.authorization.k8s.io",
    }
    assert expected <= kinds, applied.stdout
    cluster_rules = _operator_cluster_role(rendered)["rules"]
    cluster_wide = {resource for rule in cluster_rules for resource in rule["resources"]}
    if values:
        assert "poddisruptionbudget.policy" in kinds
        assert cluster_wide == {"clustercamsaccounts", "clustercamsaccounts/status", "namespaces"}, (
            "watched namespaces: nothing namespaced is granted cluster-wide"
        )
        assert "pod-identity.alibabacloud.com/role-name: cams-webhook-operator" in rendered
    else:
        assert {"phonewebhooks", "camsaccounts", "secrets", "clustercamsaccounts"} <= cluster_wide
    secret_verbs = {v for rule in cluster_rules if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert secret_verbs <= {"get"}, "Secrets are got by name, never listed or watched"
    for secure in (
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "type: RuntimeDefault",
        "- ALL",
        "allowPrivilegeEscalation: false",
        "livenessProbe:",
        "readinessProbe:",
    ):
        assert secure in rendered


def _operator_cluster_role(rendered: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    return next(
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "cwo-cams-webhook-operator"
    )


def test_cluster_accounts_render_from_values_with_the_release_namespace(helm: list[str]) -> None:
    rendered = _helm(
        helm,
        "template",
        "cwo",
        str(CHART),
        "-n",
        "ops",
        "--set",
        "clusterAccounts[0].name=platform",
        "--set",
        "clusterAccounts[0].default=true",
        "--set",
        "clusterAccounts[0].credentials.secretRef.name=platform-key",
        "--set",
        "clusterAccounts[0].namespaces={team-a}",
    ).stdout
    account = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterCamsAccount")
    assert account["metadata"]["annotations"] == {"camswebhook.io/default-account": "true"}
    assert account["spec"] == {
        "credentials": {"secretRef": {"name": "platform-key", "namespace": "ops"}},
        "namespaces": ["team-a"],
    }
    assert "kind: ClusterCamsAccount" not in _helm(helm, "template", "cwo", str(CHART)).stdout, (
        "none by default"
    )


def test_argocd_health_check_renders_the_shipped_lua(helm: list[str]) -> None:
    rendered = _helm(helm, "template", "cwo", str(CHART), "--set", "argocdHealthCheck.enabled=true").stdout
    assert "resource.customizations.health.camswebhook.io_PhoneWebhook: |" in rendered
    lua = (CHART / "files" / "argocd-health.lua").read_text()
    assert all(line.strip() in rendered for line in lua.splitlines() if line.strip())


def test_service_monitor_renders_when_asked(helm: list[str]) -> None:
    rendered = _helm(
        helm, "template", "cwo", str(CHART), "--set", "metrics.serviceMonitor.enabled=true"
    ).stdout
    assert "kind: ServiceMonitor" in rendered


def test_values_schema_refuses_a_bad_value(helm: list[str]) -> None:
    result = _helm(helm, "template", "cwo", str(CHART), "--set", "replicaCount=0", check=False)
    assert result.returncode != 0
    assert "replicaCount" in result.stderr
    assert "minimum" in result.stderr


def test_helm_install_and_least_privilege(helm: list[str], kubectl: Kubectl, namespace: str) -> None:
    out = _helm(
        helm, "install", "cwo", str(CHART), "-n", namespace, "--set", "credentials.existingSecret=creds"
    )
    assert "STATUS: deployed" in out.stdout
    assert "kubectl get phonewebhooks" in out.stdout, "NOTES.txt tells the next steps"
    deployment = kubectl.json("get", "deployment", "cwo-cams-webhook-operator", "-n", namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in container["env"]} >= {"CAMS_ENDPOINT", "ALIBABA_CLOUD_ACCESS_KEY_ID"}
    account = f"system:serviceaccount:{namespace}:cwo-cams-webhook-operator"

    def can(*args: str) -> bool:
        return kubectl.run("auth", "can-i", "--as", account, *args, check=False).stdout.strip() == "yes"

    assert can("patch", "phonewebhooks.camswebhook.io/status", "-n", "anywhere")
    assert can("watch", "camsaccounts.camswebhook.io", "-n", "anywhere")
    assert can("watch", "clustercamsaccounts.camswebhook.io")
    assert can("patch", "clustercamsaccounts.camswebhook.io", "--subresource=status")
    assert can("watch", "namespaces")
    assert can("get", "secrets", "-n", "anywhere")
    for verb in ("list", "watch"):  # Secrets by name only: none listed or watched, not even its own
        for where in ("anywhere", namespace):
            assert not can(verb, "secrets", "-n", where), f"{verb} secrets in {where}"
    assert not can("update", "clustercamsaccounts.camswebhook.io")
    assert not can("create", "camsaccounts.camswebhook.io", "-n", "anywhere")
    assert can("create", "events", "-n", "anywhere")
    assert can("update", "leases.coordination.k8s.io", "-n", namespace)
    assert not can("update", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can("delete", "phonewebhooks.camswebhook.io", "-n", "anywhere")
    assert not can("update", "secrets", "-n", "anywhere")
    assert not can("list", "pods", "-n", namespace)
    # The chart's aggregated roles: a namespace editor may manage PhoneWebhooks and CamsAccounts, never a
    # ClusterCamsAccount (kube-controller-manager would aggregate them into edit; the local control plane
    # has none, so the role is bound directly here).
    kubectl.run(
        "create", "rolebinding", "alice-edit", "-n", namespace, "--user", "alice",
        "--clusterrole", "cwo-cams-webhook-operator-edit",
    )  # fmt: skip
    edit_role = kubectl.json("get", "clusterrole", "cwo-cams-webhook-operator-edit")
    assert edit_role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"

    def alice(*args: str) -> bool:
        return kubectl.run("auth", "can-i", "--as", "alice", *args, check=False).stdout.strip() == "yes"

    assert alice("create", "phonewebhooks.camswebhook.io", "-n", namespace)
    assert alice("delete", "camsaccounts.camswebhook.io", "-n", namespace)
    assert not alice("create", "clustercamsaccounts.camswebhook.io")
    assert not alice("create", "phonewebhooks.camswebhook.io", "-n", "anywhere")
    _helm(helm, "uninstall", "cwo", "-n", namespace)
