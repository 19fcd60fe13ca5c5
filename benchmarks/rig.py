"""The rig every benchmark scenario runs on (benchmarks/converge.py): the local control plane's API, a
fresh namespace, simulator and operator per run, the objects and the accounts they use, how long until
they are Ready, and what each process spent. The policies are the settings that reproduce the baselines'
flow control."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kubernetes
import yaml
from tests.e2e.harness import (
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    start_operator,
    start_simulator,
)

QPS = 10
SERVER_QPS = {"ours-quota5": 5}  # what the simulator allows, where a policy's scenario differs from QPS
BASELINE_OFF = {"CAMS_ADAPTIVE": "false", "CAMS_RETRY_JITTER": "false", "CAMS_CIRCUIT_BREAKER": "false"}
POLICIES: dict[str, dict[str, str]] = {
    "ours": {},
    "ours-quota5": {},
    "crossplane": {
        **BASELINE_OFF,
        "CAMS_BURST": "100",
        "CAMS_RETRY_BASE_SECONDS": "1",
        "CAMS_RETRY_MAX_SECONDS": "60",
        "CAMS_MAX_IN_FLIGHT": "10",
    },
    "kopf": {
        **BASELINE_OFF,
        "CAMS_QPS": "1000000",
        "CAMS_BURST": "1000000",
        "CAMS_RETRY_BASE_SECONDS": "60",
        "CAMS_RETRY_MAX_SECONDS": "60",
        "CAMS_MAX_IN_FLIGHT": "{n}",
    },
}
GROUP, VERSION, PLURAL = "camswebhook.io", "v1alpha1", "phonewebhooks"


def accounts_config(count: int, *, qps: float = QPS, latency_ms: float = 0) -> dict[str, Any]:
    return {
        "qps": qps,
        "latencyMs": latency_ms,
        "accounts": [
            {
                "accessKeyId": f"bench-key-{a}",
                "accessKeySecret": f"bench-secret-{a}",
                "uid": str(a + 1),
                "spaces": [{"id": f"bench-{a}"}],
            }
            for a in range(count)
        ],
    }


CREDENTIALS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-key-0",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-secret-0",
}


def phonewebhook(i: int, *, account: int = 0, url: str = "") -> dict[str, Any]:
    """Object i: of account 0 through the operator's own credentials, of others through their Secret."""
    spec: dict[str, Any] = {
        "custSpaceId": f"bench-{account}",
        "phoneNumber": f"86138{i:08d}",
        "statusCallbackUrl": url or f"https://hooks.example.com/{i}/status",
        "httpFlag": True,
    }
    if account:
        spec["credentialsSecretRef"] = {"name": f"account-{account}"}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PhoneWebhook",
        "metadata": {"name": f"pwh-{i:05d}"},
        "spec": spec,
    }


@dataclass
class Result:
    policy: str
    n: int
    seconds: float
    converged: bool
    ready: int
    calls: int
    throttled: int
    rss_mib: float
    cpu_seconds: float
    ideal: float
    calls_span: tuple[float, float]  # first and last UpdatePhoneWebhook, seconds after the first create


def process_usage(pid: int) -> tuple[float, float]:
    """Peak resident memory (MiB) and CPU seconds of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def cpu_seconds(pid: int) -> float:
    return process_usage(pid)[1]


@dataclass
class MachineLoad:
    """CPU seconds that every process of a run spent: names what the machine, not the quota, allowed."""

    processes: dict[str, int]
    start: dict[str, float]
    started: float

    @classmethod
    def begin(cls, controlplane: Path, simulator: SimulatorProcess, operator: OperatorProcess) -> MachineLoad:
        assert simulator.popen is not None
        assert operator.popen is not None
        processes = {
            "operator": operator.popen.pid,
            "kube-apiserver": int((controlplane / "apiserver.pid").read_text()),
            "etcd": int((controlplane / "etcd.pid").read_text()),
            "kube-controller-manager": int((controlplane / "controller-manager.pid").read_text()),
            "simulator": simulator.popen.pid,
        }
        return cls(processes, {k: cpu_seconds(p) for k, p in processes.items()}, time.monotonic())

    def end(self) -> str:
        wall = time.monotonic() - self.started
        used = {k: cpu_seconds(p) - self.start[k] for k, p in self.processes.items()}
        cores = os.cpu_count() or 1
        spent = ", ".join(f"{k} {v:.1f}" for k, v in used.items())
        return f"CPU-s: {spent} = {sum(used.values()):.0f} of {cores} cores x {wall:.0f} s"


def update_calls(simulator: SimulatorProcess) -> tuple[int, int]:
    counts: dict[str, int] = simulator.get("/_simulator/state")["calls"]
    calls = sum(v for k, v in counts.items() if k.startswith("UpdatePhoneWebhook/"))
    return calls, counts.get("UpdatePhoneWebhook/System.LimitControl", 0)


def update_log(simulator: SimulatorProcess) -> list[dict[str, Any]]:
    """Every UpdatePhoneWebhook the simulator answered: `at` is CLOCK_MONOTONIC, as time.monotonic()."""
    return [c for c in simulator.get("/_simulator/calls") if c["action"] == "UpdatePhoneWebhook"]


@dataclass
class Bench:
    kubectl: Kubectl
    api: Any
    workdir: Path
    budget: float

    def namespace(self, name: str) -> str:
        namespace = f"bench-{name}-{time.monotonic_ns() % 10**9}"
        self.kubectl.run("create", "namespace", namespace)
        return namespace

    def simulator(self, name: str, config: dict[str, Any]) -> SimulatorProcess:
        path = self.workdir / f"{name}-simulator.yaml"
        path.write_text(yaml.safe_dump(config))
        return start_simulator(path, self.workdir / f"{name}-simulator.log")

    def operator(
        self, name: str, namespaces: list[str], simulator: SimulatorProcess, env: dict[str, str] | None = None
    ) -> OperatorProcess:
        return start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespaces,
            log=self.workdir / f"{name}-operator-{time.monotonic_ns()}.log",
            extra_env={**CREDENTIALS, **(env or {})},
        )

    @contextmanager
    def system(
        self, name: str, namespaces: list[str], config: dict[str, Any], env: dict[str, str] | None = None
    ) -> Iterator[tuple[SimulatorProcess, OperatorProcess]]:
        simulator = self.simulator(name, config)
        operator = self.operator(name, namespaces, simulator, env)
        try:
            yield simulator, operator
        finally:
            operator.stop()
            simulator.stop()

    def secrets(self, namespace: str, accounts: int) -> None:
        core = kubernetes.client.CoreV1Api(self.api.api_client)
        for a in range(1, accounts):
            secret = kubernetes.client.V1Secret(
                metadata=kubernetes.client.V1ObjectMeta(name=f"account-{a}"),
                string_data={"accessKeyId": f"bench-key-{a}", "accessKeySecret": f"bench-secret-{a}"},
            )
            core.create_namespaced_secret(namespace, secret)

    def create(self, namespace: str, objects: list[dict[str, Any]]) -> list[float]:
        """Create in the given order, 16 at a time (as a GitOps tool's parallel apply would); when each
        creation was answered (time.monotonic()), in the same order."""

        def one(body: dict[str, Any]) -> float:
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            return time.monotonic()

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, objects))

    def storage_ready(self) -> bool:
        try:
            self.api.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status == 429:
                return False
            raise
        return True

    def ready(self, namespaces: list[str]) -> int:
        count = 0
        for namespace in namespaces:
            listed = self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            count += sum(
                1
                for item in listed["items"]
                for condition in item.get("status", {}).get("conditions", [])
                if condition["type"] == "Ready" and condition["status"] == "True"
            )
        return count

    def wait_ready(
        self, namespaces: list[str], n: int, started: float, ideal: float, operator: OperatorProcess
    ) -> tuple[float, int]:
        """Seconds from `started` until n objects are Ready in the API server (or the budget ran out), and
        how many are. The operator's own count is polled until it says n; only then is the API server
        listed, since listing a thousand objects four times a second is itself a load on the machine."""
        deadline = started + max(self.budget * ideal, 30)
        ready = 0
        while time.monotonic() < deadline:
            if operator.metric("cams_webhook_operator_objects", condition="Ready") >= n:
                ready = self.ready(namespaces)
                if ready >= n:
                    break
            time.sleep(0.25)
        else:
            ready = self.ready(namespaces)
        return time.monotonic() - started, ready

    def converge(
        self, policy: str, n: int, *, latency_ms: float = 0
    ) -> tuple[Result, str, SimulatorProcess, OperatorProcess]:
        """N objects of one account created at once; left running."""
        namespace = self.namespace(policy)
        qps = SERVER_QPS.get(policy, QPS)
        env = {k: v.format(n=n) for k, v in POLICIES[policy].items()}
        simulator = self.simulator(namespace, accounts_config(1, qps=qps, latency_ms=latency_ms))
        operator = self.operator(namespace, [namespace], simulator, env)
        started = time.monotonic()
        self.create(namespace, [phonewebhook(i) for i in range(n)])
        seconds, ready = self.wait_ready([namespace], n, started, n / qps, operator)
        assert operator.popen is not None
        rss, cpu = process_usage(operator.popen.pid)
        calls, throttled = update_calls(simulator)
        times = [c["at"] - started for c in update_log(simulator)] or [0.0]
        label = f"{policy}@{latency_ms:g}ms" if latency_ms else policy
        span = (min(times), max(times))
        result = Result(label, n, seconds, ready == n, ready, calls, throttled, rss, cpu, n / qps, span)
        return result, namespace, simulator, operator
