"""Alibaba Cloud credentials: an AccessKey pair, or an STS triple with its security token; RRSA's settings
for getting the latter; and who temporary credentials the operator gets itself are issued to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STS_ENDPOINT = "sts.aliyuncs.com"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    # repr=False: a Credentials object must never print its secret or token in a log or a traceback.
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @property
    def is_temporary(self) -> bool:
        """STS credentials are issued anew on every refresh; their key ID does not name an account."""
        return self.security_token is not None


@dataclass(frozen=True)
class RrsaConfig:
    role_arn: str
    oidc_provider_arn: str
    token_file: Path
    sts_endpoint: str = DEFAULT_STS_ENDPOINT
    session_name: str = "cams-webhook-operator"
    duration_seconds: int = 3600

    @property
    def sts_url(self) -> str:
        endpoint = self.sts_endpoint
        return endpoint if "://" in endpoint else f"https://{endpoint}"


@dataclass(frozen=True)
class TemporaryIdentity:
    """Who the temporary credentials the operator gets itself are issued to."""

    # Stands for the account in fingerprints and lanes (an STS key ID is new at every refresh), so it must
    # never change for a given identity: "rrsa:<role ARN>", "ecs-ram-role", "credentials-uri".
    source: str
    label: str  # for people: "the operator's RRSA role acs:ram::...:role/x"


class IdentityError(Exception):
    """Why the operator could not get temporary credentials of its own; `reason` is the condition's
    (RRSAFailed ...), `transient` when trying again may help."""

    def __init__(self, message: str, *, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason
