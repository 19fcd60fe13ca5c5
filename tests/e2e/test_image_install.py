"""The Dockerfile's install steps, without Docker: requirements.lock with --require-hashes and the
project's wheel into a clean virtual environment, then the operator started from it as the image's
numeric non-root user, with nothing written to its files."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.releases import current_version, install_like_the_image, run

from .harness import REPO, Kubectl, OperatorProcess, free_port, simulator_in, wait_for
from .manifests import is_ready, one_account, phone_webhook

IMAGE_USER = "65532"


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A folder the image's user can traverse (pytest's own are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="cams-image-"))
    os.chmod(root, 0o755)  # noqa: S103 -- the image's user must read the install, as in the image
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_locked_install_runs_as_non_root_without_writing(
    kubectl: Kubectl, namespace: str, tmp_path: Path, image_root: Path
) -> None:
    root = image_root
    venv = root / "opt-operator"
    install_like_the_image(REPO, venv, root / "dist")
    version = run(venv / "bin" / "cams-webhook-operator", "--version").strip()
    assert version == f"cams-webhook-operator {current_version()}"
    _the_image_ships_no_simulator(root / "dist", venv)

    simulator = simulator_in(tmp_path, one_account("img-key", "img-secret", "img"))
    marker = time.time()
    kubeconfig = _kubeconfig_the_pod_can_read(kubectl, root)
    operator = _operator_as_the_image_user(venv, kubeconfig, namespace, simulator.endpoint, tmp_path)
    operator.start()
    try:
        body = phone_webhook(
            "from-image", namespace, custSpaceId="img", phoneNumber="8613800004321", httpFlag=True
        )
        kubectl.apply(yaml.safe_dump(body))
        wait_for(
            lambda: is_ready(kubectl.json("get", "phonewebhook", "from-image", "-n", namespace)),
            timeout=60,
            what=f"Ready from the locked install:\n{operator.output()}",
        )
    finally:
        operator.stop()
        simulator.stop()
    written = [p for p in venv.rglob("*") if p.stat().st_mtime > marker]
    assert written == [], f"the operator wrote into its install: {written[:5]}"


def _the_image_ships_no_simulator(dist: Path, venv: Path) -> None:
    """Neither its package nor its command (operator/pyproject.toml)."""
    wheel = next(dist.glob("cams_webhook_operator-*.whl"))
    with zipfile.ZipFile(wheel) as built:
        shipped = built.namelist()
    assert any(name.startswith("cams_webhook_operator/engine/") for name in shipped), shipped
    assert not [name for name in shipped if "simulator" in name], shipped
    assert not (venv / "bin" / "cams-simulator").exists()


def _kubeconfig_the_pod_can_read(kubectl: Kubectl, root: Path) -> Path:
    """What the pod can read: a copy of the kubeconfig and its CA, nothing of root's."""
    kube = root / "kube"
    kube.mkdir()
    config = yaml.safe_load(kubectl.kubeconfig.read_text())
    ca = Path(config["clusters"][0]["cluster"]["certificate-authority"])
    shutil.copy(ca, kube / "ca.crt")
    config["clusters"][0]["cluster"]["certificate-authority"] = str(kube / "ca.crt")
    (kube / "config").write_text(yaml.safe_dump(config))
    for path in (kube, kube / "ca.crt", kube / "config"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return kube / "config"


def _operator_as_the_image_user(
    venv: Path, kubeconfig: Path, namespace: str, endpoint: str, tmp_path: Path
) -> OperatorProcess:
    """The installed operator, to be started as the image's numeric user with no home and no bytecode
    writes."""
    return OperatorProcess(
        args=[
            "setpriv", f"--reuid={IMAGE_USER}", f"--regid={IMAGE_USER}", "--clear-groups",
            str(venv / "bin" / "cams-webhook-operator"),
            "--namespace", namespace, "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
        ],
        log=tmp_path / "operator.log",
        env={
            "KUBECONFIG": str(kubeconfig),
            "HOME": "/nonexistent",
            "PYTHONDONTWRITEBYTECODE": "1",
            "CAMS_ENDPOINT": endpoint,
            "ALIBABA_CLOUD_STS_ENDPOINT": endpoint,
            "CAMS_ALLOW_HTTP": "true",
            "CAMS_METRICS_PORT": "0",
            "CAMS_LEADER_ELECTION_ID": f"image-{namespace}",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "img-key",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "img-secret",
        },
    )  # fmt: skip
