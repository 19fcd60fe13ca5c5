"""The end of the official default credentials chain: the worker node's RAM role, from the ECS metadata
server, and ALIBABA_CLOUD_CREDENTIALS_URI; and the chain that tries them in that order, keeping the first
that works (as `alibabacloud-credentials`' DefaultCredentialsProvider does). Both serve STS credentials
with an expiry, refreshed by RefreshingCredentials. Written here, not taken from `alibabacloud-credentials`,
because its calls block the event loop and its metadata address cannot be set (a test points ours at a
local stand-in).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from cams_webhook_operator.cams.credentials import Credentials, IdentityError, TemporaryIdentity
from cams_webhook_operator.cams.proxies import Proxies
from cams_webhook_operator.cams.refreshing import RefreshingCredentials, TemporaryCredentials, issued
from cams_webhook_operator.cams.transport import AiohttpTransport

ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
TOKEN_PATH = "/latest/api/token"
# The hardened mode (IMDSv2): a session token asked with PUT and sent with every read, as the official
# provider does (its token lives six hours; the metadata server answers within a second or not at all).
TOKEN_TTL_SECONDS = 21600
METADATA_TIMEOUT_SECONDS = 1.0
ROLE_FAILED = "InstanceRoleFailed"
URI_FAILED = "CredentialsUriFailed"


def _issued(body: Any, where: str, reason: str, started: float) -> TemporaryCredentials:
    """The credentials of a `{"Code": "Success", "AccessKeyId": ..., "Expiration": ...}` answer, the shape
    both the metadata server and a credentials URI serve."""
    if not isinstance(body, dict) or body.get("Code") != "Success":
        code = body.get("Code") if isinstance(body, dict) else None
        raise IdentityError(f"{where} gave no credentials (Code {code!r})", transient=True, reason=reason)
    return issued(body, started=started, where=where, reason=reason)


class EcsRamRoleProvider(RefreshingCredentials):
    """The RAM role of the ECS instance the pod runs on. The role's name is ALIBABA_CLOUD_ECS_METADATA, or
    the one the metadata server lists; without a session token (an older server) reads go plain, unless
    ALIBABA_CLOUD_IMDSV1_DISABLED says the hardened mode is required."""

    def __init__(
        self,
        *,
        endpoint: str,
        role_name: str | None = None,
        imdsv1_disabled: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._role_name = role_name
        self._imdsv1_disabled = imdsv1_disabled
        # trust_env=False: the metadata server is link-local; a cluster's HTTP(S)_PROXY must not see it.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(METADATA_TIMEOUT_SECONDS), transport=transport, trust_env=False
        )
        super().__init__(
            TemporaryIdentity("ecs-ram-role", "the RAM role of the node (the ECS metadata server)"),
            self._fetch_from_server,
            failure_reason=ROLE_FAILED,
            http=self._http,
            clock=clock,
            retry_base_seconds=retry_base_seconds,
            retry_max_seconds=retry_max_seconds,
        )

    async def _fetch_from_server(self) -> TemporaryCredentials:
        started = self._clock()
        token = await self._session_token()
        headers = {"X-aliyun-ecs-metadata-token": token} if token else {}
        role = self._role_name or (await self._get(ROLE_PATH, headers)).text.strip()
        if not role:
            raise IdentityError(
                "the ECS metadata server lists no RAM role for this node", transient=True, reason=ROLE_FAILED
            )
        answer = await self._get(ROLE_PATH + role, headers)
        try:
            body = answer.json()
        except ValueError:
            body = None
        return _issued(body, f"the ECS metadata server (role {role})", ROLE_FAILED, started)

    async def _session_token(self) -> str | None:
        """IMDSv2's token, or None where the server has none and plain reads are allowed."""
        try:
            answer = await self._http.put(
                self._endpoint + TOKEN_PATH,
                headers={"X-aliyun-ecs-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            )
            if answer.status_code == 200:
                return answer.text.strip()
            failure = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if self._imdsv1_disabled:
            raise IdentityError(
                f"the ECS metadata server gave no session token ({failure}), and "
                "ALIBABA_CLOUD_IMDSV1_DISABLED requires one",
                transient=True,
                reason=ROLE_FAILED,
            )
        return None

    async def _get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        try:
            answer = await self._http.get(self._endpoint + path, headers=headers)
        except httpx.HTTPError as exc:
            raise IdentityError(
                f"could not reach the ECS metadata server at {self._endpoint} ({type(exc).__name__})",
                transient=True,
                reason=ROLE_FAILED,
            ) from None
        if answer.status_code != 200:
            raise IdentityError(
                f"the ECS metadata server answered HTTP {answer.status_code} for {path}",
                transient=True,
                reason=ROLE_FAILED,
            )
        return answer


class CredentialsUriProvider(RefreshingCredentials):
    """ALIBABA_CLOUD_CREDENTIALS_URI: an endpoint (a sidecar, a node agent) that serves STS credentials.
    The URI is never shown whole: it may carry a token of its own."""

    def __init__(
        self,
        uri: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        proxies: Proxies | None = None,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self._uri = uri
        self._shown = httpx.URL(uri).copy_with(query=None, fragment=None, userinfo=b"")
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport or AiohttpTransport(connections=4, proxies=proxies),
            trust_env=False,
        )
        super().__init__(
            TemporaryIdentity("credentials-uri", f"the credentials URI {self._shown}"),
            self._fetch_from_uri,
            failure_reason=URI_FAILED,
            http=self._http,
            clock=clock,
            retry_base_seconds=retry_base_seconds,
            retry_max_seconds=retry_max_seconds,
        )

    async def _fetch_from_uri(self) -> TemporaryCredentials:
        started = self._clock()
        try:
            answer = await self._http.get(self._uri)
        except httpx.HTTPError as exc:
            raise IdentityError(
                f"could not reach the credentials URI {self._shown} ({type(exc).__name__})",
                transient=True,
                reason=URI_FAILED,
            ) from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200:
            raise IdentityError(
                f"the credentials URI {self._shown} answered HTTP {answer.status_code}",
                transient=True,
                reason=URI_FAILED,
            )
        return _issued(body, f"the credentials URI {self._shown}", URI_FAILED, started)


class FirstWorking:
    """Several identities in the official chain's order: the first that yields credentials is used, and
    kept while it works (as the official chain reuses its last provider); when it fails, the others are
    tried again in order. Quacks like one RefreshingCredentials."""

    def __init__(self, providers: Sequence[RefreshingCredentials]) -> None:
        self.providers = list(providers)
        self._current = self.providers[0]
        self._on_recovered: Callable[[], None] | None = None

    @property
    def identity(self) -> TemporaryIdentity:
        return self._current.identity

    @property
    def failing(self) -> bool:
        return self._current.failing

    @property
    def on_recovered(self) -> Callable[[], None] | None:
        return self._on_recovered

    @on_recovered.setter
    def on_recovered(self, callback: Callable[[], None] | None) -> None:
        self._on_recovered = callback
        for provider in self.providers:
            provider.on_recovered = callback

    def invalidate(self) -> None:
        self._current.invalidate()

    async def credentials(self) -> Credentials:
        try:
            return await self._current.credentials()
        except IdentityError as first:
            failures = [f"{self._current.identity.label}: {first}"]
        for provider in self.providers:
            if provider is self._current:
                continue
            try:
                credentials = await provider.credentials()
            except IdentityError as exc:
                failures.append(f"{provider.identity.label}: {exc}")
                continue
            self._current = provider
            return credentials
        raise IdentityError("; ".join(failures), transient=True, reason=self._current.failure_reason)

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()
