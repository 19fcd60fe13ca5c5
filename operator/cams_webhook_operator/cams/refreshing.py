"""Temporary credentials the operator gets itself (RRSA, the node's RAM role, a credentials URI): cached,
refreshed well before they expire, one fetch at a time, failures remembered for a backoff step; and the
chain that picks the first identity that works, in the official default chain's order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cams_webhook_operator.cams.credentials import Credentials, IdentityError, TemporaryIdentity

# How long a caller waits for a fetch in flight before it is told to try again later.
FIRST_EXCHANGE_WAIT_SECONDS = 1.0
# Credentials are used until this many seconds (or a tenth of their life) before they expire, even when a
# refresh keeps failing.
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class TemporaryCredentials:
    credentials: Credentials
    expires_at: float  # on the provider's monotonic clock
    lifetime: float


def issued(fields: dict[str, Any], *, started: float, where: str, reason: str) -> TemporaryCredentials:
    """STS credentials as STS, the metadata server and a credentials URI all give them (AccessKeyId,
    AccessKeySecret, SecurityToken, Expiration), timed from `started` on the provider's clock."""
    try:
        expires = datetime.strptime(str(fields["Expiration"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        credentials = Credentials(
            access_key_id=str(fields["AccessKeyId"]),
            access_key_secret=str(fields["AccessKeySecret"]),
            security_token=str(fields["SecurityToken"]),
        )
    except (KeyError, ValueError):
        raise IdentityError(
            f"{where} answered without usable credentials", transient=True, reason=reason
        ) from None
    lifetime = max((expires - datetime.now(UTC)).total_seconds(), 1.0)
    return TemporaryCredentials(credentials, expires_at=started + lifetime, lifetime=lifetime)


@dataclass(frozen=True)
class _Failure:
    error: IdentityError
    retry_at: float  # no new fetch before this (monotonic clock)


class RefreshingCredentials:
    """Temporary credentials of one identity, refreshed when less than a third of their life is left.

    One fetch at a time, whatever the number of callers. While the credentials held are still valid, a
    refresh runs in the background and callers keep using them, even when the refresh fails (until a
    minute before they expire). A failed fetch is remembered for a backoff step (doubling from
    `retry_base_seconds` to `retry_max_seconds`): until then callers get the same error at once, and no
    caller ever waits on the source except for the very first credentials.
    """

    def __init__(
        self,
        identity: TemporaryIdentity,
        fetch: Callable[[], Awaitable[TemporaryCredentials]],
        *,
        failure_reason: str,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        """`fetch` gets new credentials (an STS exchange, a read of the metadata server) or raises
        IdentityError; `failure_reason` is the condition's reason while none can be had; `http`, the client
        `fetch` uses, is closed with this."""
        self.identity = identity
        self._closed_with = http
        self.failure_reason = failure_reason
        self._fetch = fetch
        self._clock = clock
        self._retry_base = retry_base_seconds
        # A fetch is cheap and the source's recovery is worth noticing soon: steps stop growing at 30 s.
        self._retry_max = min(retry_max_seconds, 30.0)
        self._current: TemporaryCredentials | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._failure: _Failure | None = None
        self._failures = 0
        self._retry_timer: asyncio.TimerHandle | None = None
        self.exchanges = 0  # fetches made so far (STS exchanges for RRSA)
        # Called when a fetch succeeds after failures: the objects that were refused credentials
        # meanwhile need not wait out their own backoff.
        self.on_recovered: Callable[[], None] | None = None

    @property
    def failing(self) -> bool:
        """Whether the last fetch failed (refused, or no answer)."""
        return self._failures > 0

    async def aclose(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)
        if self._closed_with is not None:
            await self._closed_with.aclose()

    def _fresh(self, now: float) -> bool:
        current = self._current
        return current is not None and current.expires_at - now > current.lifetime / 3

    def _usable(self, now: float) -> bool:
        current = self._current
        margin = min(EXPIRY_MARGIN_SECONDS, current.lifetime / 10) if current else 0.0
        return current is not None and current.expires_at - now > margin

    def invalidate(self) -> None:
        """CAMS refused the cached credentials' token: fetch anew at the next call."""
        self._current = None
        self._failure = None

    async def credentials(self) -> Credentials:
        now = self._clock()
        if not self._fresh(now):
            due = self._failure is None or now >= self._failure.retry_at
            if due and (self._fetching is None or self._fetching.done()):
                self._fetching = asyncio.create_task(self._refresh(), name="credentials-refresh")
            if not self._usable(now) and self._failure is None and self._fetching is not None:
                # Nothing to use yet and nothing known to be wrong: wait for the one fetch, but not
                # for a slow source: a caller holds a worker that objects with other credentials need.
                try:
                    await asyncio.wait_for(asyncio.shield(self._fetching), FIRST_EXCHANGE_WAIT_SECONDS)
                except TimeoutError:
                    raise IdentityError(
                        f"no answer yet for the credentials of {self.identity.label}; trying again",
                        transient=True,
                        reason=self.failure_reason,
                    ) from None
            if not self._usable(self._clock()):
                assert self._failure is not None
                raise self._failure.error
        assert self._current is not None
        return self._current.credentials

    async def _refresh(self) -> None:
        self.exchanges += 1
        try:
            self._current = await self._fetch()
        except IdentityError as exc:
            self._failures += 1
            step = min(self._retry_max, self._retry_base * 2 ** (self._failures - 1))
            self._failure = _Failure(exc, self._clock() + step)
            # Try again at the end of the step even if nobody asks: recovery is then noticed at once.
            self._retry_timer = asyncio.get_running_loop().call_later(step, self._retry)
        else:
            recovered = self._failures > 0
            self._failure, self._failures = None, 0
            if recovered and self.on_recovered is not None:
                self.on_recovered()

    def _retry(self) -> None:
        self._retry_timer = None
        if self._failure is not None and (self._fetching is None or self._fetching.done()):
            self._fetching = asyncio.create_task(self._refresh(), name="credentials-refresh")
