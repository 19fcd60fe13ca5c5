"""The async CAMS client: builds, signs and sends RPC calls, and classifies what comes back.

It speaks HTTP through httpx's API, over aiohttp's connections (cams/transport.py): httpx's own transport
cost several times the CPU per call with 20 calls in flight (benchmarks/cams_client_cpu.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from yarl import URL

from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import (
    QUERY_PHONE_NUMBERS,
    UPDATE_PHONE_WEBHOOK,
    LiveNumber,
    WebhookUpdate,
)
from cams_webhook_operator.cams.outcomes import OK_CODE, Answer, Outcome, classify, no_answer
from cams_webhook_operator.cams.proxies import Proxies
from cams_webhook_operator.cams.signing import (
    DATE_FORMAT,
    RequestToSign,
    canonical_query_string,
    sign_headers,
)
from cams_webhook_operator.cams.transport import AiohttpTransport

API_VERSION = "2020-06-06"
GET_CALLER_IDENTITY = "GetCallerIdentity"
STS_VERSION = "2015-04-01"


def _live_numbers(body: Mapping[str, Any]) -> dict[str, LiveNumber]:
    numbers: dict[str, LiveNumber] = {}
    for item in body.get("PhoneNumbers") or []:
        if isinstance(item, dict) and item.get("PhoneNumber"):
            number = str(item["PhoneNumber"])
            numbers[number] = LiveNumber(
                phone_number=number,
                status_callback_url=str(item.get("StatusCallbackUrl") or ""),
                up_callback_url=str(item.get("UpCallbackUrl") or ""),
                status=str(item.get("Status") or ""),
                quality_rating=str(item.get("QualityRating") or ""),
                messaging_limit_tier=str(item.get("MessagingLimitTier") or ""),
                name_status=str(item.get("NameStatus") or ""),
                code_verification_status=str(item.get("CodeVerificationStatus") or ""),
                verified_name=str(item.get("VerifiedName") or ""),
                is_official=str(item.get("IsOfficial") or ""),
            )
    return numbers


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _body_of(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8 (a proxy's error page)
        return {}
    return body if isinstance(body, dict) else {}


# The official SDK waits at most this long on x-acs-retry-after (its retry policy's default maximum delay),
# so a wrong header cannot stop an account for long.
MAX_RETRY_AFTER_SECONDS = 120.0


def _answer_of(status: int, headers: Mapping[str, str], body: Mapping[str, Any]) -> Answer:
    # Key case varies between Alibaba's gateways (`Code` or `code`); the official SDK reads either.
    fields = {str(key).lower(): value for key, value in body.items()}

    def text(key: str) -> str | None:
        value = fields.get(key.lower())
        if value is None:
            return None
        # AccessDeniedDetail comes as an object from some gateways: kept as JSON, not a Python repr.
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)

    return Answer(
        http_status=status,
        code=text("Code"),
        message=text("Message"),
        request_id=text("RequestId") or headers.get("x-acs-request-id"),
        access_denied_detail=text("AccessDeniedDetail"),
        retry_after=_retry_after(status, headers.get("x-acs-retry-after")),
    )


def _retry_after(status: int, header: str | None) -> float | None:
    """x-acs-retry-after as the official SDK reads it: on a 4xx or 5xx answer, a positive whole number of
    milliseconds (anything else is no advice), at most MAX_RETRY_AFTER_SECONDS."""
    if not 400 <= status < 600 or header is None:
        return None
    try:
        milliseconds = int(header.strip())
    except ValueError:
        return None
    return min(milliseconds / 1000, MAX_RETRY_AFTER_SECONDS) if milliseconds > 0 else None


class CamsClient:
    """One client per operator: it holds the connection pool. Credentials are passed per call, since each
    PhoneWebhook may name its own Secret."""

    def __init__(
        self,
        *,
        endpoint: str,
        timeout_seconds: float,
        sts_endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        proxies: Proxies | None = None,
        clock: Callable[[], datetime] = _utc_now,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self._endpoint = URL(endpoint)
        # A host alone means https, as for RRSA's exchange (settings.sts_host).
        self._sts = (
            URL(sts_endpoint if "://" in sts_endpoint else f"https://{sts_endpoint}")
            if sts_endpoint
            else None
        )
        self._clock = clock
        self._nonce = nonce
        self._timeout = httpx.Timeout(timeout_seconds)
        self._transport = transport or AiohttpTransport(proxies=proxies)
        self._client: httpx.AsyncClient | None = None  # made in the event loop that uses it

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # The proxy is the transport's to choose (cams/proxies.py), not httpx's; no redirects (the
            # signature covers this host and path only), no retries: retrying is the controller's job, at
            # the pace of the account's lane.
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._timeout,
                trust_env=False,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def call(self, action: str, params: Mapping[str, str], credentials: Credentials) -> Outcome:
        """Send one signed RPC call and classify the answer. Never raises for network trouble."""
        outcome, _ = await self._call(action, params, credentials)
        return outcome

    async def _call(
        self,
        action: str,
        params: Mapping[str, str],
        credentials: Credentials,
        *,
        endpoint: URL | None = None,
        version: str = API_VERSION,
    ) -> tuple[Outcome, dict[str, Any]]:
        """`endpoint` and `version`: another product's (STS), signed the same way."""
        endpoint = endpoint or self._endpoint
        host = endpoint.raw_authority
        headers = {
            "host": host,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": self._clock().strftime(DATE_FORMAT),
            "x-acs-signature-nonce": self._nonce(),
            "accept": "application/json",
        }
        if credentials.security_token is not None:
            headers["x-acs-security-token"] = credentials.security_token
        signed = sign_headers(
            RequestToSign(method="POST", path="/", query=params, headers=headers),
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
        )
        # The query goes on the wire exactly as it was signed (RFC 3986, %20 for a space): `encoded=True`
        # keeps yarl from normalising it.
        url = f"{endpoint.origin()}/?{canonical_query_string(params)}"
        try:
            # An empty body without a Content-Type, as the official SDK sends it.
            response = await self._http().post(url, headers=signed)
        except httpx.TimeoutException as exc:
            return no_answer(f"CAMS did not answer in time ({type(exc).__name__})"), {}
        except httpx.ConnectError as exc:
            return no_answer(f"could not reach {host} ({type(exc).__name__})"), {}
        except httpx.HTTPError as exc:  # an answer that could not be read (bad encoding, bad framing)
            return no_answer(f"CAMS's answer could not be read ({type(exc).__name__})"), {}
        body = _body_of(response.content)
        return classify(_answer_of(response.status_code, response.headers, body), action), body

    async def caller_identity(self, credentials: Credentials) -> tuple[Outcome, str | None]:
        """STS GetCallerIdentity: the Alibaba Cloud account the credentials belong to (their AccountId),
        which needs no permission. STS's success answer carries no Code: an AccountId is the success."""
        if self._sts is None:
            return no_answer("no STS endpoint is set"), None
        outcome, body = await self._call(
            GET_CALLER_IDENTITY, {}, credentials, endpoint=self._sts, version=STS_VERSION
        )
        account_id = body.get("AccountId")
        answer = outcome.answer
        if answer is not None and 200 <= answer.http_status < 300 and isinstance(account_id, str | int):
            return classify(replace(answer, code=OK_CODE)), str(account_id)
        return outcome, None

    async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome:
        return await self.call(UPDATE_PHONE_WEBHOOK, update.query(), credentials)

    async def query_phone_numbers(
        self, cust_space_id: str, credentials: Credentials
    ) -> tuple[Outcome, dict[str, LiveNumber]]:
        """Every number of a space with its live webhook URLs: one call for the whole space."""
        outcome, body = await self._call(QUERY_PHONE_NUMBERS, {"CustSpaceId": cust_space_id}, credentials)
        return outcome, _live_numbers(body) if outcome.answer and outcome.answer.code == "OK" else {}
