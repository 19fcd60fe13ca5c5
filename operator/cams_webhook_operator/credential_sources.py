"""Where an object's credentials come from, in exactly one place, and what to tell a person when they
are missing.

The order: the object's own Secret (`spec.credentialsSecretRef`); else the operator's AccessKey from its
environment; else its RRSA role. The import command asks the same resolver for the operator's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cams_webhook_operator.cams.credentials import Credentials, RrsaConfig, RrsaError

ACCESS_KEY_ID_KEY = "accessKeyId"
ACCESS_KEY_SECRET_KEY = "accessKeySecret"
SECURITY_TOKEN_KEY = "securityToken"


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


NO_CREDENTIALS = CredentialProblem(
    "NoCredentials",
    "No credentials to call CAMS with: set spec.credentialsSecretRef to a Secret with accessKeyId "
    "and accessKeySecret, or give the operator ALIBABA_CLOUD_ACCESS_KEY_ID and "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or RRSA (ALIBABA_CLOUD_ROLE_ARN, "
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
)


class TemporaryCredentialSource(Protocol):
    """RRSA: credentials the operator obtains and renews itself."""

    @property
    def config(self) -> RrsaConfig: ...
    async def credentials(self) -> Credentials: ...
    def invalidate(self) -> None: ...


SecretReader = Callable[[str, str], Awaitable[SecretData | None]]
Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Resolved:
    credentials: Credentials
    source: str  # where they came from: "secret:<ns>/<name>", "operator" or "rrsa:<role ARN>"

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


def account_label(account: str) -> str:
    """An account as logs show it: an AccessKey ID is not a secret, but need not be printed whole."""
    kind, _, name = account.partition(":")
    return f"{kind}:{name[:4]}...{name[-4:]}" if kind == "ak" and len(name) > 12 else account


class CredentialResolver:
    """Resolves an object's credentials, caches the Secrets it read, and knows which objects name which
    Secret, so that a changed Secret re-reconciles exactly those."""

    def __init__(
        self,
        *,
        operator: Credentials | None,
        rrsa: TemporaryCredentialSource | None = None,
        read_secret: SecretReader | None = None,
    ) -> None:
        self._operator = operator
        self._rrsa = rrsa if operator is None else None  # an AccessKey of the operator's own comes first
        self._read_secret = read_secret
        self._secrets: dict[Key, SecretData | None] = {}  # read so far; None: it does not exist
        self._dependents: dict[Key, set[Key]] = defaultdict(set)  # Secret -> objects that name it

    def source(self, namespace: str, secret: str | None) -> str:
        """Where `resolve` would take the credentials from, without reading anything."""
        if secret is not None:
            return f"secret:{namespace}/{secret}"
        if self._rrsa is not None:
            return f"rrsa:{self._rrsa.config.role_arn}"
        return "operator"

    async def resolve(self, namespace: str, secret: str | None) -> Resolved | CredentialProblem:
        source = self.source(namespace, secret)
        if secret is not None:
            found = await self._secret((namespace, secret))
            credentials = from_secret(namespace, secret, found.data if found else None)
        elif self._rrsa is not None:
            try:
                credentials = await self._rrsa.credentials()
            except RrsaError as exc:
                return CredentialProblem("RRSAFailed", str(exc), exc.transient)
        else:
            credentials = self._operator or NO_CREDENTIALS
        return credentials if isinstance(credentials, CredentialProblem) else Resolved(credentials, source)

    def renew(self, resolved: Resolved) -> bool:
        """CAMS refused the security token: True when the operator can get a new one itself (RRSA)."""
        if self._rrsa is None or not resolved.source.startswith("rrsa:"):
            return False
        self._rrsa.invalidate()
        return True

    async def _secret(self, key: Key) -> SecretData | None:
        if key not in self._secrets:
            if self._read_secret is None:
                raise RuntimeError("this resolver reads no Secrets")
            self._secrets[key] = await self._read_secret(*key)
        return self._secrets[key]

    def track(self, obj: Key, *, old: str | None, new: str | None) -> None:
        """Object `obj` named Secret `old` and now names `new` (None: none, or the object is gone)."""
        if old == new:
            return
        if old is not None:
            secret = (obj[0], old)
            self._dependents[secret].discard(obj)
            if not self._dependents[secret]:
                # No object names this Secret any more: forget it, and its data, entirely.
                del self._dependents[secret]
                self._secrets.pop(secret, None)
        if new is not None:
            self._dependents[(obj[0], new)].add(obj)

    def secret_changed(
        self, namespace: str, name: str, resource_version: str | None
    ) -> tuple[set[Key], bool]:
        """A Secret was listed, added, modified or deleted (resource_version None). Returns the objects to
        reconcile again, and whether the data they used changed (False when it is the first sight of it)."""
        key = (namespace, name)
        dependents = set(self._dependents.get(key, ()))
        if key not in self._secrets:
            return dependents, False
        cached = self._secrets[key]
        if (cached.resource_version if cached else None) == resource_version:
            return set(), False  # the version already read
        del self._secrets[key]
        return dependents, True
