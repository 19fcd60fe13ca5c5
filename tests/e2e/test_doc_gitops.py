"""docs/gitops.md's SOPS step, pasted as a reader would in a repository whose `.sops.yaml` is the page's
(with an age key made for the test): the Secret is encrypted as YAML, its URL unreadable in Git, and what
Flux would decrypt is the Secret the PhoneWebhook names, accepted by the API server. sops and age-keygen
are built from their Go modules (scripts/gotools.sh)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import yaml

from .docs import block
from .harness import REPO, Kubectl
from .helm_cli import Helm

DOC, TEST = "docs/gitops.md", "tests/e2e/test_doc_gitops.py"
TOKEN = "token=..."


def _sops_dir() -> Path:
    script = REPO / "scripts" / "gotools.sh"
    subprocess.run([str(script), "build"], check=True, timeout=1800)
    found = subprocess.run([str(script), "sops-dir"], check=True, capture_output=True, text=True).stdout
    return Path(found.strip())


def test_the_sops_step_encrypts_the_secret_that_flux_decrypts(
    helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    tools = _sops_dir()
    key = tmp_path / "age.key"
    subprocess.run([str(tools / "age-keygen"), "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        [str(tools / "age-keygen"), "-y", str(key)], check=True, capture_output=True, text=True
    )
    rules = block(DOC, TEST, "creation_rules").replace("age1...", public.stdout.strip())
    (tmp_path / ".sops.yaml").write_text(rules)
    path = f"{tools}:{helm.binary.parent}"
    helm.shell(block(DOC, TEST, "sops --encrypt"), cwd=tmp_path, env={"PATH": f"{path}:{os.environ['PATH']}"})
    committed = (tmp_path / "support-line-hooks.sops.yaml").read_text()
    assert TOKEN not in committed
    assert (
        base64.b64encode(b"https://hooks.example.com/cams/inbound?" + TOKEN.encode()).decode()
        not in committed
    )
    stored = yaml.safe_load(committed)
    assert (stored["kind"], stored["metadata"]["name"]) == ("Secret", "support-line-hooks")
    assert stored["data"]["inbound"].startswith("ENC[AES256_GCM,")
    decrypted = subprocess.run(
        [str(tools / "sops"), "--decrypt", "support-line-hooks.sops.yaml"],
        cwd=tmp_path,
        env={"SOPS_AGE_KEY_FILE": str(key)},
        check=True,
        capture_output=True,
        text=True,
    )
    secret = yaml.safe_load(decrypted.stdout)
    assert (
        base64.b64decode(secret["data"]["inbound"]).decode()
        == f"https://hooks.example.com/cams/inbound?{TOKEN}"
    )
    kubectl.run("create", "namespace", "messaging", check=False)
    try:
        kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=decrypted.stdout)
    finally:
        kubectl.delete_namespace("messaging")
