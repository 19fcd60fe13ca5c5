"""Claims: who manages a number, decided from the claim the API server holds (pure), and the store that
reads and writes it with optimistic concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cams_webhook_operator.tenancy.claims import (
    ClaimRecord,
    ClaimStore,
    Holding,
    Step,
    claim_step,
    lease_name,
)
from tests.unit.fakes import FakeClaimApi

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)
CLAIM = ("space", "8613800001234")


def _step(record: ClaimRecord | None, me: str = "a/one", previous_owner: str | None = None) -> Step:
    return claim_step(record, me, now=NOW, grace=GRACE, previous_owner=previous_owner).step


def test_a_free_number_is_claimed_by_whoever_asks_first_unless_cams_holds_another_objects_spec() -> None:
    assert _step(None) is Step.CREATE
    assert _step(None, previous_owner="a/one") is Step.CREATE
    decided = claim_step(None, "b/two", now=NOW, grace=GRACE, previous_owner="a/one")
    assert (decided.step, decided.holder) == (Step.CONFLICT, "a/one")


def test_a_held_claim_is_never_taken_and_a_released_one_only_after_the_grace_or_by_its_holder() -> None:
    held = ClaimRecord("a/one", None, "1")
    assert _step(held) is Step.HOLD
    assert _step(held, "b/two") is Step.CONFLICT
    released = ClaimRecord("a/one", NOW - timedelta(minutes=1), "2")
    assert _step(released) is Step.RECLAIM, "the same namespace/name, re-created, takes it back at once"
    waiting = claim_step(released, "b/two", now=NOW, grace=GRACE)
    assert (waiting.step, waiting.free_at) == (Step.CONFLICT, NOW + timedelta(minutes=4))
    long_ago = ClaimRecord("a/one", NOW - GRACE, "3")
    assert _step(long_ago, "b/two") is Step.TAKE


def test_lease_names_are_dns_safe_and_distinct() -> None:
    name = lease_name(("Space_With.Dots", "8613800001234"))
    assert name.startswith("cams-claim-")
    assert name == name.lower()
    assert len(name) <= 63
    assert name != lease_name(("Space_With.Dots", "8613800001235"))


async def test_the_store_loses_a_race_gracefully_and_reports_the_winner() -> None:
    api = FakeClaimApi()
    store = ClaimStore(api, grace=GRACE, now=lambda: NOW)
    api.sneak = ClaimRecord("b/two", None, "99")  # another writer creates the claim between read and write
    holding = await store.acquire(CLAIM, "a/one")
    assert holding.holder == "b/two"
    assert api.records[CLAIM].holder == "b/two"


async def test_the_store_releases_only_its_own_claim() -> None:
    api = FakeClaimApi()
    store = ClaimStore(api, grace=GRACE, now=lambda: NOW)
    assert (await store.acquire(CLAIM, "a/one")).holder == "a/one"
    await store.release(CLAIM, "b/two")
    assert api.records[CLAIM].released_at is None
    await store.release(CLAIM, "a/one")
    assert api.records[CLAIM].released_at == NOW
    assert (await store.acquire(CLAIM, "b/two")).free_at == NOW + GRACE


@pytest.mark.parametrize("holder", ["a/one", "b/two"])
async def test_a_claim_read_once_is_not_read_again(holder: str) -> None:
    api = FakeClaimApi()
    api.records[CLAIM] = ClaimRecord(holder, None, "1")
    store = ClaimStore(api, grace=GRACE, now=lambda: NOW)
    await store.acquire(CLAIM, "a/one")
    del api.records[CLAIM]  # the cache answers: only the leader writes claims
    assert await store.holder(CLAIM) == holder


async def test_decisions_on_one_claim_wait_for_each_other_and_leave_no_lock_behind() -> None:
    """Two objects of one number decided at once: the second sees the first's claim (one write, one
    winner); afterwards no per-number lock is kept (at 10,000 numbers they were 4 MB)."""
    api = FakeClaimApi()
    store = ClaimStore(api, grace=GRACE, now=lambda: NOW)
    first, second = await asyncio.gather(store.acquire(CLAIM, "a/one"), store.acquire(CLAIM, "b/two"))
    assert (first.holder, second.holder) == ("a/one", "a/one")
    assert api.versions == 1
    assert store._locks == {}


async def test_a_dropped_claim_is_gone_at_once_and_only_its_holders() -> None:
    """A refused holder's claim is deleted, not released: no grace period keeps the number from others."""
    api = FakeClaimApi()
    store = ClaimStore(api, grace=GRACE, now=lambda: NOW)
    await store.acquire(CLAIM, "a/one")
    assert not await store.drop(CLAIM, "b/two")
    assert await store.drop(CLAIM, "a/one")
    assert CLAIM not in api.records
    assert (await store.acquire(CLAIM, "b/two")) == Holding("b/two")


async def test_released_claims_are_deleted_after_their_grace_unless_claimed_again() -> None:
    api = FakeClaimApi()
    now = [NOW]
    store = ClaimStore(api, grace=GRACE, now=lambda: now[0])
    gone, back = ("space", "1"), ("space", "2")
    for claim in (gone, back, CLAIM):
        await store.acquire(claim, "a/one")
    await store.release(gone, "a/one")
    await store.release(back, "a/one")
    assert await store.sweep(lambda claim: False) == 0, "not before the grace period is over"
    now[0] = NOW + GRACE
    assert await store.sweep(lambda claim: claim == back) == 1
    assert set(api.records) == {back, CLAIM}, "a held claim and one claimed again stay"
    assert await store.holder(gone) is None
