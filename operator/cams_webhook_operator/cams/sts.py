"""RRSA: Alibaba Cloud's pod identity. The projected OIDC token is exchanged with STS AssumeRoleWithOIDC
(an anonymous call) for temporary credentials, which are cached per role and refreshed well before they
expire. Written here because the official `alibabacloud-credentials` ignores ALIBABA_CLOUD_STS_ENDPOINT
and its HTTP calls are blocking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from cams_webhook_operator.cams.credentials import (
    IdentityError,
    RrsaConfig,
    TemporaryIdentity,
)
from cams_webhook_operator.cams.proxies import Proxies
from cams_webhook_operator.cams.refreshing import RefreshingCredentials, TemporaryCredentials, issued
from cams_webhook_operator.cams.transport import AiohttpTransport

STS_VERSION = "2015-04-01"
# What to check when STS refuses the exchange for good.
_TRUST_HINT = (
    "; check that the role's trust policy names this cluster's OIDC provider and the operator's "
    "ServiceAccount (docs/ram-policy.md)"
)
FAILED = "RRSAFailed"  # the condition's reason while no credentials can be had


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


class RrsaProvider(RefreshingCredentials):
    """RRSA's credentials: the projected OIDC token exchanged with STS AssumeRoleWithOIDC."""

    def __init__(
        self,
        config: RrsaConfig,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        proxies: Proxies | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self.config = config
        # Through the proxy the standard variables name, as every call to Alibaba Cloud (cams/proxies.py).
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport or AiohttpTransport(connections=4, proxies=proxies),
            trust_env=False,
        )
        super().__init__(
            TemporaryIdentity(f"rrsa:{config.role_arn}", f"the operator's RRSA role {config.role_arn}"),
            self._exchange,
            failure_reason=FAILED,
            http=self._http,
            clock=clock,
            retry_base_seconds=retry_base_seconds,
            retry_max_seconds=retry_max_seconds,
        )

    async def _exchange(self) -> TemporaryCredentials:
        config = self.config
        try:
            # Read anew every time: the kubelet rotates the projected token.
            token = config.token_file.read_text().strip()
        except OSError as exc:
            raise IdentityError(
                f"cannot read the OIDC token file {config.token_file}: {exc.strerror}",
                transient=True,
                reason=FAILED,
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
            raise IdentityError(
                f"could not reach STS at {config.sts_endpoint} ({type(exc).__name__})",
                transient=True,
                reason=FAILED,
            ) from None
        answered = _issued(response, config.role_arn)
        return issued(answered, started=started, where="STS's AssumeRoleWithOIDC", reason=FAILED)


def _issued(response: httpx.Response, role_arn: str) -> dict[str, Any]:
    """The Credentials of STS's answer, or the refusal it says (transient when STS may say yes later)."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    granted = body.get("Credentials")
    if response.status_code != 200 or not isinstance(granted, dict):
        code = str(body.get("Code") or f"HTTP {response.status_code}")
        message = body.get("Message", "")
        trust = "" if code in _TRANSIENT_STS_CODES or response.status_code >= 500 else _TRUST_HINT
        raise IdentityError(
            f"STS refused AssumeRoleWithOIDC for {role_arn}: {code} {message}".strip() + trust,
            transient=response.status_code >= 500
            or response.status_code == 429
            or code in _TRANSIENT_STS_CODES,
            reason=FAILED,
        )
    return granted
