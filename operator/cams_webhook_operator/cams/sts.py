"""RRSA: Alibaba Cloud's pod identity. The projected OIDC token is exchanged with STS AssumeRoleWithOIDC
(an anonymous call) for temporary credentials, which are cached per role and refreshed well before they
expire. Written here because the official `alibabacloud-credentials` ignores ALIBABA_CLOUD_STS_ENDPOINT
and its HTTP calls are blocking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cams_webhook_operator.cams.credentials import Credentials, RrsaConfig, RrsaError

STS_VERSION = "2015-04-01"


# STS answers that trying again may cure, whatever their HTTP status (Throttling.User comes as 400). An
# expired OIDC token is one: the kubelet rotates the projected token, and each exchange reads it anew.
_TRANSIENT_STS_CODES = frozenset(
    {
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
        "UnknownError",
        "AuthenticationFail.OIDCToken.Expired",
    }
)
# How long a caller waits for an exchange in flight before it is told to try again later.
FIRST_EXCHANGE_WAIT_SECONDS = 1.0
# Credentials are used until this many seconds (or a tenth of their life) before they expire, even when a
# refresh keeps failing.
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class TemporaryCredentials:
    credentials: Credentials
    expires_at: float  # on the provider's monotonic clock
    lifetime: float


@dataclass(frozen=True)
class _Failure:
    error: RrsaError
    retry_at: float  # no new exchange before this (monotonic clock)


def _expiration(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class RrsaProvider:
    """Temporary credentials for one role, refreshed when less than a third of their life is left.

    One exchange at a time, whatever the number of callers. While the credentials held are still valid, a
    refresh runs in the background and callers keep using them, even when the refresh fails (until a
    minute before they expire). A failed exchange is remembered for a backoff step (doubling from
    `retry_base_seconds` to `retry_max_seconds`): until then callers get the same error at once, and no
    caller ever waits on STS except for the very first credentials.
    """

    def __init__(
        self,
        config: RrsaConfig,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self.config = config
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), transport=transport)
        self._clock = clock
        self._retry_base = retry_base_seconds
        # An exchange is cheap and STS's recovery is worth noticing soon: steps stop growing at 30 s.
        self._retry_max = min(retry_max_seconds, 30.0)
        self._current: TemporaryCredentials | None = None
        self._exchanging: asyncio.Task[None] | None = None
        self._failure: _Failure | None = None
        self._failures = 0
        self._retry_timer: asyncio.TimerHandle | None = None
        self.exchanges = 0  # AssumeRoleWithOIDC calls made so far
        # Called when an exchange succeeds after failures: the objects that were refused credentials
        # meanwhile need not wait out their own backoff.
        self.on_recovered: Callable[[], None] | None = None

    @property
    def failing(self) -> bool:
        """Whether the last exchange failed (STS refused the role or did not answer)."""
        return self._failures > 0

    async def aclose(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._exchanging is not None:
            self._exchanging.cancel()
            await asyncio.gather(self._exchanging, return_exceptions=True)
        await self._http.aclose()

    def _fresh(self, now: float) -> bool:
        current = self._current
        return current is not None and current.expires_at - now > current.lifetime / 3

    def _usable(self, now: float) -> bool:
        current = self._current
        margin = min(EXPIRY_MARGIN_SECONDS, current.lifetime / 10) if current else 0.0
        return current is not None and current.expires_at - now > margin

    def invalidate(self) -> None:
        """CAMS refused the cached credentials' token: exchange anew at the next call."""
        self._current = None
        self._failure = None

    async def credentials(self) -> Credentials:
        now = self._clock()
        if not self._fresh(now):
            due = self._failure is None or now >= self._failure.retry_at
            if due and (self._exchanging is None or self._exchanging.done()):
                self._exchanging = asyncio.create_task(self._refresh(), name="rrsa-exchange")
            if not self._usable(now) and self._failure is None and self._exchanging is not None:
                # Nothing to use yet and nothing known to be wrong: wait for the one exchange, but not
                # for a slow STS: a caller holds a worker that objects with other credentials need.
                try:
                    await asyncio.wait_for(asyncio.shield(self._exchanging), FIRST_EXCHANGE_WAIT_SECONDS)
                except TimeoutError:
                    raise RrsaError(
                        f"STS has not answered AssumeRoleWithOIDC for {self.config.role_arn} yet; "
                        "trying again",
                        transient=True,
                    ) from None
            if not self._usable(self._clock()):
                assert self._failure is not None
                raise self._failure.error
        assert self._current is not None
        return self._current.credentials

    async def _refresh(self) -> None:
        self.exchanges += 1
        try:
            self._current = await self._exchange()
        except RrsaError as exc:
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
        if self._failure is not None and (self._exchanging is None or self._exchanging.done()):
            self._exchanging = asyncio.create_task(self._refresh(), name="rrsa-exchange")

    async def _exchange(self) -> TemporaryCredentials:
        config = self.config
        try:
            # Read anew every time: the kubelet rotates the projected token.
            token = config.token_file.read_text().strip()
        except OSError as exc:
            raise RrsaError(
                f"cannot read the OIDC token file {config.token_file}: {exc.strerror}", transient=True
            ) from None
        form = {
            "RoleArn": config.role_arn,
            "OIDCProviderArn": config.oidc_provider_arn,
            "OIDCToken": token,
            "RoleSessionName": config.session_name,
            "DurationSeconds": str(config.duration_seconds),
        }
        query = {
            "Action": "AssumeRoleWithOIDC",
            "Version": STS_VERSION,
            "Format": "JSON",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        started = self._clock()
        try:
            response = await self._http.post(config.sts_url + "/", params=query, data=form)
        except httpx.HTTPError as exc:
            raise RrsaError(
                f"could not reach STS at {config.sts_endpoint} ({type(exc).__name__})", transient=True
            ) from None
        issued = _issued(response, config.role_arn)
        try:
            remaining = (_expiration(str(issued["Expiration"])) - datetime.now(UTC)).total_seconds()
            credentials = Credentials(
                access_key_id=str(issued["AccessKeyId"]),
                access_key_secret=str(issued["AccessKeySecret"]),
                security_token=str(issued["SecurityToken"]),
            )
        except (KeyError, ValueError):
            raise RrsaError(
                "STS answered AssumeRoleWithOIDC without usable credentials", transient=True
            ) from None
        lifetime = max(remaining, 1.0)
        return TemporaryCredentials(credentials, expires_at=started + lifetime, lifetime=lifetime)


def _issued(response: httpx.Response, role_arn: str) -> dict[str, Any]:
    """The Credentials of STS's answer, or the refusal it says (transient when STS may say yes later)."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    issued = body.get("Credentials")
    if response.status_code != 200 or not isinstance(issued, dict):
        code = str(body.get("Code") or f"HTTP {response.status_code}")
        message = body.get("Message", "")
        raise RrsaError(
            f"STS refused AssumeRoleWithOIDC for {role_arn}: {code} {message}".strip(),
            transient=response.status_code >= 500
            or response.status_code == 429
            or code in _TRANSIENT_STS_CODES,
        )
    return issued
