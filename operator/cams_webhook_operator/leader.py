"""Leader election on a coordination.k8s.io Lease, so that of several replicas exactly one acts.

The rules are client-go's: a holder renews well within the lease duration; a candidate takes the lease
only when its record has not changed for a whole duration *as observed on the candidate's own clock*, so
clock skew between replicas does not matter. A graceful leader releases the lease on the way out, and a
successor takes over within one retry period; a crashed one is replaced within duration + retry period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import kubernetes
from kubernetes.client.exceptions import ApiException

from cams_webhook_operator.kube import call

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renew_time: str | None  # as written by the holder; only compared for change, never as a clock
    resource_version: str | None  # None: the Lease does not exist yet


def may_acquire(*, record: LeaseRecord, me: str, unchanged_for: float, lease_seconds: float) -> bool:
    """Whether `me` may write itself into the lease now. Pure."""
    if record.resource_version is None or not record.holder or record.holder == me:
        return True
    return unchanged_for >= lease_seconds


class LeaseApi(Protocol):
    async def read(self) -> LeaseRecord: ...
    async def write(self, record: LeaseRecord, *, holder: str | None, lease_seconds: int) -> bool: ...


class KubeLeaseApi:
    """One Lease through the official client (in a thread). `write` creates or replaces it, and returns
    False when another writer got there first (409), which is how two candidates never both win."""

    def __init__(self, api_client: Any, *, namespace: str, name: str) -> None:
        self._api = kubernetes.client.CoordinationV1Api(api_client)
        self._namespace = namespace
        self._name = name

    async def read(self) -> LeaseRecord:
        try:
            lease = await call(self._api.read_namespaced_lease, self._name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return LeaseRecord(None, None, None)
            raise
        spec = lease.spec
        renew = spec.renew_time.isoformat() if spec and spec.renew_time else None
        version = lease.metadata.resource_version if lease.metadata else None
        return LeaseRecord(spec.holder_identity if spec else None, renew, version)

    async def write(self, record: LeaseRecord, *, holder: str | None, lease_seconds: int) -> bool:
        client = kubernetes.client
        now = datetime.now(UTC)
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self._name, namespace=self._namespace, resource_version=record.resource_version
            ),
            spec=client.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=lease_seconds,
                acquire_time=now if holder != record.holder else None,
                renew_time=now,
            ),
        )
        try:
            if record.resource_version is None:
                await call(self._api.create_namespaced_lease, self._namespace, body)
            else:
                await call(self._api.replace_namespaced_lease, self._name, self._namespace, body)
        except ApiException as exc:
            if exc.status in (409, 422):
                return False
            raise
        return True


class LeaderElector:
    def __init__(
        self,
        api: LeaseApi,
        *,
        identity: str,
        lease_seconds: float = 15.0,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self.identity = identity
        self._lease_seconds = lease_seconds
        self._renew_every = lease_seconds / 3
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._seen: LeaseRecord | None = None
        self._seen_since = clock()

    def _observe(self, record: LeaseRecord) -> None:
        if self._seen is None or (record.holder, record.renew_time) != (
            self._seen.holder,
            self._seen.renew_time,
        ):
            self._seen_since = self._clock()
        self._seen = record

    async def _try(self) -> bool:
        record = await self._api.read()
        self._observe(record)
        unchanged_for = self._clock() - self._seen_since
        if not may_acquire(
            record=record, me=self.identity, unchanged_for=unchanged_for, lease_seconds=self._lease_seconds
        ):
            return False
        return await self._api.write(record, holder=self.identity, lease_seconds=int(self._lease_seconds))

    async def acquire(self) -> None:
        """Return once this replica holds the lease."""
        logged = False
        while True:
            try:
                if await self._try():
                    logger.info("Became the leader (%s)", self.identity)
                    return
            except Exception:  # the API server may be restarting: keep trying
                logger.exception("Could not read or write the leader lease")
            if not logged:
                logger.info(
                    "Waiting for the leader lease held by %s", self._seen.holder if self._seen else "?"
                )
                logged = True
            await asyncio.sleep(self._retry_seconds)

    async def hold(self) -> None:
        """Renew the lease until it cannot be renewed within the lease duration, then return (lost)."""
        last_renewed = self._clock()
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if await self._try():
                    last_renewed = self._clock()
                    continue
                logger.error("Lost the leader lease to %s", self._seen.holder if self._seen else "?")
                return
            except Exception:
                logger.exception("Could not renew the leader lease")
            # Stop acting before another replica may take over: never two leaders at once.
            if self._clock() - last_renewed >= self._lease_seconds - self._retry_seconds:
                logger.error("Could not renew the leader lease in time")
                return

    async def release(self) -> None:
        """Give the lease up so that a successor takes over at once."""
        try:
            record = await self._api.read()
            if record.holder == self.identity:
                await self._api.write(record, holder=None, lease_seconds=1)
        except Exception:
            logger.exception("Could not release the leader lease")
