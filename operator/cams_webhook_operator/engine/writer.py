"""What the operator writes to the API server about one object: its status, its finalizer, its Events.

A status counts as written only once its patch worked: one whose patch failed stays on the object's
state, unwritten, and the next reconcile writes it (CAMS is not called again for it: the plan reads the
status decided, not the one written). Every Event is logged as it is posted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from cams_webhook_operator.api.accounts import AccountStatus
from cams_webhook_operator.api.models import CLEAR_FINALIZER
from cams_webhook_operator.api.refs import ObjectRef
from cams_webhook_operator.api.status_models import PhoneWebhookStatus
from cams_webhook_operator.decisions.state import Event, ObjectState
from cams_webhook_operator.tenancy.claims import ClaimApi
from cams_webhook_operator.tenancy.credentials import SecretData

logger = logging.getLogger(__name__)


class Kube(ClaimApi, Protocol):
    """The API server as the controller uses it: the claims' Leases (ClaimApi) and the calls below."""

    async def patch_status(self, ref: ObjectRef, status: PhoneWebhookStatus) -> bool: ...
    async def read_secret(self, namespace: str, name: str) -> SecretData | None: ...
    async def post_event(self, ref: ObjectRef, *, type_: Any, reason: str, message: str) -> None: ...
    async def add_finalizer(
        self, ref: ObjectRef, *, finalizer: str, current: list[str], resource_version: str
    ) -> None: ...
    async def remove_finalizer(self, ref: ObjectRef, *, finalizer: str, current: list[str]) -> None: ...
    async def patch_account_status(
        self, kind: str, namespace: str, name: str, status: AccountStatus
    ) -> None: ...


class ObjectWriter:
    def __init__(self, kube: Kube, *, gone: Callable[[ObjectRef], None] = lambda ref: None) -> None:
        """`gone(ref)`: a status write found the object deleted (a deletion no watch event reported)."""
        self._kube = kube
        self._gone = gone

    async def finalizer(self, state: ObjectState, change: Literal["add", "remove"]) -> None:
        """Add or remove the Clear finalizer, against the latest snapshot of the object."""
        snapshot = state.snapshot
        current = list(snapshot.finalizers)
        if change == "add":
            await self._kube.add_finalizer(
                snapshot.ref,
                finalizer=CLEAR_FINALIZER,
                current=current,
                resource_version=snapshot.resource_version,
            )
        else:
            await self._kube.remove_finalizer(snapshot.ref, finalizer=CLEAR_FINALIZER, current=current)

    async def status(self, state: ObjectState, status: PhoneWebhookStatus) -> None:
        """Patch the status unless the API server has it already."""
        if status == state.status and state.status_written:
            return
        state.status, state.status_written, state.status_from_watch = status, False, False
        if not await self._kube.patch_status(state.snapshot.ref, status):
            self._gone(state.snapshot.ref)
        state.status_written = True

    async def event(self, state: ObjectState, event: Event) -> None:
        ref = state.snapshot.ref
        level = logging.INFO if event.type == "Normal" else logging.WARNING
        logger.log(level, "%s %s/%s: %s", event.reason, ref.namespace, ref.name, event.message)
        await self._kube.post_event(ref, type_=event.type, reason=event.reason, message=event.message)
