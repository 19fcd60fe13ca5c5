"""The simulator's gateway checks, in the order Alibaba's gateway applies them: who signed (an AccessKey it
knows, a signature over every x-acs- header and the body), whether the request is fresh (its date within the
allowed skew, its nonce never seen in the last 15 minutes), the security token of temporary keys and when
they expire, and the API version of the action.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from datetime import UTC, datetime, timedelta

from cams_simulator.config import AccountConfig
from cams_simulator.wire import CamsError, Request
from cams_webhook_operator.cams.signing import (
    ALGORITHM,
    DATE_FORMAT,
    canonical_request,
    parse_authorization,
    signature,
)

API_VERSION = "2020-06-06"
# STS's: which Alibaba Cloud account credentials belong to. Signed like any call; needs no permission.
GET_CALLER_IDENTITY = "GetCallerIdentity"
STS_VERSION = "2015-04-01"
NONCE_MEMORY = timedelta(minutes=15)
SIGNED_ALWAYS = frozenset(
    {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
)


class Gateway:
    def __init__(self, accounts: list[AccountConfig], *, clock_skew_seconds: float) -> None:
        self.accounts = {account.access_key_id: account for account in accounts}
        self.expires: dict[str, datetime] = {}  # STS-issued key -> when it stops working
        self._skew = clock_skew_seconds
        self._nonces: dict[str, datetime] = {}
        self._nonce_order: deque[tuple[datetime, str]] = deque()

    def authenticate(self, request: Request, *, now: datetime) -> AccountConfig:
        """The account that signed `request`, or the CamsError Alibaba's gateway would answer."""
        account = self._signed_by(request)
        headers = request.headers
        self._check_date(headers["x-acs-date"], now)
        self._check_nonce(headers["x-acs-signature-nonce"], now)
        self._check_token(account, headers.get("x-acs-security-token"), now)
        version = STS_VERSION if headers.get("x-acs-action") == GET_CALLER_IDENTITY else API_VERSION
        if headers.get("x-acs-version") != version:
            raise CamsError(400, "InvalidVersion", f"Specified API version is not valid; use {version}.")
        return account

    def _signed_by(self, request: Request) -> AccountConfig:
        headers = request.headers
        authorization = parse_authorization(headers.get("authorization", ""))
        if authorization is None:
            raise CamsError(
                400, "IncompleteSignature", f"The request must carry an {ALGORITHM} Authorization header."
            )
        account = self.accounts.get(authorization.access_key_id)
        if account is None:
            raise CamsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        sent_acs = {name for name in headers if name.startswith("x-acs-")}
        signed = set(authorization.signed_headers)
        missing = sorted((SIGNED_ALWAYS | sent_acs) - signed)
        if missing or not signed <= set(headers):
            raise CamsError(
                400, "IncompleteSignature", f"The request signature does not sign: {', '.join(missing)}"
            )
        payload_sha256 = hashlib.sha256(request.body).hexdigest()
        if headers["x-acs-content-sha256"] != payload_sha256:
            raise CamsError(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the body.")
        canonical = canonical_request(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=headers,
            signed_headers=authorization.signed_headers,
            payload_sha256=payload_sha256,
        )
        expected = signature(secret=account.access_key_secret, canonical=canonical)
        if not hmac.compare_digest(expected, authorization.signature):
            raise CamsError(
                400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun standards."
            )
        return account

    def _check_token(self, account: AccountConfig, token: str | None, now: datetime) -> None:
        if account.security_token is not None:
            if token is None:
                raise CamsError(400, "InvalidSecurityToken.Missing", "The security token is missing.")
            if not hmac.compare_digest(token, account.security_token):
                raise CamsError(
                    400, "InvalidSecurityToken.MismatchWithAccessKey", "The security token is wrong."
                )
        expires = self.expires.get(account.access_key_id)
        if expires is not None and now >= expires:
            raise CamsError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")

    def _check_date(self, value: str, now: datetime) -> None:
        try:
            sent = datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise CamsError(
                400, "InvalidTimeStamp.Format", f"x-acs-date must look like {DATE_FORMAT}."
            ) from None
        if abs((now - sent).total_seconds()) > self._skew:
            raise CamsError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _check_nonce(self, nonce: str, now: datetime) -> None:
        while self._nonce_order and self._nonce_order[0][0] < now - NONCE_MEMORY:
            _, old = self._nonce_order.popleft()
            self._nonces.pop(old, None)
        if not nonce:
            raise CamsError(400, "MissingSignatureNonce", "x-acs-signature-nonce is required.")
        if nonce in self._nonces:
            raise CamsError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[nonce] = now
        self._nonce_order.append((now, nonce))
