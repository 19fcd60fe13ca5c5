"""CPU per CAMS call in the operator's process, for the ways of speaking HTTP that were weighed, side by side
in one process against the simulator (which runs in a process of its own, so that its CPU is not counted):

  aiohttp direct      what the client did before: signed, then aiohttp's ClientSession.post (the baseline)
  httpx + aiohttp     httpx's API over cams/transport.py (what the client does now)
  httpx's own         httpx's API over its default transport (httpcore)

    .venv/bin/python benchmarks/cams_client_cpu.py    # 3 rounds of 3000 calls, 20 in flight, 10 accounts

Every call is a signed UpdatePhoneWebhook that the simulator verifies and answers OK; the rounds of the
three are interleaved, so that the machine's drift falls on all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import httpx
import yaml
from tests.e2e.harness import start_simulator
from yarl import URL

from cams_webhook_operator.cams.client import API_VERSION, CamsClient
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import UPDATE_PHONE_WEBHOOK, WebhookUpdate
from cams_webhook_operator.cams.signing import (
    DATE_FORMAT,
    RequestToSign,
    canonical_query_string,
    sign_headers,
)

ACCOUNTS = 10
Call = Callable[[WebhookUpdate, Credentials], Awaitable[object]]


def _config() -> dict[str, object]:
    return {
        "qps": 1_000_000,  # flow control off: the client's CPU is measured, not CAMS's quota
        "accounts": [
            {"accessKeyId": f"k{a}", "accessKeySecret": f"s{a}", "uid": str(a), "spaces": [{"id": f"sp{a}"}]}
            for a in range(ACCOUNTS)
        ],
    }


class AiohttpDirect:
    """The baseline: the client's code before httpx, reduced to its call."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = URL(endpoint)
        self._session: aiohttp.ClientSession | None = None

    async def call(self, update: WebhookUpdate, credentials: Credentials) -> object:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)
        params = update.query()
        headers = {
            "host": self._endpoint.raw_authority,
            "x-acs-action": UPDATE_PHONE_WEBHOOK,
            "x-acs-version": API_VERSION,
            "x-acs-date": datetime.now(UTC).strftime(DATE_FORMAT),
            "x-acs-signature-nonce": secrets.token_hex(16),
            "accept": "application/json",
        }
        signed = sign_headers(
            RequestToSign(method="POST", path="/", query=params, headers=headers),
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
        )
        url = URL(f"{self._endpoint.origin()}/?{canonical_query_string(params)}", encoded=True)
        async with self._session.post(url, headers=signed, skip_auto_headers=("Content-Type",)) as response:
            return await response.read()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _round(call: Call, n: int, in_flight: int) -> float:
    """CPU seconds of this process for n calls, `in_flight` at a time, round-robin over the accounts."""
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        a = i % ACCOUNTS
        update = WebhookUpdate(
            f"sp{a}", f"86138{i:08d}", f"https://hooks.example/{i}?t=x y", None, True, None
        )
        async with gate:
            await call(update, Credentials(f"k{a}", f"s{a}"))

    started = time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.process_time() - started


async def measure(endpoint: str, n: int, in_flight: int, rounds: int) -> dict[str, float]:
    clients: dict[str, CamsClient | AiohttpDirect] = {
        "aiohttp direct": AiohttpDirect(endpoint),
        "httpx + aiohttp": CamsClient(endpoint=endpoint, timeout_seconds=10),
        "httpx's own": CamsClient(
            endpoint=endpoint,
            timeout_seconds=10,
            transport=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100)),
        ),
    }
    used = dict.fromkeys(clients, 0.0)
    try:
        for client in clients.values():  # warm-up: connections made, code paths loaded
            await _round(_call_of(client), 200, in_flight)
        for _ in range(rounds):
            for name, client in clients.items():
                used[name] += await _round(_call_of(client), n, in_flight)
    finally:
        for client in clients.values():
            await client.aclose()
    return {name: seconds / (n * rounds) * 1000 for name, seconds in used.items()}


def _call_of(client: CamsClient | AiohttpDirect) -> Call:
    if isinstance(client, CamsClient):
        return client.update_phone_webhook
    return client.call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per round and way")
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "simulator.yaml"
        config.write_text(yaml.safe_dump(_config()))
        simulator = start_simulator(config, Path(tmp) / "simulator.log")
        try:
            per_call = asyncio.run(measure(simulator.endpoint, args.calls, args.in_flight, args.rounds))
        finally:
            simulator.stop()
    baseline = per_call["aiohttp direct"]
    print(f"{args.calls * args.rounds} calls each, {args.in_flight} in flight over {ACCOUNTS} accounts")
    print(f"{'way':<18}{'CPU ms/call':>12}{'vs aiohttp direct':>20}")
    for name, ms in per_call.items():
        print(f"{name:<18}{ms:>12.3f}{ms / baseline:>20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
