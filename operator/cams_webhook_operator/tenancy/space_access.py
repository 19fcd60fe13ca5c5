"""Whether credentials reach a space, proven before they may claim a number in it.

A claim decides who manages a number for as long as its object exists. Taken on the word of any Secret,
it let a tenant block every number it could name: a made-up key, or a real key of another Alibaba account,
named a number first and the rightful owner stayed in `Conflict` (issue 28). So credentials claim a number
only once CAMS has shown them the number's space: one `QueryChatappPhoneNumbers` answered OK with them.

A read rather than the update itself, because the read changes nothing in CAMS and proves both that the
key is real and that its Alibaba account owns the space (CAMS answers `Unknown.ResourceOwnerId`
otherwise), before any webhook is touched; and one read per (credentials, space) serves every number of
the space, so it costs one call per team and space, paced with the other reads of the account. The proof
lasts until CAMS refuses the credentials (`forget`). A refusal is remembered for the permanent-retry
interval, so that the objects that use them are told why and read again only then, or at once when their
Secret changes (other credentials, another proof). A read that fails for now (CAMS failing, throttled)
proves nothing: the objects wait with backoff and share one read every few seconds, and an object that
holds its claim already is not affected (it proves nothing again), so an outage delays only new numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cams_webhook_operator.api.models import timestamp
from cams_webhook_operator.cams.messages import QUERY_PHONE_NUMBERS
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved, token_to_renew
from cams_webhook_operator.tenancy.shared_calls import SharedCalls

SpaceReader = Callable[[str, Resolved], Awaitable[tuple[Outcome, object]]]
Proof = tuple[str, str]  # (which credentials, space)
# Entries kept at most; past it they are forgotten and proven again (one read each): a bound against a
# tenant that rotates made-up keys.
MAX_ENTRIES = 10_000
# How long a read that failed for now (CAMS failing, its read quota spent) stands for every object that
# asks about the same credentials and space.
TRANSIENT_SHARED = timedelta(seconds=5)


class SpaceAccess:
    def __init__(
        self,
        *,
        read: SpaceReader,
        renew: Callable[[Resolved], bool],
        now: Callable[[], datetime],
        refusal_seconds: float,
    ) -> None:
        """`read`: one paced read of a space; `renew`: ask for new RRSA credentials (True when the
        operator can); `refusal_seconds`: how long a refusal stands before the space is read again."""
        self._read = read
        self._renew = renew
        self._now = now
        self._refusal = timedelta(seconds=refusal_seconds)
        self._proven: set[Proof] = set()
        # Refusals, and reads that failed for now (shared for a few seconds, so that objects retrying
        # during an outage read once between them, not once each): the problem and until when.
        self._refused: dict[Proof, tuple[CredentialProblem, datetime]] = {}
        self._reading: SharedCalls[Proof, CredentialProblem | None] = SharedCalls()

    async def check(self, resolved: Resolved, space: str) -> CredentialProblem | None:
        """None when the credentials reach the space, else why they may not claim a number in it. Objects
        asking at once about the same credentials and space share one read."""
        proof = (resolved.identity, space)
        if proof in self._proven:
            return None
        if (refused := self._refused.get(proof)) is not None:
            if self._now() < refused[1]:
                return refused[0]
            del self._refused[proof]
        return await self._reading.run(proof, lambda: self._prove(proof, resolved, space))

    async def _prove(self, proof: Proof, resolved: Resolved, space: str) -> CredentialProblem | None:
        outcome, _ = await self._read(space, resolved)
        if len(self._proven) + len(self._refused) >= MAX_ENTRIES:
            self._proven.clear()
            self._refused.clear()
        if outcome.verdict is Verdict.OK:
            self._proven.add(proof)
            return None
        said = f"{outcome.answer.code}: {outcome.answer.message}" if outcome.answer else outcome.error
        renew = token_to_renew(outcome, resolved)
        if renew:
            self._renew(resolved)
        if not outcome.refused_for_good or renew:
            # Not proven, not refused: the object waits with backoff, as for any failed call. (Claiming
            # anyway would let a made-up key take a number whenever CAMS's reads fail.)
            retry_at = self._now() + TRANSIENT_SHARED
            problem = CredentialProblem(
                outcome.reason,
                f"Could not yet check that these credentials reach space {space} ({QUERY_PHONE_NUMBERS} "
                f"answered {said}); the number is claimed and applied once they do",
                transient=True,
            )
        else:
            retry_at = self._now() + self._refusal
            advice = f": {outcome.refusal.advice}" if outcome.refusal else ""
            problem = CredentialProblem(
                outcome.reason,
                f"CAMS refused these credentials on space {space} ({QUERY_PHONE_NUMBERS} answered {said})"
                f"{advice}. Credentials claim a number only once they have read its space, so that a key "
                "that does not reach the space never keeps the number from its owner. Checked again at "
                f"{timestamp(retry_at)}, or at once when the credentials change",
                retry_after=self._refusal.total_seconds(),
                answer=outcome.answer,
            )
        self._refused[proof] = (problem, retry_at)
        return problem

    def forget(self, resolved: Resolved, space: str) -> None:
        """CAMS refused an update with these credentials for good: they prove themselves again before
        they claim another number of the space."""
        self._proven.discard((resolved.identity, space))
