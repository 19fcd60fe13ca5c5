"""A small HTTP proxy for the leader-election test, in front of the real kube-apiserver or the simulator:
it records every request it forwards (when it arrived and when it ended) and, once told to, holds the
requests it is told to hold (the leader's Lease) without ever answering them, as a stalled API server or a
partition would.

Plain HTTP towards the operator (on 127.0.0.1 only) and TLS towards the API server: the proxy must see the
paths to stall one Lease and not the rest.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from .harness import free_port

# Hop-by-hop headers, and those aiohttp sets from the body it actually sends.
_DROPPED = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "accept-encoding"}
_DROPPED_BACK = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def shut_down(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, close: Callable[[], Awaitable[None]]
) -> None:
    """Stop a proxy that serves in `loop` on `thread`: `close` it there, then end whatever it left (a
    handler still writing to a caller that is gone) rather than leave it as a "Task was destroyed but it is
    pending" warning, and close the loop."""

    async def closed() -> None:
        await close()
        leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(closed(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the proxy's loop did not stop"
    loop.close()


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    started: float  # time.monotonic(): CLOCK_MONOTONIC, the clock the simulator's call log uses too
    ended: float


class Proxy:
    """`keep_host`: forward the caller's Host header (CAMS signs it: the simulator checks the signature
    against the Host it receives)."""

    def __init__(self, upstream: str, *, cafile: str | None = None, keep_host: bool = False) -> None:
        self._upstream = upstream
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else False
        self._dropped = _DROPPED - {"host"} if keep_host else _DROPPED
        self.port = free_port()
        self.forwarded: list[Forwarded] = []
        self.held: list[tuple[str, str, float]] = []
        self._hold: Callable[[str, str], bool] = lambda method, path: False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._released = asyncio.Event()  # set when the proxy stops: held requests are then refused

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self, rule: Callable[[str, str], bool]) -> None:
        """From now on, requests for which `rule(method, path)` is true are held forever."""
        self._hold = rule

    def start(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        shut_down(self._loop, self._thread, self._close)

    async def _serve(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=aiohttp.ClientTimeout(total=None)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _close(self) -> None:
        # Held requests and streaming watches first, or the server would wait for them to end.
        self._released.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        if self._hold(request.method, request.path):
            self.held.append((request.method, request.path, started))
            await self._released.wait()  # only when the proxy stops: the caller's timeout ends it first
            raise web.HTTPServiceUnavailable()
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._dropped}
        body = await request.read()
        async with self._session.request(
            request.method,
            f"{self._upstream}{request.rel_url}",
            headers=headers,
            data=body,
            # The Python client sends JSON without a Content-Type, which the API server takes as JSON;
            # aiohttp would add application/octet-stream, which it refuses (415).
            skip_auto_headers=("Content-Type",),
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _DROPPED_BACK},
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():  # watches stream for minutes
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # the caller went away (a watch it closed), or the proxy is stopping
        self.forwarded.append(Forwarded(request.method, request.path, started, time.monotonic()))
        return response


def kube_proxy(kubeconfig: Path, through: Path) -> Proxy:
    """A proxy in front of the API server of `kubeconfig`, and at `through` a kubeconfig that uses it."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    proxy = Proxy(cluster["server"], cafile=cluster["certificate-authority"]).start()
    config["clusters"][0]["cluster"] = {"server": proxy.url}
    through.write_text(yaml.safe_dump(config))
    return proxy
