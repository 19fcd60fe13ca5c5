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


@dataclass(frozen=True)
class TemporaryCredentials:
    credentials: Credentials
    expires_at: float  # on the provider's monotonic clock
    lifetime: float


def _expiration(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class RrsaProvider:
    """Temporary credentials for one role, refreshed when less than a third of their life is left.
    Concurrent callers share one exchange."""

    def __init__(
        self,
        config: RrsaConfig,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), transport=transport)
        self._clock = clock
        self._current: TemporaryCredentials | None = None
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _fresh(self) -> bool:
        current = self._current
        return current is not None and current.expires_at - self._clock() > current.lifetime / 3

    def invalidate(self) -> None:
        """CAMS refused the cached credentials' token: exchange anew at the next call."""
        self._current = None

    async def credentials(self) -> Credentials:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    self._current = await self._exchange()
        assert self._current is not None
        return self._current.credentials

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
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        issued = body.get("Credentials")
        if response.status_code != 200 or not isinstance(issued, dict):
            code = body.get("Code", f"HTTP {response.status_code}")
            message = body.get("Message", "")
            raise RrsaError(
                f"STS refused AssumeRoleWithOIDC for {config.role_arn}: {code} {message}".strip(),
                transient=response.status_code >= 500 or response.status_code == 429,
            )
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
