"""Converge N PhoneWebhooks created at once, against the simulator at 10 calls/s, and compare policies.

    .venv/bin/python benchmarks/converge.py                       # N = 200 and 1000, all policies
    .venv/bin/python benchmarks/converge.py --sizes 200 --policies ours crossplane

Everything is real: the local control plane (scripts/controlplane.sh), the simulator and the operator's
console script, one fresh namespace and simulator per run. The baselines are the same operator with the
settings that reproduce their flow control:
  kopf        no limiter, kopf's fixed 60 s retry without jitter, every object handled at once
  crossplane  one token bucket of 10/s with burst 100, per-object backoff 1 s -> 60 s without jitter,
              10 concurrent reconciles, no adaptation to throttling
  ours-quota5 ours, told CAMS_QPS=10 while the simulator allows only 5/s (a quota shared with another
              client): shows the adaptive limiter; its ideal is N/5
A baseline that has not converged within --budget x the ideal time is reported as such, with the share
of objects Ready by then; its ratio is then a lower bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kubernetes
import yaml
from tests.e2e.harness import (
    REPO,
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    start_operator,
    start_simulator,
    wait_for,
)

QPS = 10
# What the simulator allows, where a scenario differs from QPS.
SERVER_QPS = {"ours-quota5": 5}
POLICIES: dict[str, dict[str, str]] = {
    "ours": {},
    "ours-quota5": {},
    "crossplane": {
        "CAMS_BURST": "100",
        "CAMS_ADAPTIVE": "false",
        "CAMS_RETRY_BASE_SECONDS": "1",
        "CAMS_RETRY_MAX_SECONDS": "60",
        "CAMS_RETRY_JITTER": "false",
        "CAMS_WORKERS": "10",
    },
    "kopf": {
        "CAMS_QPS": "1000000",
        "CAMS_BURST": "1000000",
        "CAMS_ADAPTIVE": "false",
        "CAMS_RETRY_BASE_SECONDS": "60",
        "CAMS_RETRY_MAX_SECONDS": "60",
        "CAMS_RETRY_JITTER": "false",
        "CAMS_WORKERS": "{n}",
    },
}
SIMULATOR_CONFIG = {
    "qps": QPS,
    "accounts": [
        {
            "accessKeyId": "bench-key",
            "accessKeySecret": "bench-secret",
            "uid": "1",
            "spaces": [{"id": "bench"}],
        }
    ],
}
CREDENTIALS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-secret"}


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

    @property
    def ideal(self) -> float:
        return self.n / SERVER_QPS.get(self.policy, QPS)


def process_usage(pid: int) -> tuple[float, float]:
    """Peak resident memory (MiB) and CPU seconds of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def ready_count(api: Any, namespace: str) -> int:
    listed = api.list_namespaced_custom_object("camswebhook.io", "v1alpha1", namespace, "phonewebhooks")
    return sum(
        1
        for item in listed["items"]
        for condition in item.get("status", {}).get("conditions", [])
        if condition["type"] == "Ready" and condition["status"] == "True"
    )


def create_all(api: Any, namespace: str, n: int) -> None:
    def create(i: int) -> None:
        api.create_namespaced_custom_object(
            "camswebhook.io",
            "v1alpha1",
            namespace,
            "phonewebhooks",
            {
                "apiVersion": "camswebhook.io/v1alpha1",
                "kind": "PhoneWebhook",
                "metadata": {"name": f"pwh-{i:05d}"},
                "spec": {
                    "custSpaceId": "bench",
                    "phoneNumber": f"86138{i:08d}",
                    "statusCallbackUrl": f"https://hooks.example.com/{i}/status",
                    "httpFlag": True,
                },
            },
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(n)))


def update_calls(simulator: SimulatorProcess) -> tuple[int, int]:
    counts: dict[str, int] = simulator.get("/_simulator/state")["calls"]
    calls = sum(v for k, v in counts.items() if k.startswith("UpdatePhoneWebhook/"))
    return calls, counts.get("UpdatePhoneWebhook/System.LimitControl", 0)


@dataclass
class Bench:
    kubectl: Kubectl
    api: Any
    workdir: Path
    budget: float

    def start(self, name: str, policy: str, n: int) -> tuple[str, SimulatorProcess, OperatorProcess]:
        namespace = f"bench-{name}-{int(time.time())}"
        self.kubectl.run("create", "namespace", namespace)
        config = self.workdir / f"{namespace}-simulator.yaml"
        config.write_text(yaml.safe_dump({**SIMULATOR_CONFIG, "qps": SERVER_QPS.get(policy, QPS)}))
        simulator = start_simulator(config, self.workdir / f"{namespace}-simulator.log")
        env = {k: v.format(n=n) for k, v in POLICIES[policy].items()}
        operator = start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=self.workdir / f"{namespace}-operator.log",
            extra_env={**CREDENTIALS, **env},
        )
        return namespace, simulator, operator

    def converge(self, policy: str, n: int) -> tuple[Result, tuple[str, SimulatorProcess, OperatorProcess]]:
        namespace, simulator, operator = self.start(policy, policy, n)
        started = time.monotonic()
        create_all(self.api, namespace, n)
        deadline = started + max(self.budget * n / SERVER_QPS.get(policy, QPS), 30)
        ready = 0
        while time.monotonic() < deadline:
            ready = ready_count(self.api, namespace)
            if ready == n:
                break
            time.sleep(0.25)
        seconds = time.monotonic() - started
        assert operator.popen is not None
        rss, cpu = process_usage(operator.popen.pid)
        calls, throttled = update_calls(simulator)
        result = Result(policy, n, seconds, ready == n, ready, calls, throttled, rss, cpu)
        return result, (namespace, simulator, operator)

    def restart(self, namespace: str, simulator: SimulatorProcess, operator: OperatorProcess, n: int) -> str:
        """Restart the operator over N in-sync objects: calls made, and time until all were re-checked."""
        operator.stop()
        calls_before, _ = update_calls(simulator)
        started = time.monotonic()
        restarted = start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=self.workdir / f"{namespace}-operator-restart.log",
            extra_env=CREDENTIALS,
        )
        try:
            wait_for(
                lambda: restarted.metric("cams_webhook_operator_reconciles_total", result="in_sync") >= n,
                timeout=300,
                what="every object re-checked after the restart",
            )
            seconds = time.monotonic() - started
            time.sleep(2)  # any stray call would show by now
            calls_after, _ = update_calls(simulator)
            assert restarted.popen is not None
            rss, _ = process_usage(restarted.popen.pid)
        finally:
            restarted.stop()
            simulator.stop()
        return (
            f"restart over {n} in-sync objects: {calls_after - calls_before} CAMS calls, all {n} re-checked "
            f"{seconds:.1f} s after the process started (including its start-up), peak RSS {rss:.0f} MiB"
        )


def table(results: list[Result]) -> str:
    header = (
        f"{'policy':<11}{'N':>6}{'all Ready (s)':>15}{'ideal (s)':>11}{'ratio':>8}"
        f"{'calls/obj':>11}{'throttled':>11}{'thr. %':>8}{'RSS MiB':>9}{'CPU s':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        time_text = f"{r.seconds:.1f}" if r.converged else f">{r.seconds:.0f} ({100 * r.ready // r.n}%)"
        lines.append(
            f"{r.policy:<11}{r.n:>6}{time_text:>15}{r.ideal:>11.1f}{r.seconds / r.ideal:>8.2f}"
            f"{r.calls / r.n:>11.2f}{r.throttled:>11}{100 * r.throttled / max(r.calls, 1):>8.1f}"
            f"{r.rss_mib:>9.0f}{r.cpu_seconds:>8.1f}"
        )
    return "\n".join(lines)


def comparisons(results: list[Result]) -> list[str]:
    out = []
    ours = {r.n: r for r in results if r.policy == "ours"}
    for r in results:
        if r.policy.startswith("ours") or r.n not in ours:
            continue
        bound = "" if r.converged else "at least "
        out.append(f"N={r.n}: {r.policy} took {bound}{r.seconds / ours[r.n].seconds:.2f}x as long as ours")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--policies", nargs="+", choices=list(POLICIES), default=list(POLICIES))
    parser.add_argument(
        "--budget", type=float, default=3.0, help="give up on a run after this x the ideal time"
    )
    parser.add_argument("--no-restart", action="store_true", help="skip the restart measurement")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cams-bench-"))
    script = REPO / "scripts" / "controlplane.sh"
    started = subprocess.run(
        [str(script), "start", str(workdir / "cp")], capture_output=True, text=True, check=True
    )
    kubeconfig = Path(started.stdout.strip().splitlines()[-1])
    try:
        kubectl = Kubectl(kubeconfig)
        kubectl.run("apply", "-f", str(REPO / "crds"))
        kubectl.run(
            "wait", "--for=condition=Established", "--timeout=60s", "crd/phonewebhooks.camswebhook.io"
        )
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        client.configuration.connection_pool_maxsize = 32
        bench = Bench(kubectl, kubernetes.client.CustomObjectsApi(client), workdir, args.budget)
        results: list[Result] = []
        notes: list[str] = []
        for n in args.sizes:
            for policy in args.policies:
                print(f"running {policy} with N={n} ...", file=sys.stderr, flush=True)
                result, (namespace, simulator, operator) = bench.converge(policy, n)
                results.append(result)
                if policy == "ours" and n == max(args.sizes) and not args.no_restart:
                    notes.append(bench.restart(namespace, simulator, operator, n))
                else:
                    operator.stop()
                    simulator.stop()
        print(table(results))
        for line in comparisons(results) + notes:
            print(line)
    finally:
        subprocess.run([str(script), "stop", str(workdir / "cp")], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
