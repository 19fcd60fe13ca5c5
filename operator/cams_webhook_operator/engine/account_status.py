"""The status of CamsAccounts and ClusterCamsAccounts: can their credentials be used?

An account is checked when it changes and when the Secret it names changes; checking reads the Secret (or
the operator's identity), never CAMS. Its status is written only when the verdict changed, and counts as
written only once the patch worked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from cams_webhook_operator.api.accounts import AccountStatus, scope_of
from cams_webhook_operator.decisions.status import account_status
from cams_webhook_operator.tenancy.accounts import Account, AccountKey, choice_of
from cams_webhook_operator.tenancy.resolver import CredentialResolver

logger = logging.getLogger(__name__)


class AccountStatusApi(Protocol):
    async def patch_account_status(
        self, kind: str, namespace: str, name: str, status: AccountStatus
    ) -> None: ...


class AccountStatusWriter:
    def __init__(
        self,
        *,
        resolver: CredentialResolver,
        kube: AccountStatusApi,
        wall_clock: Callable[[], datetime],
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self._resolver = resolver
        self._leading = leading
        self._kube = kube
        self._now = wall_clock
        self._written: dict[AccountKey, AccountStatus] = {}
        self._dirty: dict[AccountKey, None] = {}  # in order, once each
        self._wakeup = asyncio.Event()

    def changed(self, account: Account, status: Mapping[str, Any] | None) -> None:
        """An account was listed, added or changed; `status` is what the API server holds."""
        if account.key not in self._written:
            try:
                self._written[account.key] = AccountStatus.model_validate(status or {})
            except ValidationError:
                self._written[account.key] = AccountStatus()
        self._mark(account.key)

    def forget(self, key: AccountKey) -> None:
        self._written.pop(key, None)
        self._dirty.pop(key, None)

    def secret_changed(self, namespace: str, name: str) -> None:
        for account in list(self._resolver.accounts.values()):
            if account.spec is not None and choice_of(account).secret == (namespace, name):
                self._mark(account.key)

    def _mark(self, key: AccountKey) -> None:
        self._dirty[key] = None
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._dirty:
                key = next(iter(self._dirty))
                del self._dirty[key]
                try:
                    await self._check(key)
                except Exception:
                    logger.exception("Checking %s failed; trying again in a minute", key)
                    asyncio.get_running_loop().call_later(60, self._mark, key)

    async def _check(self, key: AccountKey) -> None:
        account = self._resolver.accounts.get(key)
        previous = self._written.get(key)
        if account is None or previous is None:
            return
        verdict = await self._resolver.check(account)
        status = account_status(
            previous=previous, generation=account.generation, now=self._now(), verdict=verdict
        ).model_copy(update=scope_of(account.spec) if account.spec else {"spaces": None, "namespaces": None})
        if status == previous or not self._leading():
            return
        await self._kube.patch_account_status(key.kind, key.namespace, key.name, status)
        self._written[key] = status
        if not verdict.ready:
            logger.warning("%s is not ready: %s", key, verdict.message)
