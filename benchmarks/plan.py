"""How long `cams-webhook-operator plan` takes over many manifests, and how many reads it makes, against the
simulator (in a process of its own):

    .venv/bin/python benchmarks/plan.py                  # 1,000 objects in 10 spaces, 3 rounds
    .venv/bin/python benchmarks/plan.py --objects 5000

Both rows run in this process, interleaved: the baseline is the reads alone (the QueryChatappPhoneNumbers
calls the plan needs, one per space, made with the CAMS client directly), so the ratio is what reading the
manifests, running the operator's planner over every object and printing cost on top of the reads. The
plan also runs as a command once, as a user starts it (Python's start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from tests.e2e.harness import BIN, SimulatorProcess, start_simulator

from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.planning.command import plan, plan_parser

SPACES = 10


def _manifests(directory: Path, objects: int) -> None:
    for i in range(objects):
        body = {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {"name": f"line-{i}", "namespace": "bench"},
            "spec": {
                "custSpaceId": f"space-{i % SPACES}",
                "phoneNumber": f"86139{i:08d}",
                "statusCallbackUrl": f"https://hooks.example.com/{i}/status",
                "httpFlag": True,
            },
        }
        (directory / f"line-{i}.yaml").write_text(yaml.safe_dump(body))


async def _reads_alone(endpoint: str) -> None:
    client = CamsClient(endpoint=endpoint, timeout_seconds=10)
    try:
        for space in range(SPACES):
            await client.query_phone_numbers(f"space-{space}", Credentials("bench-key", "bench-secret"))
            await asyncio.sleep(0.1)  # the plan paces its reads at the account's 10/s too
    finally:
        await client.aclose()


def _in_process(directory: Path) -> float:
    args = plan_parser("plan").parse_args(["-f", str(directory), "-o", "json"])
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = asyncio.run(plan(args))
    assert code == 2, code
    return time.perf_counter() - started


def _simulator(work: Path) -> SimulatorProcess:
    """The simulator with one account of 10 spaces; the environment the plan reads it with."""
    spaces = [{"id": f"space-{s}"} for s in range(SPACES)]
    account = {"accessKeyId": "bench-key", "accessKeySecret": "bench-secret", "uid": "1", "spaces": spaces}
    (work / "accounts.yaml").write_text(yaml.safe_dump({"qps": 10, "accounts": [account]}))
    simulator = start_simulator(work / "accounts.yaml", work / "simulator.log")
    os.environ.update(
        {
            "CAMS_ENDPOINT": simulator.endpoint,
            "ALIBABA_CLOUD_STS_ENDPOINT": simulator.endpoint,
            "CAMS_ALLOW_HTTP": "true",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "bench-key",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-secret",
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        }
    )
    return simulator


def _calls(simulator: SimulatorProcess, prefix: str) -> int:
    counted: dict[str, int] = simulator.get("/_simulator/state")["calls"]
    return sum(n for k, n in counted.items() if k.startswith(prefix))


def _rounds(simulator: SimulatorProcess, directory: Path, rounds: int) -> tuple[float, float, int]:
    """The best of `rounds` of the reads alone and of the plan, interleaved; the plan's reads."""
    reads_alone, planned, reads = [], [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        asyncio.run(_reads_alone(simulator.endpoint))
        reads_alone.append(time.perf_counter() - started)
        before = _calls(simulator, "QueryChatappPhoneNumbers/OK")
        planned.append(_in_process(directory))
        reads = _calls(simulator, "QueryChatappPhoneNumbers/OK") - before
        assert _calls(simulator, "UpdatePhoneWebhook") == 0, "the plan made an UpdatePhoneWebhook call"
    return min(reads_alone), min(planned), reads


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cams-plan-bench-"))
    simulator = _simulator(work)
    try:
        directory = work / "manifests"
        directory.mkdir()
        _manifests(directory, args.objects)
        best_reads, best_plan, reads = _rounds(simulator, directory, args.rounds)
        started = time.perf_counter()
        command = subprocess.run(
            [str(BIN / "cams-webhook-operator"), "plan", "-f", str(directory)], capture_output=True, text=True
        )
        as_command = time.perf_counter() - started
    finally:
        simulator.stop()
    print(f"{args.objects} objects in {SPACES} spaces, {args.rounds} rounds (best of each)")
    print(f"{'way':34} {'seconds':>8} {'reads':>6} {'vs reads alone':>15}")
    print(f"{'the reads alone (baseline)':34} {best_reads:8.2f} {SPACES:6d} {1.0:15.2f}")
    print(f"{'plan, in this process':34} {best_plan:8.2f} {reads:6d} {best_plan / best_reads:15.2f}")
    print(f"{'plan, as a command (exit ' + str(command.returncode) + ')':34} {as_command:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
