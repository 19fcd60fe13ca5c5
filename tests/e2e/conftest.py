"""The end-to-end tier's fixtures: a real kube-apiserver + etcd (built and cached by
scripts/controlplane.sh), the CRD applied with kubectl, and a namespace per test.

Set CAMS_E2E_KUBECONFIG to run against an existing cluster (kind, k3d, ...) instead. The tier never
skips: if the control plane cannot start, the tests fail and say why.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from .harness import CRDS, DEFAULT_ACCOUNT, REPO, Kubectl, control_plane
from .helm_cli import Helm
from .system import System, running_system
from .teams import Teams, running_teams

_namespaces = itertools.count(1)


def _with_the_crds(client: Kubectl) -> Kubectl:
    client.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    client.run("wait", "--for=condition=Established", "--timeout=60s", *CRDS)
    client.apply(DEFAULT_ACCOUNT)
    return client


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    existing = os.environ.get("CAMS_E2E_KUBECONFIG")
    with (
        nullcontext(Kubectl(Path(existing)))
        if existing
        else control_plane(tmp_path_factory.mktemp("controlplane")) as client
    ):
        yield _with_the_crds(client)


@pytest.fixture(scope="session")
def oldest_kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """A control plane of the oldest Kubernetes the chart supports (scripts/controlplane.sh start-oldest),
    with the CRDs applied: always started here, CAMS_E2E_KUBECONFIG or not."""
    with control_plane(tmp_path_factory.mktemp("oldest"), oldest=True) as client:
        yield _with_the_crds(client)


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """helm, built from the Go module proxy and cached by scripts/gotools.sh."""
    script = REPO / "scripts" / "gotools.sh"
    subprocess.run([str(script), "build"], check=True, timeout=1800)
    bin_dir = subprocess.run([str(script), "bin-dir"], check=True, capture_output=True, text=True).stdout
    return Path(bin_dir.strip()) / "helm"


@pytest.fixture
def helm(kubectl: Kubectl, helm_bin: Path, tmp_path: Path) -> Helm:
    return Helm(helm_bin, kubectl.kubeconfig, tmp_path / "helm")


@pytest.fixture
def system(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[System]:
    """The operator and the simulator of tests/e2e/system.py, on the test's namespace."""
    yield from running_system(kubectl, namespace, tmp_path)


@pytest.fixture
def teams(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Teams]:
    """Two teams on one account, the operator watching both (tests/e2e/teams.py)."""
    yield from running_teams(kubectl, namespace, tmp_path)


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"e2e-{os.getpid()}-{next(_namespaces)}"
    kubectl.run("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def promtool_bin() -> Path:
    """promtool, built from the Go module proxy (Prometheus's own module) and cached by scripts/gotools.sh."""
    script = REPO / "scripts" / "gotools.sh"
    subprocess.run([str(script), "build"], check=True, timeout=1800)
    path = subprocess.run([str(script), "promtool"], check=True, capture_output=True, text=True).stdout
    return Path(path.strip())
