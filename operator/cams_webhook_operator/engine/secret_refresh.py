"""Secrets are got by name and never watched (the operator needs no list or watch on Secrets): the ones that
objects and accounts name are read again every `CAMS_SECRET_REFRESH_SECONDS`, and at once when CAMS refuses
a key read from one (it may have been rotated since)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from cams_webhook_operator.engine.background import Background
from cams_webhook_operator.tenancy.credentials import SecretData

logger = logging.getLogger(__name__)
SecretChanged = Callable[[str, str, str | None], None]  # namespace, name, resourceVersion (None: gone)


class SecretRefresh:
    def __init__(
        self,
        *,
        read_secret: Callable[[str, str], Awaitable[SecretData | None]],
        to_refresh: Callable[[], Iterable[tuple[str, str]]],
        changed: SecretChanged,
        every: float,
        background: Background,
    ) -> None:
        self._read_secret = read_secret
        self._to_refresh = to_refresh
        self._changed = changed
        self._every = every
        self._background = background

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            for namespace, name in self._to_refresh():
                await self._reread(namespace, name)

    def refused(self, source: str) -> None:
        """CAMS refused the key read from `source`: if a Secret, read it now."""
        if not source.startswith("secret:"):
            return
        namespace, _, name = source.removeprefix("secret:").partition("/")
        self._background.start(self._reread(namespace, name))

    async def _reread(self, namespace: str, name: str) -> None:
        try:
            found = await self._read_secret(namespace, name)
        except Exception as exc:  # the API server is unavailable: the next refresh reads it again
            logger.warning("Reading Secret %s/%s failed: %s", namespace, name, exc)
            return
        self._changed(namespace, name, found.resource_version if found else None)
