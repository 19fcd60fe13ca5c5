"""httpx's API over aiohttp's connections: the transport under the CAMS client's httpx.AsyncClient.

httpx is the client the operator's code speaks. Its own transport (httpcore) checks every pooled
connection's socket on every request: with 20 calls in flight over ten accounts a call cost 2.10 ms of CPU
through it, 0.55 ms through httpx over this transport, 0.25 ms through aiohttp alone (measured side by side
by benchmarks/cams_client_cpu.py, 2026-12-05). `httpx-aiohttp` would do this job too, but it hands aiohttp
the URL as a string, and yarl then decodes and re-encodes the query (`%3A%2F%2F` goes out as `://`): a
signed request must go on the wire exactly as it was signed, so this adapter passes
`yarl.URL(..., encoded=True)`. It reads each answer whole (CAMS's answers are small JSON documents), maps
aiohttp's errors to httpx's, and sends each request through the proxy `proxies` names for its URL
(cams/proxies.py: the standard variables, one rule for CAMS and STS alike).
"""

from __future__ import annotations

import aiohttp
import httpx
from yarl import URL

from cams_webhook_operator.cams.proxies import Proxies


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, connections: int = 100, proxies: Proxies | None = None) -> None:
        self._connections = connections
        self._proxies = proxies or Proxies()
        self._session: aiohttp.ClientSession | None = None  # made in the event loop that uses it

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar (a signed RPC call carries no state), and aiohttp's own reading of the proxy
            # variables off: `proxies` decides, per request.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,  # httpx decodes, as its headers say
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = request.content or None
        try:
            async with self._http().request(
                request.method,
                URL(str(request.url), encoded=True),
                proxy=self._proxies.for_url(str(request.url)),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            ) as response:
                content = await response.read()
        except TimeoutError as exc:
            raise httpx.TimeoutException(
                f"no answer in time ({type(exc).__name__})", request=request
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            raise httpx.ConnectError(type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:  # an answer that could not be read (bad encoding, bad framing)
            raise httpx.ReadError(type(exc).__name__, request=request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            content=content,
            request=request,
            extensions={"reason_phrase": (response.reason or "").encode(), "http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
