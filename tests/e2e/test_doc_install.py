"""docs/install.md's commands, pasted into a shell as a reader would, against the real API server: every
block marked for this test runs as written, and does what the page says. What a control plane without a
kubelet cannot show (the pod starting, its image pulled) is the Deployment's spec here, and the image's
install steps in tests/e2e/test_image_install.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .docs import block, pasted
from .harness import REPO, Kubectl
from .helm_cli import Helm

DOC, TEST = "docs/install.md", "tests/e2e/test_doc_install.py"
RELEASE, NAMESPACE = "cams-webhook-operator", "cams-system"
KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-doc-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "doc-test-secret"}


@pytest.fixture
def reader(helm: Helm, kubectl: Kubectl) -> Iterator[Helm]:
    """helm and kubectl as a reader has them; the release and its namespace removed after."""
    yield helm
    helm.shell(f"helm uninstall {RELEASE} -n {NAMESPACE} --wait || true", check=False)
    kubectl.delete_namespace(NAMESPACE)


def test_the_page_marks_its_commands() -> None:
    blocks = pasted(DOC, TEST)
    assert len(blocks) == 4, blocks


def test_the_crds_apply_as_pasted(reader: Helm, kubectl: Kubectl) -> None:
    reader.shell(block(DOC, TEST, "apply --server-side -f crds/"))
    assert kubectl.exists("crd", "phonewebhooks.camswebhook.io")


def test_the_helm_install_with_the_operators_credentials_works_as_pasted(
    reader: Helm, kubectl: Kubectl
) -> None:
    """The namespace and the Secret come first, so the pod's env can be satisfied when it starts."""
    reader.shell(block(DOC, TEST, "existingSecret"), env=KEYS)
    secret = kubectl.json("get", "secret", "cams-operator-credentials", "-n", NAMESPACE)
    assert set(secret["data"]) == {"accessKeyId", "accessKeySecret"}
    deployment = kubectl.json("get", "deployment", RELEASE, "-n", NAMESPACE)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {"cams-operator-credentials"}


def test_the_rrsa_install_sets_the_annotation_and_names_the_service_account(
    reader: Helm, kubectl: Kubectl
) -> None:
    out = reader.shell(block(DOC, TEST, "role-name")).stdout
    # The name the page tells people to put in the trust policy is the one the chart created.
    assert re.search(rf"^{RELEASE}\s", out, flags=re.MULTILINE), out
    account = kubectl.json("get", "serviceaccount", RELEASE, "-n", NAMESPACE)
    assert account["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"] == "cams-operator"
    deployment = kubectl.json("get", "deployment", RELEASE, "-n", NAMESPACE)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["pod-identity.alibabacloud.com/injection"] == "on"


def test_the_crd_upgrade_command_works_where_helm_created_the_crd(reader: Helm, tmp_path: Path) -> None:
    """Helm owns the fields of a CRD it created; a server-side apply that changes them is a conflict unless
    forced. Shown on a copy of the CRD under another group, so the suite's own CRD is left alone."""
    upgrade = block(DOC, TEST, "--force-conflicts")
    crd = yaml.safe_load((REPO / "helm" / "cams-webhook-operator" / "crds" / PLURAL_FILE).read_text())
    crd["spec"]["group"] = GROUP
    crd["metadata"]["name"] = f"phonewebhooks.{GROUP}"
    chart = tmp_path / "chart"
    (chart / "crds").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: readme-crd\nversion: 0.1.0\n")
    (chart / "crds" / "crd.yaml").write_text(yaml.safe_dump(crd))
    newer = tmp_path / "newer"
    newer.mkdir()
    crd["spec"]["names"]["shortNames"] = ["pwh", "phwh"]  # what a newer release might change
    (newer / "crd.yaml").write_text(yaml.safe_dump(crd))
    reader.shell(f"helm install readme-crd {chart} -n default")
    try:
        refused = reader.shell(f"kubectl apply --server-side -f {newer}/", check=False)
        assert refused.returncode != 0
        assert "conflict" in refused.stderr.lower(), refused.stderr
        reader.shell(upgrade.replace("helm/cams-webhook-operator/crds/", f"{newer}/"))
        names = reader.shell(
            f"kubectl get crd phonewebhooks.{GROUP} -o jsonpath='{{.spec.names.shortNames}}'"
        )
        assert "phwh" in names.stdout
    finally:
        reader.shell(
            f"helm uninstall readme-crd -n default; kubectl delete crd phonewebhooks.{GROUP}", check=False
        )


GROUP = "readme.camswebhook.io"
PLURAL_FILE = "phonewebhooks.camswebhook.io.yaml"
