"""The controller's requests to the API server, over aiohttp in the event loop.

The official client is synchronous: each call ran in a worker thread, built and validated models, and cost
2.0-2.4 ms of CPU (measured: 1000 Lease creates, 16 at a time, on the local control plane); the same request
over aiohttp cost 0.9 ms. The controller writes three times per applied object, so this is where its CPU
went. Connection settings (server, CA, client certificate, token and its refresh, proxy) still come from
the official client's `Configuration`, loaded from the kubeconfig or the pod's ServiceAccount.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import yarl
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import should_bypass_proxies

logger = logging.getLogger(__name__)

# Without a timeout, a connection the API server never answers would hold a reconcile forever, silently;
# with one it fails, is logged, and is retried with backoff.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=20)
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# A watch: the API server ends it after timeoutSeconds (300); a connection silent for longer than this was
# dropped without a word (a NAT, a proxy) and is opened again.
WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=330)
CONNECTIONS = 32
# How long a token read from the configuration is used before it is asked for again. Asking runs the
# loader's refresh hook, which re-reads the whole kubeconfig (7 % of the operator's CPU when asked per
# request); a projected ServiceAccount token is renewed by the kubelet long before it expires.
TOKEN_REUSE_SECONDS = 60.0
# Objects per page of a listing. One answer with all of them would hold every object's JSON and its parsed
# dicts at once: listing 10,000 claim Leases in one answer raised a restart's peak RSS from 118 to 168 MiB.
PAGE = "500"


def api_path(prefix: str, *segments: str) -> str:
    """The one place where a path to the API server is built from names: `prefix` is a constant of ours
    ("/api/v1", "/apis/<group>/<version>"), and every segment after it is percent-encoded whole, so that a
    name holding '/' stays one segment. A segment of dots only ('.', '..') is encoded as %2E too: it would
    otherwise be a step up the path, which HTTP clients and servers remove before routing. The names were
    validated before (api/names.py); this holds even if one was not. Requests go out with the path as
    built here (`yarl.URL(..., encoded=True)`): yarl would otherwise decode and normalise it again."""
    encoded = []
    for segment in segments:
        if not segment:
            raise ValueError(f"an empty name in a path under {prefix}")
        if segment.strip(".") == "":
            encoded.append("%2E" * len(segment))
        else:
            encoded.append(quote(segment, safe=""))
    return "/".join((prefix, *encoded))


def _ssl_context(configuration: Any) -> ssl.SSLContext | bool:
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(
        cafile=configuration.ssl_ca_cert, cadata=getattr(configuration, "ca_cert_data", None)
    )
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if configuration.assert_hostname is False:
        context.check_hostname = False
    return context


def api_server_proxy(configuration: Any) -> str | None:
    """The proxy the official client would use for the API server (HTTPS_PROXY and NO_PROXY, or the
    kubeconfig's proxy-url); a SOCKS proxy is not supported here."""
    proxy: str | None = configuration.proxy
    if not proxy or should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
        return None
    if proxy.lower().startswith("socks"):
        logger.warning("The SOCKS proxy %s is not supported; connecting to the API server directly", proxy)
        return None
    return proxy


class Requester(Protocol):
    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...


async def listing(
    http: Requester,
    path: str,
    params: Mapping[str, str] | None = None,
    *,
    started_over: Callable[[], None] = lambda: None,
) -> AsyncIterator[dict[str, Any]]:
    """The pages of a listing, PAGE objects each. A continue token that the API server no longer keeps
    (410 Expired: etcd compacted its version while a slow reader worked through the pages) starts the
    listing over from the first page, after `started_over` (what was gathered may have changed since)."""
    params = {**(params or {}), "limit": PAGE}
    following = params
    while True:
        try:
            page = await http.request("GET", path, params=following)
        except ApiException as exc:
            if exc.status == 410 and following is not params:
                started_over()
                following = params
                continue
            raise
        yield page
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return
        following = {**params, "continue": token}


class KubeHttp:
    """JSON in, JSON out. A refusal raises the official client's ApiException (status, reason, body), so
    callers handle both clients' errors alike."""

    def __init__(self, configuration: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._configuration = configuration
        self._base = str(configuration.host).rstrip("/")
        self._proxy = api_server_proxy(configuration)
        self._session: aiohttp.ClientSession | None = None  # made in the event loop that uses it
        self._clock = clock
        self._token: str | None = None
        self._token_until = float("-inf")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # Each TLS connection holds a 128 KiB read buffer: enough connections for the workers and
                # the lanes' answers, not aiohttp's default of 100.
                connector=aiohttp.TCPConnector(ssl=_ssl_context(self._configuration), limit=CONNECTIONS),
                timeout=TIMEOUT,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if (token := self._authorization()) is not None:
            headers["Authorization"] = token
        return headers

    def _authorization(self) -> str | None:
        """The bearer token, asked of the configuration once a minute: for a pod, its refresh hook re-reads
        the projected token that the kubelet rotates."""
        now = self._clock()
        if now >= self._token_until:
            setting = self._configuration.auth_settings().get("BearerToken")
            self._token = setting["value"] if setting is not None and setting["value"] else None
            self._token_until = now + TOKEN_REUSE_SECONDS
        return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        async with self._http().request(
            method,
            yarl.URL(self._base + path, encoded=True),
            data=data,
            params=params,
            headers=self._headers(content_type if data is not None else None),
            proxy=self._proxy,
            allow_redirects=False,
        ) as response:
            raw = await response.read()
            if response.status >= 300:
                raise ApiException(
                    status=response.status, reason=response.reason, body=raw.decode("utf-8", "replace")
                )
        answer = json.loads(raw) if raw else {}
        return answer if isinstance(answer, dict) else {}

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch, one JSON object per line, until the API server ends the stream."""
        async with self._http().get(
            yarl.URL(self._base + path, encoded=True),
            params=params,
            headers=self._headers(None),
            proxy=self._proxy,
            timeout=WATCH_TIMEOUT,
        ) as response:
            if response.status >= 300:
                raw = await response.read()
                raise ApiException(
                    status=response.status, reason=response.reason, body=raw.decode("utf-8", "replace")
                )
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending += chunk
                while (end := pending.find(b"\n")) >= 0:
                    line = bytes(pending[:end])
                    del pending[: end + 1]
                    if line.strip():
                        yield json.loads(line)
