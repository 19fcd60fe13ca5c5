"""Real parts for the end-to-end tier: the local control plane, the simulator and the operator as the
processes a user runs, driven with kubectl."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from .manifests import is_ready

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")
CRDS = [f"crd/{plural}.camswebhook.io" for plural in ("phonewebhooks", "camsaccounts", "clustercamsaccounts")]
# The operator never uses its own identity implicitly: the tiers that run it with an AccessKey of its own
# (or an RRSA role) reach it through this default account, as a platform team would set one up. The
# tenancy tests take the default mark away for their run.
DEFAULT_ACCOUNT_NAME = "e2e-operator-identity"
DEFAULT_ACCOUNT = f"""
apiVersion: camswebhook.io/v1alpha1
kind: ClusterCamsAccount
metadata:
  name: {DEFAULT_ACCOUNT_NAME}
  annotations: {{camswebhook.io/default-account: "true"}}
spec:
  credentials: {{operatorIdentity: {{}}}}
  namespaceSelector: {{}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Kubectl:
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, manifest: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", stdin=manifest, check=check)

    def apply_objects(self, *objects: Mapping[str, Any]) -> None:
        self.apply(yaml.safe_dump_all([dict(o) for o in objects]))

    def phone_webhooks(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("get", "phonewebhooks", "-n", namespace)["items"]
        return items

    def all_ready(self, namespace: str, count: int, generation: int | None = None) -> bool:
        """Whether `namespace` holds `count` PhoneWebhooks, all Ready (for `generation`, when given)."""
        items = self.phone_webhooks(namespace)
        return len(items) == count and all(is_ready(item, generation) for item in items)

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        where = ("-n", namespace) if namespace else ()
        return self.run("get", kind, name, *where, check=False).returncode == 0

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and wait until it is gone (`kubectl delete --wait` may return while the
        namespace controller still empties it, and a namespace being terminated refuses new objects)."""
        self.run("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)
        wait_for(lambda: not self.exists("namespace", name), timeout=120, what=f"namespace {name} gone")

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Events about the object `name` of `namespace`."""
        items: list[dict[str, Any]] = self.json(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        return items

    def claim_holders(self, namespace: str) -> list[str]:
        """Who holds each claim Lease in the operator's `namespace` (namespace/name of a PhoneWebhook)."""
        leases = self.json("get", "leases", "-n", namespace, "-l", "camswebhook.io/claim=true")["items"]
        return sorted(lease["spec"]["holderIdentity"] for lease in leases)


@contextmanager
def control_plane(state_dir: Path, *, oldest: bool = False) -> Iterator[Kubectl]:
    """A local kube-apiserver, etcd and kube-controller-manager (scripts/controlplane.sh), stopped after;
    `oldest`: of the oldest Kubernetes the chart supports."""
    script = REPO / "scripts" / "controlplane.sh"
    try:
        started = subprocess.run(
            [str(script), "start-oldest" if oldest else "start", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert started.returncode == 0, f"the local control plane did not start:\n{started.stderr}"
        yield Kubectl(Path(started.stdout.strip().splitlines()[-1]))
    finally:
        subprocess.run([str(script), "stop", str(state_dir)], check=False, timeout=60)


@cache
def _go_tools() -> Path:
    script = REPO / "scripts" / "gotools.sh"
    subprocess.run([str(script), "build"], check=True, timeout=1800)
    bin_dir = subprocess.run([str(script), "bin-dir"], capture_output=True, text=True, check=True).stdout
    return Path(bin_dir.strip())


def kstatus(kubectl: Kubectl, namespace: str, name: str) -> str:
    """kstatus's verdict on a PhoneWebhook (Current, InProgress, Failed, ...), as Flux and Helm compute it,
    by the Go helper built from sigs.k8s.io/cli-utils (scripts/gotools.sh)."""
    result = subprocess.run(
        [str(_go_tools() / "kstatus"), namespace, name],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\t", 1)[0]


@dataclass
class Process:
    """A child process with its output in a log file; stopped the way Kubernetes stops a pod."""

    args: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.args, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        handle.close()
        return self

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class SimulatorProcess(Process):
    port: int = 0
    tls_cert: Path | None = None  # served over https with this certificate

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls_cert else 'http'}://127.0.0.1:{self.port}"

    def _open(self, request: str | urllib.request.Request) -> Any:
        context = ssl.create_default_context(cafile=str(self.tls_cert)) if self.tls_cert else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        return self._open(f"{self.endpoint}{path}")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        return self._open(request)

    def calls_of(self, action: str) -> list[dict[str, Any]]:
        """Every call of `action` the simulator answered, in order."""
        return [c for c in self.get("/_simulator/calls") if c["action"] == action]

    def updates(self) -> list[dict[str, Any]]:
        return self.calls_of("UpdatePhoneWebhook")

    def reads(self) -> list[dict[str, Any]]:
        return self.calls_of("QueryChatappPhoneNumbers")

    def set_webhook(self, space: str, phone_number: str, **fields: str) -> None:
        """Change what CAMS holds for a number, as someone in the console would (StatusCallbackUrl=...)."""
        self.post("/_simulator/webhooks", {"CustSpaceId": space, "PhoneNumber": phone_number, **fields})

    def fail(self, rate: float, failure: str = "ServiceUnavailable") -> None:
        """From now on, fail this share of calls (1.0: an outage; 0.0: healthy again), answered as
        `failure` says (cams_simulator/wire.py)."""
        self.post("/_simulator/faults", {"failRate": rate, "failure": failure})

    def calls(self, phone_number: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.get(f"/_simulator/calls?phoneNumber={phone_number}")
            if c["action"] == "UpdatePhoneWebhook"
        ]

    def webhook(self, space: str, phone_number: str) -> dict[str, str] | None:
        webhooks: dict[str, dict[str, str]] = self.get("/_simulator/state")["webhooks"]
        return webhooks.get(f"{space}/{phone_number}")


def start_simulator(config: Path, log: Path, tls: tuple[Path, Path] | None = None) -> SimulatorProcess:
    """`tls`: a certificate and its key, to serve https (as CAMS does)."""
    port = free_port()
    served_tls = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
    simulator = SimulatorProcess(
        args=[str(BIN / "cams-simulator"), "--config", str(config), "--port", str(port), *served_tls],
        log=log,
        port=port,
        tls_cert=tls[0] if tls else None,
    )
    simulator.start()
    wait_for(lambda: "listening" in simulator.output(), timeout=20, what="the simulator to listen")
    return simulator


def simulator_in(
    directory: Path, config: Mapping[str, Any], tls: tuple[Path, Path] | None = None
) -> SimulatorProcess:
    """The simulator serving `config` (accounts, spaces, quota, faults), its YAML and log in `directory`:
    the set-up every e2e test shares."""
    path = directory / "simulator.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    return start_simulator(path, directory / "simulator.log", tls)


def self_signed(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A certificate for `host` and 127.0.0.1 and its key (openssl, as scripts/controlplane.sh uses)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass
class OperatorProcess(Process):
    metrics_port: int = 0

    def scrape(self) -> str:
        """The whole /metrics page; fails unless it is served (HTTP 200) and parses as Prometheus text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            assert response.status == 200
            text: str = response.read().decode()
        families = {family.name for family in text_string_to_metric_families(text)}
        assert "cams_webhook_operator_objects" in families, f"no objects gauge in /metrics:\n{text}"
        return text

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the operator's /metrics, 0 when absent."""
        for family in text_string_to_metric_families(self.scrape()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


def start_operator(
    *,
    kubeconfig: Path,
    endpoint: str,
    namespace: str | list[str],
    log: Path,
    extra_env: dict[str, str] | None = None,
    verbose: bool = False,
    operator_namespace: str | None = None,
    binary: Path = BIN / "cams-webhook-operator",
) -> OperatorProcess:
    """Watch `namespace` (one, several, or [] for all); the operator's own namespace (claims, leader
    Lease) is `operator_namespace`, by default the first watched one. `binary`: another version's."""
    port = free_port()
    metrics_port = free_port()
    namespaces = [namespace] if isinstance(namespace, str) else namespace
    home = operator_namespace or namespaces[0]
    operator = OperatorProcess(
        args=[
            str(binary),
            *(arg for ns in namespaces for arg in ("--namespace", ns)),
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
            *(["--verbose"] if verbose or os.environ.get("CAMS_E2E_VERBOSE") else []),
        ],
        log=log,
        env={
            "KUBECONFIG": str(kubeconfig),
            "CAMS_ENDPOINT": endpoint,
            # The simulator answers STS too (GetCallerIdentity: which Alibaba account a key belongs to).
            "ALIBABA_CLOUD_STS_ENDPOINT": endpoint,
            "CAMS_ALLOW_HTTP": "true",  # the simulator listens on plain http, on 127.0.0.1 only
            "CAMS_METRICS_PORT": str(metrics_port),
            # One Lease per test's namespace: a test never waits on a lease left by another test.
            "CAMS_LEADER_ELECTION_ID": f"cams-webhook-operator-{home}",
            # The operator's namespace (claims, leader Lease) is the test's own: numbers that several tests
            # use are claimed afresh in each, as by separate installations.
            "CAMS_OPERATOR_NAMESPACE": home,
            **(extra_env or {}),
        },
        metrics_port=metrics_port,
    )
    operator.start()
    wait_for(lambda: _serves_liveness(operator, port), timeout=30, what="the operator's liveness endpoint")
    return operator


def _serves_liveness(operator: OperatorProcess, port: int) -> bool:
    """Whether the operator answers its liveness probe yet; fails at once if it exited instead."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        assert operator.popen is not None
        assert operator.popen.poll() is None, f"the operator exited:\n{operator.output()}"
        return False
