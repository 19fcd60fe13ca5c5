"""The Helm chart: lint, render, server-side dry-run of everything rendered, a real install, and the
operator's ServiceAccount allowed exactly what it needs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
    if values:
        assert "poddisruptionbudget.policy" in kinds
        assert "clusterrole.rbac.authorization.k8s.io" not in kinds, (
            "watched namespaces: no cluster-wide rights"
        )
        assert "pod-identity.alibabacloud.com/role-name: cams-webhook-operator" in rendered
    else:
        assert "clusterrole.rbac.authorization.k8s.io" in kinds
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
    assert can("watch", "secrets", "-n", "anywhere")
    assert can("create", "events", "-n", "anywhere")
    assert can("update", "leases.coordination.k8s.io", "-n", namespace)
    assert not can("update", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can("delete", "phonewebhooks.camswebhook.io", "-n", "anywhere")
    assert not can("update", "secrets", "-n", "anywhere")
    assert not can("list", "pods", "-n", namespace)
    _helm(helm, "uninstall", "cwo", "-n", namespace)
