"""Who manages an object's number, as the controller asks it: claims (claims.py) taken, kept and let go on
behalf of the objects, with the rules of tenancy and of numbers managed from before claims existed.

Apart from the controller so that it only asks "who holds this number?" and "this object no longer needs
it"; everything about Leases, grace periods and previous owners is here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from cams_webhook_operator.api.refs import Claim, Key
from cams_webhook_operator.decisions.plans import Priority
from cams_webhook_operator.decisions.state import (
    Claimant,
    ObjectState,
    States,
    claimant_of,
    holder_id,
)
from cams_webhook_operator.engine.background import Background
from cams_webhook_operator.tenancy.claims import ClaimStore
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved

logger = logging.getLogger(__name__)
# How often released claims are looked at for deletion: a claim goes at most this long after its grace.
SWEEP_SECONDS = 60.0
ClaimantsOf = Callable[[Claim], Iterable[Claimant]]
RecheckAfter = Callable[[Key, float, Priority], None]


class Ownership:
    def __init__(
        self,
        claims: ClaimStore,
        *,
        states: States,
        recheck_after: RecheckAfter,
        may_write: Callable[[], bool],
        background: Background,
        wall_clock: Callable[[], datetime],
    ) -> None:
        """`claimants_of` (an attribute: a test may replace it) lists the objects that claim a number
        (Manage mode), and whether CAMS holds their spec; by default the known objects (the controller
        decides nothing before the initial listing is over, so that none of this depends on the listing's
        order). Who holds a number is the claim's Lease; this list says whether a holder still claims it,
        and which object keeps a number that no Lease records yet. `may_write`: whether this replica acts
        (only the leader's workers write claims)."""
        self._claims = claims
        self._states = states
        self.claimants_of: ClaimantsOf = states.claimants
        self._recheck_after = recheck_after
        self._may_write = may_write
        self._background = background
        self._now = wall_clock

    async def warm(self) -> None:
        """Read every claim at once, and let go of those no object claims any more."""
        try:
            await self._claims.warm()
            if released := await self.release_unclaimed():
                logger.info("Released %d claims whose objects no longer claim their numbers", released)
        except Exception as exc:  # not fatal: each claim is then read when first needed
            logger.warning("Listing the claims failed (%s); reading them one by one", exc)

    async def holds(self, claim: Claim, key: Key) -> bool:
        """Whether the object holds the number's claim (not released): it needs to prove nothing more."""
        return await self._claims.holds(claim, holder_id(key))

    async def holder(
        self, state: ObjectState, claim: Claim, credentials: Resolved | CredentialProblem | None
    ) -> Claimant | None:
        """Who manages the object's number, as a plan sees it, without writing anything. An object whose
        credentials work (resolved, and proven on the space) sees itself when the number is free for it
        (taking it is an act of its plan: `take`). One refused (its account, its Secret, or CAMS refused
        its credentials) learns nothing of who does (None)."""
        me = holder_id(state.snapshot.key)
        if isinstance(credentials, CredentialProblem):
            return None
        if isinstance(credentials, Resolved) and not state.snapshot.deleting:
            holding = await self._claims.peek(claim, me, previous_owner=self._previous_owner(state, claim))
            return claimant_of(holding.holder, holding.free_at)
        return claimant_of(await self._claims.holder(claim))

    async def take(self, state: ObjectState, claim: Claim) -> bool:
        """The plan's act: claim the number for the object. False when another object won it since the
        plan was made (the object is decided again)."""
        me = holder_id(state.snapshot.key)
        holding = await self._claims.acquire(claim, me, previous_owner=self._previous_owner(state, claim))
        return holding.holder == me

    async def release_unclaimed(self) -> int:
        """Let go of the claims whose holder no longer claims its number (deleted, or switched to Observe,
        while no replica led), with the grace period as for any release. Once, when this replica starts to
        act: afterwards every such change releases its claim as it happens. Returns how many."""
        stale = [
            (claim, holder)
            for claim, holder in self._claims.held()
            if holder not in {holder_id((c.namespace, c.name)) for c in self.claimants_of(claim)}
        ]
        for claim, holder in stale:
            await self._claims.release(claim, holder)
        return len(stale)

    async def drop(self, claim: Claim, key: Key) -> None:
        """The object was refused: its claim (if it holds one) goes at once, with no grace period (the
        grace keeps a number for an object that comes back, not for one that may not have it), and the
        objects waiting for the number are decided again."""
        if self._may_write() and await self._claims.drop(claim, holder_id(key)):
            for waiting in self.waiting_for(claim, key):
                self._recheck_after(waiting, 0.0, Priority.CHANGE)

    async def run(self) -> None:
        """Delete released claims once their grace period is over and no object claims them."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            if not self._may_write():
                continue
            try:
                if deleted := await self._claims.sweep(lambda claim: bool(self.claimants_of(claim))):
                    logger.info("Deleted %d released claims whose grace period was over", deleted)
            except Exception as exc:  # the API server failing: the next sweep tries again
                logger.warning("Deleting released claims failed (%s); trying again later", exc)

    def _previous_owner(self, state: ObjectState, claim: Claim) -> str | None:
        """Another object whose spec CAMS holds for this number, from before claims were recorded."""
        if state.status.applied_fingerprint is not None:
            return None
        applied = sorted(c for c in self.claimants_of(claim) if c.applied)
        return holder_id((applied[0].namespace, applied[0].name)) if applied else None

    def release_soon(self, claim: Claim, key: Key) -> None:
        """The object no longer manages its number. Only the acting replica writes claims; and not if the
        object is back (created again, or switched back to Manage) by the time the release would go out."""

        def back() -> bool:
            state = self._states.get(key)
            return state is not None and state.snapshot.claim == claim

        if self._may_write():
            self._background.start(self._claims.release(claim, holder_id(key), unless=back))

    def waiting_for(self, claim: Claim, released_by: Key) -> list[Key]:
        """The other objects that claim the number `released_by` let go of: they are decided again."""
        return [
            (c.namespace, c.name) for c in self.claimants_of(claim) if (c.namespace, c.name) != released_by
        ]
