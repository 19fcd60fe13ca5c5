"""The Helm chart: lint, render, server-side dry-run of everything rendered, a real install, and the
operator's ServiceAccount allowed exactly what it needs."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import REPO, Kubectl, wait_for
from .helm_cli import Helm

CHART = REPO / "helm" / "cams-webhook-operator"
HA_RRSA = CHART / "ci" / "ha-rrsa-values.yaml"


@pytest.fixture(scope="module")
def helm(kubectl: Kubectl, helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_bin, kubectl.kubeconfig, tmp_path_factory.mktemp("helm"))


# helm built from source assumes Kubernetes v1.20 when rendering offline (release builds set it by
# ldflags); render for the version the local control plane runs.
KUBE_VERSION = ("--kube-version", "v1.36.3")


def _helm(helm: Helm, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if args[0] in ("lint", "template"):
        args = (args[0], *KUBE_VERSION, *args[1:])
    return helm(*args, check=check)


@pytest.mark.parametrize("values", [[], ["-f", str(HA_RRSA)]], ids=["defaults", "ha-rrsa"])
def test_chart_lints_and_everything_rendered_is_accepted(
    helm: Helm, kubectl: Kubectl, namespace: str, values: list[str]
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
        _the_ha_rrsa_values_render_as_asked(rendered, kinds, cluster_wide)
    else:
        assert "HTTPS_PROXY" not in rendered
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


def _the_ha_rrsa_values_render_as_asked(rendered: str, kinds: set[str], cluster_wide: set[str]) -> None:
    """ci/ha-rrsa-values.yaml: a PodDisruptionBudget, the dashboard, the NetworkPolicy, spread replicas, an
    image by digest, RBAC for the watched namespaces only, RRSA's label, the egress proxy."""
    assert "poddisruptionbudget.policy" in kinds
    assert "configmap" in kinds, "the dashboard's ConfigMap"
    assert "networkpolicy.networking.k8s.io" in kinds
    pod = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")["spec"]["template"]
    assert pod["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["spec"]["containers"][0]["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert cluster_wide == {
        "clustercamsaccounts",
        "clustercamsaccounts/status",
        "namespaces",
    }, "watched namespaces: nothing namespaced is granted cluster-wide"
    assert "pod-identity.alibabacloud.com/role-name: cams-webhook-operator" in rendered
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy.corp.example:3128"
    no_proxy = env["NO_PROXY"].split(",")
    assert no_proxy[0] == "$(KUBERNETES_SERVICE_HOST)", "the API server is never proxied"
    assert {"100.100.100.200", ".corp.example"} <= set(no_proxy)


def _operator_cluster_role(rendered: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    return next(
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "cwo-cams-webhook-operator"
    )


def test_cluster_accounts_render_from_values_with_the_release_namespace(helm: Helm) -> None:
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


def test_argocd_health_check_renders_the_shipped_lua(helm: Helm) -> None:
    rendered = _helm(helm, "template", "cwo", str(CHART), "--set", "argocdHealthCheck.enabled=true").stdout
    assert "resource.customizations.health.camswebhook.io_PhoneWebhook: |" in rendered
    lua = (CHART / "files" / "argocd-health.lua").read_text()
    assert all(line.strip() in rendered for line in lua.splitlines() if line.strip())


def test_service_monitor_renders_when_asked(helm: Helm) -> None:
    rendered = _helm(
        helm, "template", "cwo", str(CHART), "--set", "metrics.serviceMonitor.enabled=true"
    ).stdout
    assert "kind: ServiceMonitor" in rendered


def test_alerts_and_dashboard_render_as_shipped_when_asked(helm: Helm) -> None:
    """The PrometheusRule carries files/alerts.yaml and the ConfigMap files/dashboard.json, unchanged (not
    through Helm's templating, which would eat their {{ $labels }} and {{ legend }} templates)."""
    rendered = _helm(
        helm,
        "template",
        "cwo",
        str(CHART),
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.prometheusRule.labels.release=prom",
        "--set",
        "grafanaDashboard.enabled=true",
    ).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    rule = documents["PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    dashboard = documents["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(dashboard["data"]["cams-webhook-operator.json"]) == shipped
    default = _helm(helm, "template", "cwo", str(CHART)).stdout
    assert "PrometheusRule" not in default
    assert "grafana_dashboard" not in default


def test_values_schema_refuses_a_bad_value(helm: Helm) -> None:
    result = _helm(helm, "template", "cwo", str(CHART), "--set", "replicaCount=0", check=False)
    assert result.returncode != 0
    assert "replicaCount" in result.stderr
    assert "minimum" in result.stderr


def test_helm_install_and_least_privilege(helm: Helm, kubectl: Kubectl, namespace: str) -> None:
    out = _helm(
        helm, "install", "cwo", str(CHART), "-n", namespace, "--set", "credentials.existingSecret=creds"
    )
    assert "STATUS: deployed" in out.stdout
    assert "kubectl get phonewebhooks" in out.stdout, "NOTES.txt tells the next steps"
    deployment = kubectl.json("get", "deployment", "cwo-cams-webhook-operator", "-n", namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in container["env"]} >= {"CAMS_ENDPOINT", "ALIBABA_CLOUD_ACCESS_KEY_ID"}
    _the_operator_may_do_what_it_needs_and_nothing_more(kubectl, namespace)
    _the_plan_role_reads_and_writes_nothing(kubectl, namespace)
    _a_namespace_editor_may_manage_its_objects_only(kubectl, namespace)
    _helm(helm, "uninstall", "cwo", "-n", namespace)


def _can(kubectl: Kubectl, who: str, *args: str) -> bool:
    return kubectl.run("auth", "can-i", "--as", who, *args, check=False).stdout.strip() == "yes"


def _the_operator_may_do_what_it_needs_and_nothing_more(kubectl: Kubectl, namespace: str) -> None:
    can = partial(_can, kubectl, f"system:serviceaccount:{namespace}:cwo-cams-webhook-operator")
    assert can("patch", "phonewebhooks.camswebhook.io/status", "-n", "anywhere")
    assert can("watch", "camsaccounts.camswebhook.io", "-n", "anywhere")
    assert can("watch", "clustercamsaccounts.camswebhook.io")
    assert can("patch", "clustercamsaccounts.camswebhook.io", "--subresource=status")
    assert can("watch", "namespaces")
    # kopf's scanning is off (no namespace patterns in the chart): CRDs are neither watched nor changed.
    for verb in ("list", "watch", "update"):
        assert not can(verb, "customresourcedefinitions.apiextensions.k8s.io")
    assert can("get", "secrets", "-n", "anywhere")
    for verb in ("list", "watch"):  # Secrets by name only: none listed or watched, not even its own
        for where in ("anywhere", namespace):
            assert not can(verb, "secrets", "-n", where), f"{verb} secrets in {where}"
    assert not can("update", "clustercamsaccounts.camswebhook.io")
    assert not can("create", "camsaccounts.camswebhook.io", "-n", "anywhere")
    assert can("create", "events", "-n", "anywhere")
    assert can("update", "leases.coordination.k8s.io", "-n", namespace)
    assert can("list", "leases.coordination.k8s.io", "-n", namespace), "the claims, listed once when leading"
    assert can("delete", "leases.coordination.k8s.io", "-n", namespace), "claims nobody manages any more"
    assert not can("delete", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can("update", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can("delete", "phonewebhooks.camswebhook.io", "-n", "anywhere")
    assert not can("update", "secrets", "-n", "anywhere")
    assert not can("list", "pods", "-n", namespace)


def _a_namespace_editor_may_manage_its_objects_only(kubectl: Kubectl, namespace: str) -> None:
    """The chart's aggregated roles: a namespace editor (the built-in `edit` role, which
    kube-controller-manager aggregates the chart's rules into) may manage PhoneWebhooks and CamsAccounts,
    never a ClusterCamsAccount."""
    kubectl.run(
        "create", "rolebinding", "alice-edit", "-n", namespace, "--user", "alice", "--clusterrole", "edit"
    )
    edit_role = kubectl.json("get", "clusterrole", "cwo-cams-webhook-operator-edit")
    assert edit_role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    alice = partial(_can, kubectl, "alice")
    wait_for(
        lambda: alice("create", "phonewebhooks.camswebhook.io", "-n", namespace),
        what="the chart's rules aggregated into edit",
    )
    assert alice("delete", "camsaccounts.camswebhook.io", "-n", namespace)
    assert not alice("create", "clustercamsaccounts.camswebhook.io")
    assert not alice("create", "phonewebhooks.camswebhook.io", "-n", "anywhere")


def test_the_notes_say_how_to_build_and_load_the_image_and_warn_when_it_cannot_be_pulled(
    helm: Helm, kubectl: Kubectl, namespace: str
) -> None:
    """At install, with the default image (no release may be published yet), NOTES say how to build and load
    it; on an upgrade over a pod that cannot pull its image, they say that first. No kubelet here: the pod's
    ErrImagePull is written into its status as a kubelet would."""
    installed = _helm(helm, "install", "cwo", str(CHART), "-n", namespace).stdout
    assert "Image: ghcr.io/cams-webhook-operator/cams-webhook-operator:" in installed
    assert "kind load docker-image cams-webhook-operator:dev" in installed
    assert "WARNING" not in installed
    own = _helm(helm, "upgrade", "cwo", str(CHART), "-n", namespace, "--set", "image.repository=r.example/op")
    assert "docker build" not in own.stdout, "an image of one's own needs no build hint"
    _a_pod_that_cannot_pull(kubectl, namespace, release="cwo")
    again = _helm(helm, "upgrade", "cwo", str(CHART), "-n", namespace, "--reuse-values").stdout
    assert "WARNING: the operator's pod cannot pull its image, r.example/op:" in again
    assert "kind load docker-image cams-webhook-operator:dev" in again
    _helm(helm, "uninstall", "cwo", "-n", namespace)


def _a_pod_that_cannot_pull(kubectl: Kubectl, namespace: str, release: str) -> None:
    """A pod of the release whose status says ErrImagePull, as a kubelet would write it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "pull",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/instance": release},
        },
        "spec": {"containers": [{"name": "operator", "image": "r.example/op:0.0.0"}]},
    }
    kubectl.apply_objects(pod)
    waiting = {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
    container = {"name": "operator", "image": "r.example/op:0.0.0", "imageID": "", "ready": False}
    status = {"status": {"containerStatuses": [{**container, "restartCount": 0, "state": waiting}]}}
    patch = ["patch", "pod", "pull", "-n", namespace, "--subresource=status", "--type=merge"]
    kubectl.run(*patch, "-p", json.dumps(status))


def _the_plan_role_reads_and_writes_nothing(kubectl: Kubectl, namespace: str) -> None:
    """The chart's ClusterRole for `plan --cluster`, bound to a CI identity: what the plan reads, no write."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"plan-{namespace}"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cwo-cams-webhook-operator-plan",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": namespace}],
    }
    kubectl.apply_objects(binding)
    try:
        can = partial(_can, kubectl, f"system:serviceaccount:{namespace}:ci")
        for resource in ("phonewebhooks", "camsaccounts", "clustercamsaccounts"):
            assert can("list", f"{resource}.camswebhook.io", "-A")
            assert not can("patch", f"{resource}.camswebhook.io", "-A")
        assert can("get", "secrets", "-n", "anywhere")
        assert not can("list", "secrets", "-n", "anywhere")
        assert can("list", "leases.coordination.k8s.io", "-n", namespace)
        assert not can("create", "leases.coordination.k8s.io", "-n", namespace)
        assert not can("patch", "phonewebhooks.camswebhook.io/status", "-n", "anywhere")
    finally:
        kubectl.run("delete", "clusterrolebinding", f"plan-{namespace}", check=False)
