"""`cams-simulator`: serve the CAMS simulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import ssl
import sys
from pathlib import Path

from aiohttp import web

from cams_simulator.config import SimulatorConfig, demo_config
from cams_simulator.core import Simulator
from cams_simulator.server import build_app


async def _serve(
    simulator: Simulator, host: str, port: int, port_file: Path | None, tls: ssl.SSLContext | None
) -> None:
    runner = web.AppRunner(build_app(simulator), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    bound = runner.addresses[0][1]
    if port_file is not None:
        port_file.write_text(str(bound))  # noqa: ASYNC240 -- a few bytes, once, before serving
    scheme = "https" if tls else "http"
    print(f"CAMS simulator listening on {scheme}://{host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cams-simulator", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help="YAML/JSON accounts and spaces (default: one demo account)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--qps", type=float, help="calls per second per account and action")
    parser.add_argument("--fail-rate", type=float, help="share of calls answered with a 5xx, 0..1")
    parser.add_argument("--latency-ms", type=float, help="added latency per call")
    parser.add_argument("--seed", type=int, help="seed for request IDs and fault injection")
    parser.add_argument("--tls-cert", type=Path, help="serve https with this certificate (PEM) ...")
    parser.add_argument("--tls-key", type=Path, help="... and this key (PEM), as CAMS's own endpoint is")
    args = parser.parse_args(argv)
    config = SimulatorConfig.load(args.config) if args.config else demo_config()
    overrides = {"qps": args.qps, "fail_rate": args.fail_rate, "latency_ms": args.latency_ms}
    config = SimulatorConfig.model_validate(
        {**config.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    )
    simulator = Simulator(
        config=config,
        rng=random.Random(args.seed),  # noqa: S311 -- faults, not cryptography
    )
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(simulator, args.host, args.port, args.port_file, tls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
