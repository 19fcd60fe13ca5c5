"""Who manages which number: one claim per (space, number), recorded in the API server.

A claim is a Lease in the operator's namespace, created only if absent and changed only with the version
read (so two writers never both win), naming its holder as `namespace/name`. It survives restarts and
does not depend on the order in which a watch lists objects. Only an object that its account allows on the
space gets as far as claiming (the controller checks tenancy first); an observer claims nothing, so
switching an object from Observe to Manage never takes a number from its holder.

When the holder is deleted, the claim is marked released and stays reserved for an object of the same
namespace and name (an Argo CD Replace or a restore re-creates it): any other object may take the number
only `grace` after the release. `claim_step` is pure; `ClaimStore` reads and writes the Leases.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cams_webhook_operator.api.refs import Claim


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A claim as the API server holds it."""

    holder: str  # "namespace/name" of the PhoneWebhook that manages the number
    released_at: datetime | None  # when the holder was deleted (or stopped managing the number)
    resource_version: str


class Step(enum.Enum):
    HOLD = "hold"  # the claim is this object's: nothing to write
    CREATE = "create"  # nobody claims the number: create the claim
    TAKE = "take"  # the holder let go more than `grace` ago: write this object in
    RECLAIM = "reclaim"  # this object (re-created, or managing again) takes back its released claim
    CONFLICT = "conflict"  # another object holds the number


@dataclass(frozen=True)
class ClaimDecision:
    step: Step
    holder: str | None = None  # with CONFLICT: who holds it
    free_at: datetime | None = None  # with CONFLICT: when a released claim may be taken


def claim_step(
    record: ClaimRecord | None,
    me: str,
    *,
    now: datetime,
    grace: timedelta,
    previous_owner: str | None = None,
) -> ClaimDecision:
    """`previous_owner`: another object that CAMS already holds the spec of, when no claim exists yet
    (objects applied before claims existed): it keeps the number rather than whoever is decided first."""
    if record is None:
        if previous_owner is not None and previous_owner != me:
            return ClaimDecision(Step.CONFLICT, holder=previous_owner)
        return ClaimDecision(Step.CREATE)
    if record.holder == me:
        return ClaimDecision(Step.RECLAIM if record.released_at is not None else Step.HOLD)
    if record.released_at is not None:
        free_at = record.released_at + grace
        if now >= free_at:
            return ClaimDecision(Step.TAKE)
        return ClaimDecision(Step.CONFLICT, holder=record.holder, free_at=free_at)
    return ClaimDecision(Step.CONFLICT, holder=record.holder)


def lease_name(claim: Claim) -> str:
    """A DNS-safe name per (space, number): space IDs and numbers need not be valid names themselves."""
    digest = hashlib.sha256(f"{claim[0]}\0{claim[1]}".encode()).hexdigest()[:32]
    return f"cams-claim-{digest}"


class ClaimApi(Protocol):
    async def read_claim(self, claim: Claim) -> ClaimRecord | None: ...

    async def list_claims(self) -> dict[Claim, ClaimRecord]: ...

    async def write_claim(
        self, claim: Claim, *, holder: str, released_at: datetime | None, resource_version: str | None
    ) -> str | None:
        """Create (resource_version None) or replace the claim; its new version, or None when another
        writer changed it first."""
        ...

    async def delete_claim(self, claim: Claim, *, resource_version: str) -> bool:
        """Delete the claim if it is still at `resource_version`; False when another writer changed it
        first (a claim already gone counts as deleted)."""
        ...


@dataclass(frozen=True)
class Holding:
    """What claiming told: who holds the number now, and when a released claim may be taken."""

    holder: str | None
    free_at: datetime | None = None


@dataclass
class _ClaimLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding it or waiting for it


class ClaimStore:
    """The claims, read through a cache. Only the leader's workers write, so its cache stays true while it
    leads; a new leader starts empty and reads each claim once."""

    def __init__(self, api: ClaimApi, *, grace: timedelta, now: Callable[[], datetime]) -> None:
        self._api = api
        self._grace = grace
        self._now = now
        self._cache: dict[Claim, ClaimRecord | None] = {}
        self._complete = False  # the cache holds every claim: one it lacks does not exist
        self._locks: dict[Claim, _ClaimLock] = {}

    @asynccontextmanager
    async def _one_at_a_time(self, claim: Claim) -> AsyncIterator[None]:
        """One decision per claim at a time, so that a release in flight is seen. The lock goes once
        nobody holds or waits for it: kept for every number, locks cost 400 bytes per object."""
        entry = self._locks.get(claim)
        if entry is None:
            entry = self._locks[claim] = _ClaimLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[claim]

    async def warm(self) -> None:
        """Read every claim in one call when this replica starts to act, so that a restart over many
        objects reads none of them one by one."""
        listed: dict[Claim, ClaimRecord | None] = dict(await self._api.list_claims())
        self._cache = {**listed, **self._cache}
        self._complete = True

    async def _record(self, claim: Claim) -> ClaimRecord | None:
        if claim not in self._cache:
            self._cache[claim] = None if self._complete else await self._api.read_claim(claim)
        return self._cache[claim]

    async def holds(self, claim: Claim, me: str) -> bool:
        """Whether `me` holds the claim, not released."""
        async with self._one_at_a_time(claim):
            record = await self._record(claim)
        return record is not None and record.holder == me and record.released_at is None

    async def drop(self, claim: Claim, me: str) -> bool:
        """Delete `me`'s claim (released or not); True when there was one to delete."""
        async with self._one_at_a_time(claim):
            record = await self._record(claim)
            if record is None or record.holder != me:
                return False
            if not await self._api.delete_claim(claim, resource_version=record.resource_version):
                self._cache[claim] = await self._api.read_claim(claim)  # changed since: decide again later
                return False
            self._gone(claim)
            return True

    async def sweep(self, claimed: Callable[[Claim], bool]) -> int:
        """Delete the claims released more than `grace` ago that no object claims any more: nobody is
        coming back for them, and without this every number ever named would keep a Lease for good.
        Returns how many went."""
        now = self._now()
        expired = [c for c, r in self._cache.items() if r is not None and self._expired(r, now)]
        deleted = 0
        for claim in expired:
            async with self._one_at_a_time(claim):
                record = self._cache.get(claim)
                if record is None or not self._expired(record, now) or claimed(claim):
                    continue  # taken, or claimed again, since the list was made
                if await self._api.delete_claim(claim, resource_version=record.resource_version):
                    self._gone(claim)
                    deleted += 1
                else:
                    self._cache[claim] = await self._api.read_claim(claim)
        return deleted

    def _expired(self, record: ClaimRecord, now: datetime) -> bool:
        return record.released_at is not None and now >= record.released_at + self._grace

    def _gone(self, claim: Claim) -> None:
        """The claim no longer exists. A complete cache says so by not holding it (no entry per number
        ever named); an incomplete one must remember that it read nothing."""
        if self._complete:
            self._cache.pop(claim, None)
        else:
            self._cache[claim] = None

    async def holder(self, claim: Claim) -> str | None:
        """Who holds the number (released or not), without claiming it."""
        async with self._one_at_a_time(claim):
            record = await self._record(claim)
        return record.holder if record else None

    def held(self) -> list[tuple[Claim, str]]:
        """The claims in the cache that are held (not released), and by whom."""
        return [(c, r.holder) for c, r in self._cache.items() if r is not None and r.released_at is None]

    async def peek(self, claim: Claim, me: str, *, previous_owner: str | None = None) -> Holding:
        """Who would hold the number if `me` claimed it now (`me` when it is free for `me`), without
        writing: what a plan decides on; taking it is `acquire`, an act of the plan."""
        async with self._one_at_a_time(claim):
            record = await self._record(claim)
        decision = claim_step(record, me, now=self._now(), grace=self._grace, previous_owner=previous_owner)
        if decision.step is Step.CONFLICT:
            return Holding(decision.holder, decision.free_at)
        return Holding(me)

    async def acquire(self, claim: Claim, me: str, *, previous_owner: str | None = None) -> Holding:
        async with self._one_at_a_time(claim):
            return await self._acquire(claim, me, previous_owner)

    async def _acquire(self, claim: Claim, me: str, previous_owner: str | None) -> Holding:
        for _ in range(3):  # each lost race means someone else wrote: read again and decide again
            record = await self._record(claim)
            decision = claim_step(
                record, me, now=self._now(), grace=self._grace, previous_owner=previous_owner
            )
            if decision.step is Step.HOLD:
                return Holding(me)
            if decision.step is Step.CONFLICT:
                return Holding(decision.holder, decision.free_at)
            version = await self._api.write_claim(
                claim,
                holder=me,
                released_at=None,
                resource_version=record.resource_version if record else None,
            )
            if version is not None:
                self._cache[claim] = ClaimRecord(me, None, version)
                return Holding(me)
            self._cache[claim] = await self._api.read_claim(claim)
        raise RuntimeError(f"the claim of {claim[1]} in space {claim[0]} kept changing under us")

    async def release(self, claim: Claim, me: str, *, unless: Callable[[], bool] = lambda: False) -> None:
        """`me` no longer manages the number (deleted, or switched to Observe, or refused its space).
        `unless` is asked once the claim is this caller's alone: true when `me` claims it again by then."""
        async with self._one_at_a_time(claim):
            if not unless():
                await self._release(claim, me)

    async def _release(self, claim: Claim, me: str) -> None:
        record = await self._record(claim)
        if record is None or record.holder != me or record.released_at is not None:
            return
        now = self._now()
        version = await self._api.write_claim(
            claim, holder=me, released_at=now, resource_version=record.resource_version
        )
        if version is None:
            self._cache[claim] = await self._api.read_claim(claim)
        else:
            self._cache[claim] = ClaimRecord(me, now, version)
