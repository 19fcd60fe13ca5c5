"""The connection to the API server: the official client's asyncio API (`kubernetes.aio`, on aiohttp),
configured the way it configures itself (the pod's ServiceAccount, else KUBECONFIG or the current context;
its token is re-read as the kubelet rotates it), and the little it does not do, written here:

- a paged listing that starts over when its continue token expired (`pages`);
- `name`, the guard in front of every name that goes into a path: the client percent-encodes each path
  parameter whole (`quote(name, safe="")`, so "a/b" stays one segment), but a name of dots only ('.',
  '..') would still be a step up the path once aiohttp normalises the URL, so it is refused here;
- `answer`, the JSON of a call made with `_without_preload_content`: where the answer's model is not needed
  (Leases, Events), building it would cost more than the call (a Lease model per claim on a restart over
  10,000 numbers);
- `CoreGroup`, the core group's few calls (Secrets, Events, namespaces) through the client's own request
  path (`param_serialize` and `call_api`: its path encoding, authentication and session) instead of its
  `CoreV1Api`, whose module (some 400 methods, each wrapped by pydantic's validate_call) costs 24 MiB of
  memory once imported: more than a fifth of the operator at 1,000 objects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException

logger = logging.getLogger(__name__)
__all__ = [
    "ApiException",
    "CoreGroup",
    "answer",
    "as_json",
    "connect",
    "custom_pages",
    "name",
    "or_none",
    "pages",
    "refused",
]
T = TypeVar("T")

# Seconds for one call (the client takes a number as aiohttp's total timeout): without it, a connection the
# API server never answers would hold a reconcile forever, silently; with it the call fails, is logged and
# retried with backoff.
REQUEST_TIMEOUT = 20.0
# Connections to the API server: enough for the workers and the lanes' answers. Each holds a TLS read buffer,
# so not the client's default of 100.
CONNECTIONS = 32
# Objects per page of a listing. One answer with all of them would hold every object's JSON and its parsed
# dicts at once: listing 10,000 claim Leases in one answer raised a restart's peak RSS from 118 to 168 MiB.
PAGE = 500
# Kubernetes' own media type for "the objects' metadata only": enough to tell which objects still exist.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


async def connect() -> client.ApiClient:
    """In-cluster settings when running in a pod, else KUBECONFIG / the current context."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # KUBECONFIG as it is now (the client reads it when imported); persist_config=False: the operator
        # never writes to the user's kubeconfig.
        await config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration, persist_config=False
        )
    configuration.connection_pool_maxsize = CONNECTIONS
    configuration.retries = None  # the controller retries with its own backoff, per object
    # The client's session trusts the environment, and aiohttp then looks the proxy up (every variable, and
    # the netrc file) in a worker thread for every request: 10 % of the operator's CPU converging 3,000
    # objects, and a thread pool's memory. The proxy is looked up here once instead, as the environment
    # says (HTTPS_PROXY and NO_PROXY), unless the kubeconfig names one (proxy-url).
    configuration.client_session_kwargs = {"trust_env": False}
    if not configuration.proxy:
        configuration.proxy = environment_proxy(configuration.host)
    return client.ApiClient(configuration)


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY/HTTP_PROXY, unless NO_PROXY bypasses it)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):  # NO_PROXY (on Linux: the environment only)
        return None
    return urllib.request.getproxies_environment().get(urllib.parse.urlsplit(url).scheme)


async def streams_initial_events(api: client.ApiClient) -> bool:
    """Whether the API server streams a watch's initial state (`sendInitialEvents`, the WatchList feature):
    on by default from Kubernetes 1.34 (it was on in 1.32, then off in 1.33, where asking is refused)."""
    failures = 0
    while True:  # kopf starts no watch before this is known; an API server not there yet is waited for
        try:
            version = await client.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT)
            break
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            failures += 1
            delay = min(30.0, 2.0 ** min(failures - 1, 5))
            why = f"HTTP {exc.status}" if isinstance(exc, ApiException) else type(exc).__name__
            logger.warning("Asking the API server its version failed (%s); again in %.0fs", why, delay)
            await asyncio.sleep(delay)
    major, minor = (
        int("".join(c for c in part if c.isdigit()) or 0) for part in (version.major, version.minor)
    )
    return (major, minor) >= (1, 34)


def name(value: str) -> str:
    """`value`, to be put into a path by the official client (which percent-encodes it whole); refused when
    no encoding keeps it a name: empty, or dots only. Names were validated before (api/names.py); this
    holds even if one was not."""
    if not value or value.strip(".") == "":
        raise ValueError(f"{value!r} is not a name that may go into a path")
    return value


def as_json(value: object) -> dict[str, Any]:
    """A custom-object call's answer: the client types it `object`; it is the decoded JSON object."""
    return value if isinstance(value, dict) else {}


async def answer(response: Awaitable[aiohttp.ClientResponse]) -> dict[str, Any]:
    """The JSON object of an answer; a refusal raises the client's ApiException (status, reason, body)."""
    received = await response
    raw = await received.read()
    if received.status >= 300:
        raise ApiException(
            status=received.status, reason=received.reason, body=raw.decode("utf-8", "replace")
        )
    return as_json(json.loads(raw) if raw else {})


async def or_none(call: Awaitable[T], *statuses: int) -> T | None:
    """The call's answer; None when the API server refused it with one of `statuses` (404 when none is
    given: the object does not exist). Every other refusal is raised."""
    try:
        return await call
    except ApiException as exc:
        if exc.status in (statuses or (404,)):
            return None
        raise


async def refused(call: Awaitable[object], *statuses: int) -> int | None:
    """None when the call was done; the status when the API server refused it with one of `statuses`
    (a caller that must tell them apart). Every other refusal is raised."""
    try:
        await call
    except ApiException as exc:
        if exc.status in statuses:
            return int(exc.status)
        raise
    return None


async def pages(
    list_page: Callable[..., Awaitable[aiohttp.ClientResponse]],
    *,
    started_over: Callable[[], None] = lambda: None,
    **params: Any,
) -> AsyncIterator[dict[str, Any]]:
    """The pages of a listing made with one of the client's `list_*_without_preload_content` calls, PAGE
    objects each. A continue token that the API server no longer keeps (410 Expired: etcd compacted its
    version while a slow reader worked through the pages) starts the listing over from the first page,
    after `started_over` (what was gathered may have changed since)."""
    token: str | None = None
    while True:
        following = {"_continue": token} if token else {}
        try:
            page = await answer(
                list_page(**params, **following, limit=PAGE, _request_timeout=REQUEST_TIMEOUT)
            )
        except ApiException as exc:
            if exc.status == 410 and token is not None:
                started_over()
                token = None
                continue
            raise
        yield page
        token = (page.get("metadata") or {}).get("continue") or None
        if token is None:
            return


def custom_pages(
    custom: client.CustomObjectsApi,
    *,
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    **params: Any,
) -> AsyncIterator[dict[str, Any]]:
    """The pages (`pages`) of the objects of a custom kind in one namespace, or in all (`namespace` None)."""
    where = {"group": group, "version": version, "plural": plural, **params}
    if namespace is None:
        return pages(custom.list_cluster_custom_object_without_preload_content, **where)
    return pages(custom.list_namespaced_custom_object_without_preload_content, namespace=namespace, **where)


class CoreGroup:
    """`/api/v1` calls as the generated CoreV1Api makes them, for the paths the operator uses. Each returns
    the raw answer, for `answer` (or `pages`) to read."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    async def _call(
        self,
        method: str,
        path: str,
        path_params: dict[str, str],
        *,
        query: dict[str, Any] | None = None,
        body: object = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        _request_timeout: float = REQUEST_TIMEOUT,
    ) -> aiohttp.ClientResponse:
        header_params = {"Accept": "application/json", **(headers or {})}
        if content_type is not None:
            header_params["Content-Type"] = content_type
        serialized = await self._api.param_serialize(
            method=method,
            resource_path=path,
            path_params=path_params,
            query_params=[(key, value) for key, value in (query or {}).items() if value is not None],
            header_params=header_params,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = await self._api.call_api(*serialized, _request_timeout=_request_timeout)
        received: aiohttp.ClientResponse = response.response
        return received

    def read_secret(self, namespace: str, name_: str) -> Awaitable[aiohttp.ClientResponse]:
        path = "/api/v1/namespaces/{namespace}/secrets/{name}"
        return self._call("GET", path, {"namespace": name(namespace), "name": name(name_)})

    def create_event(self, namespace: str, body: dict[str, Any]) -> Awaitable[aiohttp.ClientResponse]:
        path = "/api/v1/namespaces/{namespace}/events"
        return self._call(
            "POST", path, {"namespace": name(namespace)}, body=body, content_type="application/json"
        )

    def patch_event(
        self, namespace: str, name_: str, body: dict[str, Any]
    ) -> Awaitable[aiohttp.ClientResponse]:
        path = "/api/v1/namespaces/{namespace}/events/{name}"
        params = {"namespace": name(namespace), "name": name(name_)}
        return self._call("PATCH", path, params, body=body, content_type="application/merge-patch+json")

    def read_namespace(self, name_: str) -> Awaitable[aiohttp.ClientResponse]:
        return self._call("GET", "/api/v1/namespaces/{name}", {"name": name(name_)})

    def list_namespaces(
        self,
        *,
        limit: int,
        _continue: str | None = None,
        _request_timeout: float = REQUEST_TIMEOUT,
        _headers: dict[str, str] | None = None,
    ) -> Awaitable[aiohttp.ClientResponse]:
        """In the shape of the client's list calls, for `pages`."""
        query = {"limit": limit, "continue": _continue}
        return self._call(
            "GET", "/api/v1/namespaces", {}, query=query, headers=_headers, _request_timeout=_request_timeout
        )
