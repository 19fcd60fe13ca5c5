"""docs/operations.md's command, pasted as a reader would: monitoring turned on over an install made with a
values file, which keeps its values (`-f`), on a cluster with the Prometheus Operator's CRDs (stood in for
by CRDs of the same names that accept any object: what is checked is what the chart creates)."""

from __future__ import annotations

import json
from pathlib import Path

from .docs import block
from .harness import REPO, Kubectl
from .helm_cli import Helm

DOC, TEST = "docs/operations.md", "tests/e2e/test_doc_operations.py"
NAMESPACE = "cams-system"


def _prometheus_operator_crd(kind: str, plural: str) -> dict[str, object]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": kind, "plural": plural, "listKind": f"{kind}List", "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }


def test_turning_monitoring_on_keeps_the_values_installed_with(
    helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    crds = [
        _prometheus_operator_crd("ServiceMonitor", "servicemonitors"),
        _prometheus_operator_crd("PrometheusRule", "prometheusrules"),
    ]
    kubectl.apply_objects(*crds)
    kubectl.run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    values = tmp_path / "my-values.yaml"  # the reader's, in the directory they paste in
    values.write_text("image: {repository: registry.example.com/platform/cams, tag: '9.9.9'}\n")
    (tmp_path / "helm").symlink_to(REPO / "helm")  # the block names the chart by its path in a checkout
    try:
        helm.shell(
            f"helm install cams-webhook-operator helm/cams-webhook-operator -n {NAMESPACE} "
            "--create-namespace -f my-values.yaml",
            cwd=tmp_path,
        )
        helm.shell(block(DOC, TEST, "helm upgrade --install"), cwd=tmp_path)
        assert kubectl.exists("servicemonitor", "cams-webhook-operator", NAMESPACE)
        assert kubectl.exists("prometheusrule", "cams-webhook-operator", NAMESPACE)
        dashboards = kubectl.json("get", "configmap", "-n", NAMESPACE, "-l", "grafana_dashboard=1")["items"]
        assert dashboards, "the Grafana dashboard's ConfigMap"
        deployment = kubectl.json("get", "deployment", "cams-webhook-operator", "-n", NAMESPACE)
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "registry.example.com/platform/cams:9.9.9", "-f kept the values installed with"
    finally:
        helm.shell(f"helm uninstall cams-webhook-operator -n {NAMESPACE} || true", check=False)
        kubectl.delete_namespace(NAMESPACE)
        for crd in crds:
            kubectl.run("delete", "-f", "-", "--ignore-not-found", stdin=json.dumps(crd), check=False)
