"""The README's quick start, block by block as a reader pastes them, on a real API server.

Step 2 (the demo against the simulator) runs on a control plane of its own, as on a fresh kind cluster: the
operator and the simulator on this machine, the samples applied, three PhoneWebhooks Ready and one refused.
Step 3 (in the cluster): the CRDs, the namespace and the Secret, then the chart with the image a reader
built and loaded, then the account and the number. What a control plane without a kubelet and a real CAMS
cannot show, and is not checked here: `docker build` and `kind load` (no Docker engine: the image's install
steps run in tests/e2e/test_image_install.py), the pod starting, and the number Ready against real CAMS
(the same objects reach Ready against the simulator in the rest of the tier)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .docs import block, pasted
from .harness import Kubectl, control_plane
from .helm_cli import Helm

DOC, TEST = "README.md", "tests/e2e/test_doc_readme.py"
KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-readme", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "readme-secret"}


def test_the_quick_start_marks_what_a_test_pastes() -> None:
    assert len(pasted(DOC, TEST)) == 3


def test_step_2_the_demo_on_an_existing_cluster_makes_phonewebhooks_ready(helm: Helm, tmp_path: Path) -> None:
    with control_plane(tmp_path / "fresh") as fresh:
        reader = Helm(helm.binary, fresh.kubeconfig, tmp_path / "helm")
        out = reader.shell(block(DOC, TEST, "scripts/demo.sh"), timeout=600).stdout
        rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("default ")}
        assert {n: rows[n][4:6] for n in ("support-line", "sales-line", "alerts-line")} == {
            n: ["True", "Applied"] for n in ("support-line", "sales-line", "alerts-line")
        }, out
        assert rows["other-team-line"][4:6] == ["False", "SpaceNotAllowed"], out
        assert "demo: stopped" in out
        assert fresh.json("get", "pwh", "-A")["items"], "the demo's objects are on the reader's cluster"


def test_step_3_installs_the_chart_with_the_loaded_image_and_the_objects_are_accepted(
    helm: Helm, kubectl: Kubectl
) -> None:
    objects = yaml.safe_load_all(block(DOC, TEST, "kind: PhoneWebhook"))
    try:
        helm.shell(block(DOC, TEST, "helm install"), env=KEYS)
        deployment = kubectl.json("get", "deployment", "cams-webhook-operator", "-n", "cams-system")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert (container["image"], container["imagePullPolicy"]) == ("cams-webhook-operator:dev", "Never")
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert refs == {"cams-operator-credentials"}
        secret = kubectl.json("get", "secret", "cams-operator-credentials", "-n", "cams-system")
        assert set(secret["data"]) == {"accessKeyId", "accessKeySecret"}
        kubectl.apply_objects(*objects)  # the API server accepts the account and the number as written
        stored = kubectl.json("get", "pwh", "support-line", "-n", "messaging")
        assert stored["spec"]["phoneNumber"] == "8613800001234"
    finally:
        helm.shell("helm uninstall cams-webhook-operator -n cams-system || true", check=False)
        kubectl.run("delete", "clustercamsaccount", "operator-identity", "--ignore-not-found", check=False)
        kubectl.delete_namespace("messaging")
        kubectl.delete_namespace("cams-system")
