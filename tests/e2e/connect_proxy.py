"""An HTTP forward proxy that knows only CONNECT, as a cluster's egress proxy in front of HTTPS endpoints:
it opens a tunnel to the host and port asked and pipes bytes both ways, without seeing inside (TLS goes
end to end). It records every tunnel asked for, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from .harness import free_port
from .proxy import shut_down


class ConnectProxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.tunnels: list[str] = []  # "host:port", in the order they were asked for
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()  # both ends of every tunnel, closed at stop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConnectProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop
        ).result(timeout=10)
        return self

    def stop(self) -> None:
        shut_down(self._loop, self._thread, self._close)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            with contextlib.suppress(OSError):
                writer.close()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        self._open.add(to_client)
        try:
            head = await client.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                to_client.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                await to_client.drain()
                return
            host, port = target.rsplit(":", 1)
            self.tunnels.append(target)
            upstream, to_upstream = await asyncio.open_connection(host, int(port))
            self._open.add(to_upstream)
            to_client.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await to_client.drain()
            await asyncio.gather(_pipe(client, to_upstream), _pipe(upstream, to_client))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open.discard(to_client)
            with contextlib.suppress(OSError):
                to_client.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()
