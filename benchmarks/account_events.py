"""What an event of one account costs the controller, with many objects in memory: the objects to decide
again are found through the index by account (state.States.referring) beside the baseline of looking at
every object (what 0.2.0 did), in the same process.

    .venv/bin/python benchmarks/account_events.py            # 1,000 / 10,000 / 30,000 objects

The whole `Controller.observe_account` is timed too, for an account that no object names (a tenant's
CamsAccount patched in a loop): it should cost nothing that grows with the number of objects.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.fakes import TEAM_ACCOUNT, FakeCams, FakeKube, make_controller, make_settings, pwh_body

from cams_webhook_operator.decisions.state import States
from cams_webhook_operator.tenancy.accounts import AccountKey, named_account

PLATFORM = AccountKey("ClusterCamsAccount", "", "platform")


def _scan(states: States, key: AccountKey) -> set[tuple[str, str]]:
    """The baseline: every object looked at."""
    return {
        k
        for k, s in states.items()
        if s.snapshot.spec is not None and named_account(s.snapshot.spec, k[0]) == key
    }


def _timed(call: object, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat * 1000


async def measure(n: int, repeat: int) -> tuple[float, float, float]:
    controller = make_controller(settings=make_settings(), cams=FakeCams(), kube=FakeKube())
    for i in range(n):
        body = pwh_body(
            name=f"o{i}",
            phoneNumber=f"86138{i:08d}",
            accountRef={"kind": "ClusterCamsAccount", "name": "platform"},
        )
        body["metadata"]["namespace"] = f"ns{i % 100}"
        controller.intake.observe(body)
    states = controller._states
    assert states.referring(PLATFORM, default=False) == _scan(states, PLATFORM)
    indexed = _timed(lambda: states.referring(PLATFORM, default=False), repeat)
    scanned = _timed(lambda: _scan(states, PLATFORM), repeat)
    account = {**TEAM_ACCOUNT, "metadata": {**TEAM_ACCOUNT["metadata"], "namespace": "ns7"}}
    event = _timed(lambda: controller.intake.observe_account(account, "CamsAccount"), repeat)
    return indexed, scanned, event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 30_000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    header = ("objects", "index (ms)", "scan (ms)", "scan/index", "event, no user (ms)")
    print("  ".join(f"{h:>{w}}" for h, w in zip(header, (8, 11, 10, 10, 20), strict=True)))
    for n in args.sizes:
        indexed, scanned, event = asyncio.run(measure(n, args.repeat))
        print(f"{n:>8}  {indexed:>11.3f}  {scanned:>10.3f}  {scanned / indexed:>10.0f}  {event:>20.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
