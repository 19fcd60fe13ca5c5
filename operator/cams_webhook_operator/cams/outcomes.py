"""The one place that decides what a CAMS answer means: success, throttled, transient or permanent.

CAMS puts its verdict in the body's `Code`, with HTTP 200 or with 4xx/5xx alike, so both are read here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

OK_CODE = "OK"
# Flow control: the documented business code and the API gateway's own.
THROTTLED_CODES = frozenset({"System.LimitControl", "Throttling", "Throttling.User", "Throttling.Api"})
TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "UnknownError", "SignatureNonceUsed", "System.Busy"}
)


class Verdict(enum.Enum):
    OK = "ok"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Answer:
    """What CAMS said, field by field as it said it."""

    http_status: int
    code: str | None
    message: str | None = None
    request_id: str | None = None
    access_denied_detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of one call: a verdict, a CamelCase reason, and CAMS's answer when there was one."""

    verdict: Verdict
    reason: str
    answer: Answer | None = None
    # Why there was no answer (timeout, connection refused ...), for a person; never holds a secret.
    error: str | None = None


# Permanent codes a person can act on, with the reason shown in conditions. Any other refusal is
# permanent too (reason "Refused"): retrying the same request cannot change CAMS's mind.
_PERMANENT_REASONS: dict[str, str] = {
    "Ram.PermissionDeny": "PermissionDenied",
    "Forbidden.RAM": "PermissionDenied",
    "Product.Unsubscript": "ProductNotSubscribed",
    "Unknown.ResourceOwnerId": "ResourceNotOwned",
    "SignatureDoesNotMatch": "InvalidCredentials",
    "IncompleteSignature": "InvalidCredentials",
    "InvalidAccessKeyId.NotFound": "InvalidCredentials",
    "InvalidAccessKeyId.Inactive": "InvalidCredentials",
    "InvalidTimeStamp.Expired": "ClockSkew",
    "MissingParameter": "InvalidParameter",
    "InvalidParameter": "InvalidParameter",
}


# Refusals that say the credentials may not act on the space at all (not this request's fault): an object
# refused so lets go of its number's claim.
CREDENTIALS_REFUSED = frozenset(
    {
        "InvalidCredentials",
        "InvalidSecurityToken",
        "PermissionDenied",
        "ResourceNotOwned",
        "ProductNotSubscribed",
    }
)


def _permanent_reason(code: str | None) -> str:
    if code is None:
        return "Refused"
    if code in _PERMANENT_REASONS:
        return _PERMANENT_REASONS[code]
    if code.startswith("InvalidSecurityToken"):
        return "InvalidSecurityToken"
    if code.startswith("Missing") or code.startswith("InvalidParameter"):
        return "InvalidParameter"
    return "Refused"


def classify(answer: Answer) -> Outcome:
    """Classify an answer that CAMS (or its gateway) gave."""
    code = answer.code
    if code == OK_CODE and 200 <= answer.http_status < 300:
        return Outcome(Verdict.OK, "Applied", answer)
    if code in THROTTLED_CODES or (code or "").startswith("Throttling") or answer.http_status == 429:
        return Outcome(Verdict.THROTTLED, "Throttled", answer)
    if answer.http_status >= 500 or code in TRANSIENT_CODES or code is None:
        # No Code at all means the body was not CAMS's (a proxy's error page, a cut connection):
        # nothing says the request itself was wrong.
        return Outcome(Verdict.TRANSIENT, "TransientError", answer)
    return Outcome(Verdict.PERMANENT, _permanent_reason(code), answer)


def no_answer(error: str) -> Outcome:
    """A call that got no answer (timeout, connection error): always worth retrying."""
    return Outcome(Verdict.TRANSIENT, "TransientError", None, error)
