"""Which Alibaba Cloud account credentials belong to: what CAMS counts its quota by.

CAMS allows 10 calls a second per Alibaba Cloud account ("per user" on its API pages), not per AccessKey:
two AccessKeys of one account, or a key and an RRSA role of it, share one quota. So the operator's lanes and
read pacers are keyed by the account, learned once per credentials with STS `GetCallerIdentity` (which needs
no permission), and a key someone made up, or one whose secret is wrong, joins no one's lane.

Where the account cannot be learned (STS unreachable, or refusing the credentials), the credentials get a
lane of their own, keyed by a digest of them (as every key had before 0.2.1): they are paced alone, and if
they are a second key of an account already in use, the two lanes together may ask CAMS for more than the
quota, which CAMS answers with flow control and the adaptive pacing then settles. The account is asked
again `RETRY_SECONDS` later, with a warning in the log meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Outcome
from cams_webhook_operator.tenancy.credentials import Resolved
from cams_webhook_operator.tenancy.shared_calls import SharedCalls

logger = logging.getLogger(__name__)
AskAccount = Callable[[Credentials], Awaitable[tuple[Outcome, str | None]]]
RETRY_SECONDS = 300.0
MAX_ENTRIES = 10_000  # past it every answer is forgotten and asked again: a bound against rotated keys
UNIDENTIFIED = "unidentified"  # the metrics' account label of every lane whose account is not known


def lane_label(lane: str) -> str:
    """A lane as metrics and logs name it: the Alibaba Cloud account ID, or `unidentified` (never a part
    of an AccessKey ID or a role ARN, and one series for all the credentials whose account is unknown)."""
    return lane if lane.startswith("account:") else UNIDENTIFIED


class AccountIds:
    def __init__(self, *, ask: AskAccount, clock: Callable[[], float] | None = None) -> None:
        """`ask`: STS GetCallerIdentity (the CAMS client's `caller_identity`)."""
        self._ask = ask
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._known: dict[str, str] = {}  # credentials -> their lane ("account:<AccountId>")
        self._unknown_until: dict[str, float] = {}  # credentials STS did not tell about -> ask again then
        self._asking: SharedCalls[str, str] = SharedCalls()

    async def lane_of(self, resolved: Resolved) -> str:
        """The lane of the credentials' Alibaba Cloud account; a lane of their own if it is not known."""
        who = resolved.identity
        if (known := self._known.get(who)) is not None:
            return known
        if self._unknown_until.get(who, float("-inf")) > self._clock():
            return _own_lane(who)
        return await self._asking.run(who, lambda: self._learn(who, resolved))

    async def _learn(self, who: str, resolved: Resolved) -> str:
        outcome, account_id = await self._ask(resolved.credentials)
        if len(self._known) + len(self._unknown_until) >= MAX_ENTRIES:
            self._known.clear()
            self._unknown_until.clear()
        if account_id is not None:
            lane = self._known[who] = f"account:{account_id}"
            return lane
        said = f"{outcome.answer.code}" if outcome.answer else outcome.error
        logger.warning(
            "Could not learn which Alibaba Cloud account the credentials of %s belong to (STS "
            "GetCallerIdentity: %s); their CAMS calls are paced on their own until STS tells, asked again "
            "in %.0f s",
            resolved.source,
            said,
            RETRY_SECONDS,
        )
        self._unknown_until[who] = self._clock() + RETRY_SECONDS
        return _own_lane(who)


def _own_lane(who: str) -> str:
    return "key:" + hashlib.sha256(who.encode()).hexdigest()[:16]
