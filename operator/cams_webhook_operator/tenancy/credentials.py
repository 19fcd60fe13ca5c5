"""Credentials as the decisions see them: resolved (and as which account), or the problem that stands in
the way, with what to tell a person. Pure; tenancy/resolver.py finds them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Answer, Outcome

ACCESS_KEY_ID_KEY = "accessKeyId"
ACCESS_KEY_SECRET_KEY = "accessKeySecret"
SECURITY_TOKEN_KEY = "securityToken"
NO_OPERATOR_IDENTITY = (
    "the operator has no identity of its own to use: give it ALIBABA_CLOUD_ACCESS_KEY_ID and "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET, RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, "
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE), the node's RAM role (unset ALIBABA_CLOUD_ECS_METADATA_DISABLED), or "
    "ALIBABA_CLOUD_CREDENTIALS_URI"
)


@dataclass(frozen=True)
class SecretData:
    resource_version: str | None
    data: dict[str, str]  # decoded


@dataclass(frozen=True)
class CredentialProblem:
    """Why no call can be made; `reason` is CamelCase for conditions, `message` is for a person."""

    reason: str
    message: str
    transient: bool = False  # worth retrying with backoff (STS unreachable), not a person's to fix
    # A refusal that may end without anything in Kubernetes changing (CAMS refused the credentials; a
    # RAM grant fixes it): look again after this many seconds.
    retry_after: float | None = None
    answer: Answer | None = None  # CAMS's answer, when CAMS refused the credentials: shown in status


def from_secret(
    namespace: str, name: str, data: Mapping[str, str] | None, *, named_by: str = "spec.credentialsSecretRef"
) -> Credentials | CredentialProblem:
    """Credentials from a Secret's decoded data; None data means the Secret does not exist."""
    if data is None:
        return CredentialProblem(
            "SecretNotFound",
            f"Secret {namespace}/{name} named in {named_by} was not found; create it with the keys "
            f"{ACCESS_KEY_ID_KEY} and {ACCESS_KEY_SECRET_KEY} (and {SECURITY_TOKEN_KEY} for STS)",
        )
    missing = [key for key in (ACCESS_KEY_ID_KEY, ACCESS_KEY_SECRET_KEY) if not data.get(key, "").strip()]
    if missing:
        return CredentialProblem(
            "SecretInvalid", f"Secret {namespace}/{name} lacks the key(s) {', '.join(missing)}"
        )
    token = data.get(SECURITY_TOKEN_KEY, "").strip() or None
    return Credentials(
        access_key_id=data[ACCESS_KEY_ID_KEY].strip(),
        access_key_secret=data[ACCESS_KEY_SECRET_KEY].strip(),
        security_token=token,
    )


@dataclass(frozen=True)
class AccountVerdict:
    """What an account's status says: can its credentials be used?"""

    ready: bool
    reason: str
    message: str
    credentials: str  # where they come from, for people
    transient: bool = False


@dataclass(frozen=True)
class Quota:
    """An account object's say on pacing. A ClusterCamsAccount's (`shared`) is the platform's: its `qps`
    (None: CAMS_QPS) paces the whole lane of the Alibaba account, the smallest of them when several use
    it. A CamsAccount's limits only its own objects' share, so that a tenant can never slow the others."""

    owner: str  # the account object, for people: "ClusterCamsAccount platform"
    qps: float | None
    shared: bool


@dataclass(frozen=True)
class Resolved:
    credentials: Credentials
    # Where they came from: "secret:<ns>/<name>", "operator", or the operator's temporary identity's
    # (TemporaryIdentity.source: "rrsa:<role ARN>", "ecs-ram-role", "credentials-uri").
    source: str
    quota: Quota | None = None  # None: the object's own Secret, which says nothing on pacing
    # Temporary credentials the operator gets itself (RRSA, the node's role, a credentials URI): a refused
    # token is renewed by fetching again, not a refusal of anybody's credentials.
    renewable: bool = False

    @property
    def identity(self) -> str:
        """Which credentials, as a digest of the whole key (a key ID with a wrong secret is other
        credentials). Temporary credentials (RRSA, STS) change at every renewal: their source stands for
        them."""
        if self.credentials.is_temporary:
            return self.account
        key = f"{self.credentials.access_key_id}\0{self.credentials.access_key_secret}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def account(self) -> str:
        """Which account a call is made as, as far as the operator can tell without asking.

        An AccessKey ID names one RAM identity for good. An STS key ID is new at every refresh, so the
        credential source stands for the account instead; otherwise each refresh would look like a change
        of account and re-apply every webhook.
        """
        if self.credentials.is_temporary:
            return f"sts:{self.source}"
        return f"ak:{self.credentials.access_key_id}"


KEY_REFUSED = frozenset({"InvalidCredentials", "InvalidSecurityToken"})


def token_to_renew(outcome: Outcome, resolved: Resolved) -> bool:
    """CAMS refused a security token that the operator obtains itself (RRSA, the node's RAM role, a
    credentials URI): not a refusal of anybody's credentials but a sign to fetch again and try again at
    once. The one rule for updates, reads and proofs of access alike."""
    return outcome.reason == "InvalidSecurityToken" and resolved.renewable


def key_to_reread(outcome: Outcome, resolved: Resolved) -> bool:
    """CAMS refused a key or token that came from a Secret: it may have been rotated since it was read."""
    return outcome.reason in KEY_REFUSED and resolved.source.startswith("secret:")
