"""Objects as the API server has them (PhoneWebhooks, the accounts, namespaces): listed, then watched, and
handed to the controller in the API server's order, with a signal once every watched namespace has been
listed. The controller decides nothing before every informer has listed: an object decided before the
accounts are known would be shown Stalled (NoAccount) for a moment at every restart.

Not kopf's watch: kopf gives every object of its initial listing a worker that waits until all objects
are indexed, and wakes all of them for each object indexed. A restart over 3,000 objects took 85 CPU-s,
ten times that over 1,000. Here a listing is a loop over pages, and the controller knows when it is over
(it decides who manages a number only once it knows every object that claims one).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from cams_webhook_operator.api.models import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    PLURAL,
    VERSION,
)
from cams_webhook_operator.kube_http import api_path, listing

logger = logging.getLogger(__name__)
Key = tuple[str, str]
GLOB = set("*?[!")


class Http(Protocol):
    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...

    def watch(self, path: str, params: Mapping[str, str]) -> Any: ...


@dataclass(frozen=True)
class Resource:
    api: str  # "/apis/<group>/<version>", or "/api/v1" for the core group
    plural: str
    namespaced: bool = True


PHONEWEBHOOKS = Resource(f"/apis/{GROUP}/{VERSION}", PLURAL)
CAMS_ACCOUNTS = Resource(f"/apis/{GROUP}/{VERSION}", ACCOUNT_PLURAL)
CLUSTER_CAMS_ACCOUNTS = Resource(f"/apis/{GROUP}/{VERSION}", CLUSTER_ACCOUNT_PLURAL, namespaced=False)
NAMESPACES = Resource("/api/v1", "namespaces", namespaced=False)


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (meta.get("namespace") or "", meta["name"])  # "": a cluster-scoped object


def namespace_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    """kopf's `--namespace` patterns: globs, and `!pattern` to leave namespaces out."""
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]

    def wanted(namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in excluded):
            return False
        return not included or any(fnmatch.fnmatchcase(namespace, p) for p in included)

    return wanted


class Informer:
    """One list-then-watch loop per watched namespace (or one for all namespaces when none is given, or
    when a pattern is): `seen(body)` for every object listed, added or modified, `gone(namespace, name)`
    for every object deleted (or missing from a new listing), `listed()` once every loop has listed.
    `known()`: the keys seen and not gone yet, as the receiver keeps them (a second set here would cost
    200 bytes per object); a new listing is compared with them."""

    def __init__(
        self,
        http: Http,
        *,
        resource: Resource = PHONEWEBHOOKS,
        namespaces: Sequence[str],
        seen: Callable[[Mapping[str, Any]], None],
        gone: Callable[[str, str], None],
        listed: Callable[[], None],
        known: Callable[[], Iterable[Key]],
        retry_max_seconds: float = 30.0,
    ) -> None:
        self._http = http
        self._resource = resource
        if not resource.namespaced:
            namespaces = []  # a cluster-scoped resource: one listing, every object
        exact = bool(namespaces) and not any(GLOB & set(n) for n in namespaces)
        self._targets: list[str | None] = list(namespaces) if exact else [None]
        self._wanted = namespace_filter([] if exact else namespaces)
        self._seen, self._gone, self._listed, self._known = seen, gone, listed, known
        self._retry_max = retry_max_seconds
        self._unlisted = set(self._targets)

    def _hand(self, key: Key, to: Callable[..., None], *args: Any) -> None:
        """One object to the controller; a failure (a bug) is logged and costs that object, not the watch."""
        try:
            to(*args)
        except Exception:
            logger.exception("Handling %s %s/%s failed", self._resource.plural, *key)

    def _path(self, namespace: str | None) -> str:
        where = ("namespaces", namespace) if namespace else ()
        return api_path(self._resource.api, *where, self._resource.plural)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for target in self._targets:
                tasks.create_task(self._follow(target), name=f"{self._resource.plural}-{target or 'all'}")

    async def _follow(self, target: str | None) -> None:
        failures = 0
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list(target)
                    if target in self._unlisted:
                        self._unlisted.discard(target)
                        if not self._unlisted:
                            self._listed()
                version = await self._watch(target, version)
                failures = 0
            except ApiException as exc:
                if exc.status == 410:  # the version is too old to watch from: list again
                    version = None
                    continue
                failures += 1
                await self._pause(target, f"HTTP {exc.status}", failures)
            except Exception as exc:  # the connection, the stream, a bug: never stop watching
                failures += 1
                await self._pause(target, type(exc).__name__, failures)

    async def _pause(self, target: str | None, why: str, failures: int) -> None:
        delay = min(self._retry_max, 2.0 ** (failures - 1))
        logger.warning(
            "Watching %s in %s failed (%s); again in %.0fs",
            self._resource.plural,
            target or "all namespaces",
            why,
            delay,
        )
        await asyncio.sleep(delay)

    async def _list(self, target: str | None) -> str:
        """Every object, page by page; those that a previous listing had and this one lacks are gone."""
        listed: set[Key] = set()
        meta: Mapping[str, Any] = {}
        async for page in listing(self._http, self._path(target), started_over=listed.clear):
            for item in page.get("items") or []:
                key = _key(item)
                if self._wanted(key[0]):
                    listed.add(key)
                    self._hand(key, self._seen, item)
            meta = page.get("metadata") or {}
        missing = [
            key
            for key in self._known()
            if key not in listed and (key[0] == target if target else self._wanted(key[0]))
        ]
        for key in missing:
            self._hand(key, self._gone, *key)
        return str(meta["resourceVersion"])

    async def _watch(self, target: str | None, version: str) -> str:
        """Changes since `version` until the API server ends the stream; the version to go on from."""
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        async for event in self._http.watch(self._path(target), params):
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise ApiException(
                    status=body.get("code"), reason=body.get("reason"), body=str(body.get("message"))
                )
            version = str(body["metadata"]["resourceVersion"])
            if kind == "BOOKMARK":
                continue
            key = _key(body)
            if not self._wanted(key[0]):
                continue
            if kind == "DELETED":
                self._hand(key, self._gone, *key)
            else:
                self._hand(key, self._seen, body)
        return version
