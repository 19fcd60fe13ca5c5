"""The README's helm and kubectl commands, pasted into a shell as a reader would, against the real API
server: every block marked for this test runs as written, and does what the README says."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from .harness import REPO, Kubectl

MARKER = "<!-- pasted into a shell by tests/e2e/test_readme_commands.py -->"
Shell = Callable[..., subprocess.CompletedProcess[str]]
RELEASE, NAMESPACE = "cams-webhook-operator", "cams-system"


def _blocks() -> list[str]:
    """The sh blocks that follow the marker, as a reader would copy them (indentation removed)."""
    readme = (REPO / "README.md").read_text()
    found = re.findall(re.escape(MARKER) + r"\s*```sh\n(.*?)```", readme, flags=re.DOTALL)
    return [re.sub(r"^ {3}", "", block, flags=re.MULTILINE) for block in found]


@pytest.fixture
def shell(kubectl: Kubectl, helm_bin: Path, tmp_path: Path) -> Iterator[Shell]:
    env = {
        **os.environ,
        "PATH": f"{helm_bin.parent}:{os.environ['PATH']}",
        "KUBECONFIG": str(kubectl.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }

    def run(script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, f"{script}\n--- failed:\n{result.stdout}\n{result.stderr}"
        return result

    yield run
    run(f"helm uninstall {RELEASE} -n {NAMESPACE} || true", check=False)


def test_the_readme_marks_its_helm_and_kubectl_commands() -> None:
    blocks = _blocks()
    assert len(blocks) == 3, blocks
    assert any("--force-conflicts" in block for block in blocks)


def test_the_plain_helm_install_works_as_pasted(shell: Shell, kubectl: Kubectl) -> None:
    (install,) = [b for b in _blocks() if "existingSecret" in b]
    shell(install)
    deployment = kubectl.json("get", "deployment", RELEASE, "-n", NAMESPACE)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets == {"cams-operator-credentials"}


def test_the_rrsa_install_sets_the_annotation_and_names_the_service_account(
    shell: Shell, kubectl: Kubectl
) -> None:
    (install,) = [b for b in _blocks() if "role-name" in b]
    out = shell(install).stdout
    # The name the README tells people to put in the trust policy is the one the chart created.
    assert re.search(rf"^{RELEASE}\s", out, flags=re.MULTILINE), out
    account = kubectl.json("get", "serviceaccount", RELEASE, "-n", NAMESPACE)
    assert account["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"] == "cams-operator"
    deployment = kubectl.json("get", "deployment", RELEASE, "-n", NAMESPACE)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["pod-identity.alibabacloud.com/injection"] == "on"


def test_the_crd_upgrade_command_works_where_helm_created_the_crd(shell: Shell, tmp_path: Path) -> None:
    """Helm owns the fields of a CRD it created; a server-side apply that changes them is a conflict unless
    forced. Shown on a copy of the CRD under another group, so the suite's own CRD is left alone."""
    (upgrade,) = [b for b in _blocks() if "--force-conflicts" in b]
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
    shell(f"helm install readme-crd {chart} -n default")
    try:
        refused = shell(f"kubectl apply --server-side -f {newer}/", check=False)
        assert refused.returncode != 0
        assert "conflict" in refused.stderr.lower(), refused.stderr
        shell(upgrade.replace("helm/cams-webhook-operator/crds/", f"{newer}/"))
        names = shell(f"kubectl get crd phonewebhooks.{GROUP} -o jsonpath='{{.spec.names.shortNames}}'")
        assert "phwh" in names.stdout
    finally:
        shell(f"helm uninstall readme-crd -n default; kubectl delete crd phonewebhooks.{GROUP}", check=False)


GROUP = "readme.camswebhook.io"
PLURAL_FILE = "phonewebhooks.camswebhook.io.yaml"
