"""The one place that decides what a CAMS answer means: success, throttled, transient, a refusal this
operator knows (with what a person does about it), or a code it does not know.

CAMS puts its verdict in the body's `Code`, with HTTP 200 or with 4xx/5xx alike, so both are read here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

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
    PERMANENT = "permanent"  # a refusal this operator knows: a person acts on it (the advice says how)
    UNRECOGNIZED = "unrecognized"  # a code this operator does not know: tried again, less and less often


@dataclass(frozen=True)
class Answer:
    """What CAMS said, field by field as it said it."""

    http_status: int
    code: str | None
    message: str | None = None
    request_id: str | None = None
    access_denied_detail: str | None = None
    # How long CAMS asked to wait before calling again (its x-acs-retry-after header), in seconds.
    retry_after: float | None = None


@dataclass(frozen=True)
class Refusal:
    """A refusal this operator knows: the reason conditions and Events show, what a person does about it,
    and whether to try again within minutes (`soon`: the request is right and what is wrong is fixed
    outside the object, e.g. the node's clock) rather than after the permanent interval."""

    reason: str
    advice: str
    soon: bool = False


@dataclass(frozen=True)
class Outcome:
    """The result of one call: a verdict, a CamelCase reason, and CAMS's answer when there was one."""

    verdict: Verdict
    reason: str
    answer: Answer | None = None
    # Why there was no answer (timeout, connection refused ...), for a person; never holds a secret.
    error: str | None = None
    # For a refusal this operator knows: what to do about it, and whether to try again within minutes.
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    @property
    def refused_for_good(self) -> bool:
        """A refusal the same request meets again until something changes: tried again only after the
        permanent interval (or at once when the spec or its Secret changes)."""
        return self.verdict is Verdict.PERMANENT and not (self.refusal and self.refusal.soon)


_GRANT = (
    "grant the RAM identity of these credentials the action cams:{action} (docs/ram-policy.md), then set the "
    "annotation camswebhook.io/reconcile-requested-at to a new value to try again at once"
)
_CHECK_KEY = "check the AccessKey ID and secret in the Secret, and that the key is active"
# The one table of CAMS's (and its gateway's) refusals, by code; docs/reliability.md shows it. A key ending
# in "*" names a family by how its codes start (InvalidSecurityToken.Expired, MissingPhoneNumber).
REFUSALS: dict[str, Refusal] = {
    "Ram.PermissionDeny": Refusal("PermissionDenied", _GRANT),
    "Forbidden.RAM": Refusal("PermissionDenied", _GRANT),
    "NoPermission": Refusal("PermissionDenied", _GRANT),
    "Forbidden.NoPermission": Refusal("PermissionDenied", _GRANT),
    "Product.Unsubscript": Refusal(
        "ProductNotSubscribed", "subscribe the Alibaba Cloud account to Chat App Message Service"
    ),
    "Unknown.ResourceOwnerId": Refusal(
        "ResourceNotOwned",
        "the space belongs to another Alibaba Cloud account: use credentials of that account",
    ),
    "SignatureDoesNotMatch": Refusal("InvalidCredentials", _CHECK_KEY),
    "InvalidAccessKeyId.NotFound": Refusal("InvalidCredentials", _CHECK_KEY),
    "InvalidAccessKeyId.Inactive": Refusal("InvalidCredentials", _CHECK_KEY),
    "InvalidSecurityToken*": Refusal(
        "InvalidSecurityToken", "renew the STS token (securityToken) in the Secret, or use a long-lived key"
    ),
    "IncompleteSignature": Refusal(
        "SignatureDefect",
        "CAMS could not read the request's signature: a defect of this operator, not of the credentials; "
        "please report it with the request ID",
    ),
    "InvalidTimeStamp.Expired": Refusal(
        "ClockSkew",
        "the clock of the operator's node differs from CAMS's by more than CAMS allows: correct the node's "
        "time (NTP)",
        soon=True,
    ),
    "Missing*": Refusal("InvalidParameter", "correct the spec"),
    "InvalidParameter*": Refusal("InvalidParameter", "correct the spec"),
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


def _refusal(code: str, action: str) -> Refusal | None:
    """The known refusal `code` is, its advice naming `action`; None: a code this operator does not know."""
    known = REFUSALS.get(code) or next(
        (refusal for key, refusal in REFUSALS.items() if key.endswith("*") and code.startswith(key[:-1])),
        None,
    )
    return replace(known, advice=known.advice.format(action=action)) if known else None


def classify(answer: Answer, action: str = "UpdatePhoneWebhook") -> Outcome:
    """Classify an answer that CAMS (or its gateway) gave to a call of `action`."""
    code = answer.code
    if code == OK_CODE and 200 <= answer.http_status < 300:
        return Outcome(Verdict.OK, "Applied", answer)
    if code in THROTTLED_CODES or (code or "").startswith("Throttling") or answer.http_status == 429:
        return Outcome(Verdict.THROTTLED, "Throttled", answer)
    if answer.http_status >= 500 or code in TRANSIENT_CODES or code is None:
        # No Code at all means the body was not CAMS's (a proxy's error page, a cut connection):
        # nothing says the request itself was wrong.
        return Outcome(Verdict.TRANSIENT, "TransientError", answer)
    refusal = _refusal(code, action)
    if refusal is None:  # a code added to CAMS after this table: not taken as final, and shown as it is
        return Outcome(Verdict.UNRECOGNIZED, "UnrecognizedCode", answer)
    return Outcome(Verdict.PERMANENT, refusal.reason, answer, refusal=refusal)


def no_answer(error: str) -> Outcome:
    """A call that got no answer (timeout, connection error): always worth retrying."""
    return Outcome(Verdict.TRANSIENT, "TransientError", None, error)
