"""Where an object's credentials come from, and what to tell a person when they are missing. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cams_webhook_operator.cams.credentials import Credentials

ACCESS_KEY_ID_KEY = "accessKeyId"
ACCESS_KEY_SECRET_KEY = "accessKeySecret"
SECURITY_TOKEN_KEY = "securityToken"
OPERATOR_SOURCE = "operator"


@dataclass(frozen=True)
class CredentialProblem:
    """Why no call can be made; `reason` is CamelCase for conditions, `message` is for a person."""

    reason: str
    message: str
    transient: bool = False  # worth retrying with backoff (STS unreachable), not a person's to fix


def secret_source(namespace: str, name: str) -> str:
    return f"secret:{namespace}/{name}"


def from_secret(namespace: str, name: str, data: Mapping[str, str] | None) -> Credentials | CredentialProblem:
    """Credentials from a Secret's decoded data; None data means the Secret does not exist."""
    if data is None:
        return CredentialProblem(
            "SecretNotFound",
            f"Secret {namespace}/{name} named in spec.credentialsSecretRef was not found; create it with the "
            f"keys {ACCESS_KEY_ID_KEY} and {ACCESS_KEY_SECRET_KEY} (and {SECURITY_TOKEN_KEY} for STS)",
        )
    missing = [key for key in (ACCESS_KEY_ID_KEY, ACCESS_KEY_SECRET_KEY) if not data.get(key, "").strip()]
    if missing:
        return CredentialProblem(
            "SecretInvalid",
            f"Secret {namespace}/{name} lacks the key(s) {', '.join(missing)}",
        )
    token = data.get(SECURITY_TOKEN_KEY, "").strip() or None
    return Credentials(
        access_key_id=data[ACCESS_KEY_ID_KEY].strip(),
        access_key_secret=data[ACCESS_KEY_SECRET_KEY].strip(),
        security_token=token,
    )


def from_operator(credentials: Credentials | None) -> Credentials | CredentialProblem:
    if credentials is None:
        return CredentialProblem(
            "NoCredentials",
            "No credentials to call CAMS with: set spec.credentialsSecretRef to a Secret with accessKeyId "
            "and accessKeySecret, or give the operator ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or RRSA (ALIBABA_CLOUD_ROLE_ARN, "
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
        )
    return credentials
