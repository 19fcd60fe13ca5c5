"""Leader election on a coordination.k8s.io Lease, so that of several replicas exactly one acts.

The rules are client-go's: a holder renews well within the lease duration; a candidate takes the lease
only when its record has not changed for a whole duration, the one the holder recorded, *as observed on the
candidate's own clock*, so clock skew between replicas does not matter. A graceful leader releases the
lease on the way out, and a successor takes over within one retry period; a crashed one is replaced within
duration + retry period.

Never two leaders: a candidate cannot see a renewal before the holder sent it, so it cannot take over before
(send time + duration). The holder therefore counts its leadership from the moment it *sent* its last
successful renewal, gives every renewal only the time left (a hung call cannot carry it past the deadline),
and stops acting a retry period before the deadline. `leading()` says whether that time is still ahead:
the controller asks it right before every CAMS call and every write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes.aio import client

from cams_webhook_operator.kube.api import LEASES, timestamp
from cams_webhook_operator.kube.client import REQUEST_TIMEOUT, as_json, or_none, refused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renew_time: str | None  # as written by the holder; only compared for change, never as a clock
    resource_version: str | None  # None: the Lease does not exist yet
    duration_seconds: float | None = None  # the holder's leaseDurationSeconds: candidates honour it


def process_identity() -> str:
    """Unique per process: host (the pod's name), process ID and a random part (two processes of one
    pod, or a restarted one with the same PID, are never taken for each other)."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


def may_acquire(*, record: LeaseRecord, me: str, unchanged_for: float, lease_seconds: float) -> bool:
    """Whether `me` may write itself into the lease now. Pure."""
    if record.resource_version is None or not record.holder or record.holder == me:
        return True
    return unchanged_for >= lease_seconds


class LeaseApi(Protocol):
    async def read(self) -> LeaseRecord: ...
    async def write(self, record: LeaseRecord, *, holder: str | None, lease_seconds: int) -> bool: ...


class KubeLeaseApi:
    """One Lease through the official client's asyncio API. `write` creates or replaces it, and returns
    False when another writer got there first (409), which is how two candidates never both win. (The
    client's own kubernetes.aio.leaderelection is not used: it judges a lease by the wall clock, never
    releases it on the way out, and offers no "may I still act" check before each write.)"""

    def __init__(self, api: client.ApiClient, *, namespace: str, name: str) -> None:
        self._api = client.CustomObjectsApi(api)  # plain dicts: the Lease model re-formats MicroTime
        self._namespace = namespace
        self._name = name

    async def read(self) -> LeaseRecord:
        lease = await or_none(
            self._api.get_namespaced_custom_object(
                *LEASES, self._namespace, "leases", self._name, _request_timeout=REQUEST_TIMEOUT
            )
        )
        if lease is None:
            return LeaseRecord(None, None, None)
        body = as_json(lease)
        spec = body.get("spec") or {}
        version = (body.get("metadata") or {}).get("resourceVersion")
        return LeaseRecord(
            spec.get("holderIdentity"), spec.get("renewTime"), version, spec.get("leaseDurationSeconds")
        )

    async def write(self, record: LeaseRecord, *, holder: str | None, lease_seconds: int) -> bool:
        now = timestamp(datetime.now(UTC))
        metadata: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": lease_seconds,
            "renewTime": now,
        }
        if holder != record.holder:
            spec["acquireTime"] = now
        if record.resource_version is not None:
            metadata["resourceVersion"] = record.resource_version
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        leases = (*LEASES, self._namespace, "leases")
        if record.resource_version is None:
            write = self._api.create_namespaced_custom_object(*leases, body, _request_timeout=REQUEST_TIMEOUT)
        else:
            write = self._api.replace_namespaced_custom_object(
                *leases, self._name, body, _request_timeout=REQUEST_TIMEOUT
            )
        return await refused(write, 409, 422) is None  # another replica wrote it since it was read


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
        # Stop acting this long before the lease could expire for anyone: a retry period, but never so much
        # that a renewal (every third of the lease) finds no time left.
        self._margin = min(retry_seconds, lease_seconds / 3)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._seen: LeaseRecord | None = None
        self._seen_since = clock()
        self._valid_until = float("-inf")

    def _observe(self, record: LeaseRecord) -> None:
        if self._seen is None or (record.holder, record.renew_time) != (
            self._seen.holder,
            self._seen.renew_time,
        ):
            self._seen_since = self._clock()
        self._seen = record

    def leading(self) -> bool:
        """Whether this replica may act now: its last renewal, counted from when it was sent, is still
        good for more than the margin (a retry period, at most a third of the lease)."""
        return self._clock() < self._valid_until

    async def _try(self) -> bool:
        sent = self._clock()
        record = await self._api.read()
        self._observe(record)
        unchanged_for = self._clock() - self._seen_since
        if not may_acquire(
            record=record,
            me=self.identity,
            unchanged_for=unchanged_for,
            lease_seconds=record.duration_seconds or self._lease_seconds,
        ):
            return False
        if not await self._api.write(record, holder=self.identity, lease_seconds=int(self._lease_seconds)):
            return False
        self._valid_until = sent + self._lease_seconds - self._margin
        return True

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
        """Renew the lease until it cannot be renewed in time, then return (lost). Every renewal gets only
        the time left before `leading()` turns false: a hung call cannot keep a replica acting."""
        while True:
            await asyncio.sleep(max(0.0, min(self._renew_every, self._valid_until - self._clock())))
            left = self._valid_until - self._clock()
            if left <= 0:
                logger.error("Could not renew the leader lease in time")
                return
            try:
                async with asyncio.timeout(left):
                    renewed = await self._try()
            except TimeoutError:
                logger.error("Renewing the leader lease did not finish in time")
                return
            except Exception:
                logger.exception("Could not renew the leader lease")
                continue
            if not renewed:
                logger.error("Lost the leader lease to %s", self._seen.holder if self._seen else "?")
                return

    async def release(self) -> None:
        """Give the lease up so that a successor takes over at once. A courtesy, bounded by a renewal
        period: if the API server does not answer (a Kubernetes call with its retries may take over a
        minute), the lease runs out by itself, and the replica's exit must not wait for it."""
        try:
            async with asyncio.timeout(self._renew_every):
                record = await self._api.read()
                if record.holder == self.identity:
                    await self._api.write(record, holder=None, lease_seconds=1)
        except TimeoutError:
            logger.warning("Could not release the leader lease in time; it will expire by itself")
        except Exception:
            logger.exception("Could not release the leader lease")
