"""What the operator follows (PhoneWebhooks, both account kinds, namespaces), apart from kopf's watches:

- **listed once before the watches start** (`list_all`, from kopf's start-up handler, which kopf lets
  finish before it starts watching): the controller decides nothing until every object is known. An
  object decided before its account is known would be shown Stalled (NoAccount) for a moment at every
  restart, and who manages a number is decided only once every object that claims it is known. kopf's
  own listing gives no such signal (it is private to kopf).
- **compared again after kopf listed anew** (`catch_up`): kopf lists again when its watch fell too far
  behind (410) or could not resume; an object deleted in between has no DELETED event. Its first listing,
  a moment after ours, counts too: an object deleted between the two would be missed the same way. The
  objects known before are compared with a listing of names only (Kubernetes' metadata-only media type),
  and one that is missing there and answers 404 when read is forgotten.

Hand-written because no library does it: the official client's listing calls take a continue token but do
not follow it (kube_client.pages does, starting over when it expired).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.aio import client

from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.kube.client import (
    METADATA_ONLY,
    REQUEST_TIMEOUT,
    ApiException,
    CoreGroup,
    answer,
    custom_pages,
    pages,
    refused,
)

logger = logging.getLogger(__name__)
GLOB = set("*?[!")
# After kopf starts listing anew, how long until its objects are compared: one comparison for its whole
# listing, not one per object.
SETTLE_SECONDS = 30.0
RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Followed:
    """One resource, and what the controller does with its objects."""

    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool
    seen: Callable[[Mapping[str, Any]], None]  # listed, added or modified
    gone: Callable[[str, str], None]  # deleted (namespace, name)
    known: Callable[[], Iterable[Key]]  # seen and not gone, as the controller keeps them


def has_patterns(namespaces: Sequence[str]) -> bool:
    return any(GLOB & set(namespace) for namespace in namespaces)


def namespace_filter(patterns: Sequence[str]) -> Callable[[str], bool]:
    """kopf's `--namespace` patterns: globs, and `!pattern` to leave namespaces out."""
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]

    def wanted(namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in excluded):
            return False
        return not included or any(fnmatch.fnmatchcase(namespace, p) for p in included)

    return wanted


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Following:
    """`list_all` and `catch_up` for each resource, in the namespaces the operator serves."""

    def __init__(self, api: client.ApiClient, *, namespaces: Sequence[str]) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._core = CoreGroup(api)
        exact = bool(namespaces) and not has_patterns(namespaces)
        self._exact: list[str] = list(namespaces) if exact else []
        self._wanted = namespace_filter([] if exact else namespaces)
        self._relisted: dict[str, asyncio.Event] = {}

    def _targets(self, followed: Followed) -> list[str | None]:
        """One listing per watched namespace, or one of all (cluster-scoped, or every namespace wanted)."""
        return list(self._exact) if followed.namespaced and self._exact else [None]

    def _listing(self, followed: Followed, target: str | None, **params: Any) -> Any:
        if not followed.group:  # the core group: namespaces
            return pages(self._core.list_namespaces, **params)
        return custom_pages(
            self._custom,
            group=followed.group,
            version=followed.version,
            plural=followed.plural,
            namespace=target,
            **params,
        )

    def _mine(self, followed: Followed, key: Key) -> bool:
        return not followed.namespaced or self._wanted(key[0])

    async def list_all(self, followed: Followed) -> None:
        """Every object to `seen`, page by page; retried until it succeeds (the operator cannot start
        deciding without it)."""
        for target in self._targets(followed):
            failures = 0
            while True:
                try:
                    async for page in self._listing(followed, target):
                        for item in page.get("items") or []:
                            if self._mine(followed, _key(item)):
                                _hand(followed, followed.seen, item)
                    break
                except Exception as exc:  # the API server is not there yet, or refuses: try again
                    failures += 1
                    delay = min(RETRY_MAX_SECONDS, 2.0 ** min(failures - 1, 5))
                    logger.warning(
                        "Listing %s failed (%s); again in %.0fs", followed.plural, _why(exc), delay
                    )
                    await asyncio.sleep(delay)

    async def catch_up(self, followed: Followed) -> list[Key]:
        """Forget the objects known before that no longer exist; the keys forgotten."""
        before = set(followed.known())
        listed: set[Key] = set()
        for target in self._targets(followed):
            async for page in self._listing(
                followed, target, started_over=listed.clear, _headers={"Accept": METADATA_ONLY}
            ):
                listed.update(_key(item) for item in page.get("items") or [])
        forgotten = []
        for key in sorted(before - listed):
            if self._mine(followed, key) and not await self._exists(followed, key):
                _hand(followed, followed.gone, *key)
                forgotten.append(key)
        if forgotten:
            logger.info("Forgot %d deleted %s that no watch event reported", len(forgotten), followed.plural)
        return forgotten

    async def _exists(self, followed: Followed, key: Key) -> bool:
        namespace, name = key
        if not followed.group:
            read = self._core.read_namespace(name)
        elif namespace:
            read = self._custom.get_namespaced_custom_object_without_preload_content(
                followed.group,
                followed.version,
                namespace,
                followed.plural,
                name,
                _request_timeout=REQUEST_TIMEOUT,
            )
        else:
            read = self._custom.get_cluster_custom_object_without_preload_content(
                followed.group, followed.version, followed.plural, name, _request_timeout=REQUEST_TIMEOUT
            )
        return await refused(answer(read), 404) is None

    def relisted(self, followed: Followed) -> None:
        """kopf handed an object of its listing (event type None): compare once its listing has settled."""
        self._relisted.setdefault(followed.plural, asyncio.Event()).set()

    async def catch_up_after_relists(self, followed: Followed) -> None:
        """Run `catch_up` SETTLE_SECONDS after each new listing of kopf's, until cancelled; a failure is
        logged and the comparison tried again after the next pause."""
        relisted = self._relisted.setdefault(followed.plural, asyncio.Event())
        while True:
            await relisted.wait()
            await asyncio.sleep(SETTLE_SECONDS)
            relisted.clear()
            try:
                await self.catch_up(followed)
            except Exception as exc:
                logger.warning("Comparing %s with a listing failed (%s)", followed.plural, _why(exc))
                relisted.set()


def _hand(followed: Followed, to: Callable[..., None], *args: Any) -> None:
    """One object to the controller; a failure (a bug) is logged and costs that object, not the rest."""
    try:
        to(*args)
    except Exception:
        logger.exception("Handling one of the %s failed", followed.plural)


def _why(exc: Exception) -> str:
    return f"HTTP {exc.status}" if isinstance(exc, ApiException) else type(exc).__name__
