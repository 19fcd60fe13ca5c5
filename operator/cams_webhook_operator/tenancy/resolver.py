"""Where an object's credentials come from, in exactly one place.

An object uses the account that accounts.py allows it (its `accountRef`, its own `credentialsSecretRef`, or
the default ClusterCamsAccount); the account names a Secret, or the operator's identity (its environment
AccessKey, else its RRSA role). The resolver keeps what the watches showed of the accounts and the
namespaces' labels, caches the Secrets it read, and remembers which objects used which Secret and which
account, so that a change to either re-reconciles exactly those. `import` asks it for the operator's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Protocol

from cams_webhook_operator.api.models import CLUSTER_ACCOUNT_KIND, PhoneWebhookSpec
from cams_webhook_operator.api.names import INVALID_SPEC_MESSAGES
from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.cams.credentials import Credentials, IdentityError, TemporaryIdentity
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy import callback_urls
from cams_webhook_operator.tenancy.accounts import (
    Account,
    AccountKey,
    Choice,
    choice_of,
    choose,
)
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls
from cams_webhook_operator.tenancy.credentials import (
    NO_OPERATOR_IDENTITY,
    AccountVerdict,
    CredentialProblem,
    Resolved,
    SecretData,
    from_secret,
)
from cams_webhook_operator.tenancy.shared_calls import SharedCalls

SecretReader = Callable[[str, str], Awaitable[SecretData | None]]


class TemporaryCredentialSource(Protocol):
    """Credentials the operator obtains and renews itself: RRSA, the node's RAM role, a credentials URI
    (cams/refreshing.py, cams/instance_identity.py)."""

    on_recovered: Callable[[], None] | None

    @property
    def identity(self) -> TemporaryIdentity: ...
    @property
    def failing(self) -> bool: ...
    async def credentials(self) -> Credentials: ...
    def invalidate(self) -> None: ...


class Uses:
    """Which keys each object uses and which objects use each key, both ways: a key that no object uses
    any more is known at once, and forgotten with everything cached for it."""

    def __init__(self) -> None:
        self._of: dict[Key, frozenset[Key]] = {}
        self._users: dict[Key, set[Key]] = defaultdict(set)

    def use(self, obj: Key, keys: frozenset[Key]) -> frozenset[Key]:
        """`obj` uses `keys` now; returns those of its former keys that no object uses any more."""
        old = self._of.pop(obj, frozenset())
        for key in keys - old:
            self._users[key].add(obj)
        unused: set[Key] = set()
        for key in old - keys:
            self._users[key].discard(obj)
            if not self._users[key]:
                del self._users[key]
                unused.add(key)
        if keys:
            self._of[obj] = keys
        return frozenset(unused)

    def users(self, key: Key) -> set[Key]:
        return set(self._users.get(key, ()))

    def used(self) -> set[Key]:
        return set(self._users)

    def __contains__(self, key: object) -> bool:
        return key in self._users


def _outside(namespace: str, operator_namespace: str) -> str:
    return (
        f"its Secret is in namespace {namespace}, but a ClusterCamsAccount may only name a Secret in the "
        f"operator's namespace ({operator_namespace}), where no team can read it"
    )


class CredentialResolver:
    def __init__(
        self,
        *,
        operator: Credentials | None,
        temporary: TemporaryCredentialSource | None = None,
        read_secret: SecretReader | None = None,
        operator_namespace: str = "default",
    ) -> None:
        self._operator = operator
        self._temporary = temporary if operator is None else None  # its own AccessKey comes first
        self._read_secret = read_secret
        self._operator_namespace = operator_namespace
        self.accounts: dict[AccountKey, Account] = {}
        self._labels: dict[str, Mapping[str, str]] = {}  # namespace -> its labels
        self._terminating: set[str] = set()  # namespaces being deleted
        self._secrets: dict[Key, SecretData | None] = {}  # read so far; None: it does not exist
        self._reading: SharedCalls[Key, SecretData | None] = SharedCalls()  # one read per Secret at a time
        self._secret_users: dict[Key, set[Key]] = defaultdict(set)  # Secret -> objects that used it
        self._account_users: dict[AccountKey, set[Key]] = defaultdict(set)
        self._used: dict[Key, tuple[Key | None, AccountKey | None]] = {}  # object -> (Secret, account)
        self._kept: dict[Key, Resolved] = {}  # Clear objects: the credentials to clear with when deleted
        self._url_secrets = Uses()  # the Secrets objects take callback URLs from (an object may name two)

    @classmethod
    def of(
        cls,
        settings: OperatorSettings,
        *,
        temporary: TemporaryCredentialSource | None,
        read_secret: SecretReader,
    ) -> CredentialResolver:
        return cls(
            operator=settings.operator_credentials(),
            temporary=temporary,
            read_secret=read_secret,
            operator_namespace=settings.operator_namespace,
        )

    # --- what the watches show --------------------------------------------------------------------------

    def observe_account(self, account: Account) -> set[Key]:
        """An account was listed, added or changed: the objects that used it, to reconcile again."""
        self.accounts[account.key] = account
        return set(self._account_users.get(account.key, ()))

    def forget_account(self, key: AccountKey) -> set[Key]:
        self.accounts.pop(key, None)
        return set(self._account_users.get(key, ()))

    def namespaces(self) -> list[str]:
        """The namespaces whose labels are known."""
        return list(self._labels)

    def namespace_labels(
        self, namespace: str, labels: Mapping[str, str] | None, *, terminating: bool = False
    ) -> bool:
        """A namespace's labels, None when it is gone, and whether it is being deleted; True when either
        changed."""
        old = self._labels.pop(namespace, None)
        was_terminating = namespace in self._terminating
        if labels is not None:
            self._labels[namespace] = dict(labels)
        if terminating and labels is not None:
            self._terminating.add(namespace)
        else:
            self._terminating.discard(namespace)
        return old != labels or was_terminating != (namespace in self._terminating)

    # --- resolving ----------------------------------------------------------------------------------------

    def source(self, namespace: str, spec: PhoneWebhookSpec) -> str:
        """Which credentials `resolve` would use, without reading anything (to group drift reads)."""
        choice = choose(
            namespace=namespace, spec=spec, accounts=self.accounts, labels=self._labels.get(namespace)
        )
        if isinstance(choice, CredentialProblem):
            return f"problem:{choice.reason}"
        if choice.secret is not None:
            return f"secret:{choice.secret[0]}/{choice.secret[1]}"
        return self._operator_source()

    def _operator_source(self) -> str:
        return self._temporary.identity.source if self._temporary is not None else "operator"

    async def resolve(
        self, obj: Key, spec: PhoneWebhookSpec, *, deleting: bool = False
    ) -> Resolved | CredentialProblem:
        """The credentials object `obj` may call CAMS with, or why it may not call.

        A `deletionPolicy: Clear` object keeps the credentials it last used for its deletion while its
        namespace is being deleted: that deletes its Secrets and accounts too, in no set order, and the
        object must still be able to clear its own webhook with what it was allowed to use a moment before.
        In a namespace that stays, a refusal is a refusal: an object whose account was revoked makes no
        call, not even to clear."""
        resolved = await self._resolve(obj, spec)
        if isinstance(resolved, Resolved):
            if spec.deletion_policy == "Clear":
                self._kept[obj] = resolved
            return resolved
        kept = self._kept.get(obj) if deleting and obj[0] in self._terminating else None
        return kept if kept is not None else resolved

    async def _resolve(self, obj: Key, spec: PhoneWebhookSpec) -> Resolved | CredentialProblem:
        choice = choose(namespace=obj[0], spec=spec, accounts=self.accounts, labels=self._labels.get(obj[0]))
        if isinstance(choice, CredentialProblem):
            self._use(obj, None, None)
            return choice
        self._use(obj, choice.secret, choice.account)
        return await self._credentials(choice)

    async def _credentials(self, choice: Choice) -> Resolved | CredentialProblem:
        if choice.secret is not None:
            namespace, name = choice.secret
            account = choice.account
            cluster_account = account is not None and account.kind == CLUSTER_ACCOUNT_KIND
            if cluster_account and namespace != self._operator_namespace:
                return CredentialProblem(
                    "AccountNotReady", f"{account}: {_outside(namespace, self._operator_namespace)}"
                )
            found = await self._secret(choice.secret)
            named_by = str(account) if account is not None else "spec.credentialsSecretRef"
            credentials = from_secret(namespace, name, found.data if found else None, named_by=named_by)
            if isinstance(credentials, CredentialProblem):
                return credentials
            return Resolved(credentials, f"secret:{namespace}/{name}", choice.quota)
        resolved = await self.operator()
        if isinstance(resolved, CredentialProblem) or choice.quota is None:
            return resolved
        return replace(resolved, quota=choice.quota)

    async def operator(self) -> Resolved | CredentialProblem:
        """The operator's own identity: its AccessKey from the environment, else the temporary credentials
        it gets itself (RRSA, the node's RAM role, a credentials URI)."""
        if self._temporary is not None:
            try:
                return Resolved(await self._temporary.credentials(), self._operator_source(), renewable=True)
            except IdentityError as exc:
                return CredentialProblem(exc.reason, str(exc), exc.transient)
        if self._operator is None:
            return CredentialProblem(
                "NoCredentials", f"No credentials to call CAMS with: {NO_OPERATOR_IDENTITY}"
            )
        return Resolved(self._operator, "operator")

    async def check(self, account: Account) -> AccountVerdict:
        """Whether an account's credentials can be used, for its status. Reads its Secret, never CAMS."""
        if account.spec is None:
            reason, problem = account.problem or ("InvalidSpec", "")
            return AccountVerdict(False, reason, f"{INVALID_SPEC_MESSAGES[reason]}: {problem}", "")
        choice = choice_of(account)
        if choice.secret:
            where = f"Secret {choice.secret[0]}/{choice.secret[1]}"
        elif self._temporary is not None:
            where = self._temporary.identity.label
        else:
            where = "the operator's AccessKey"
        resolved = await self._credentials(choice)
        if isinstance(resolved, CredentialProblem):
            return AccountVerdict(False, resolved.reason, resolved.message, where, resolved.transient)
        return AccountVerdict(True, "CredentialsFound", f"The credentials were found: {where}", where)

    async def callback_urls(
        self, obj: Key, spec: PhoneWebhookSpec
    ) -> CallbackUrls | CredentialProblem | None:
        """The URLs the spec takes from Secrets of its own namespace (None: it takes none), read by name
        like credentials' Secrets, cached with them and read again by the same refresh."""
        names = callback_urls.secret_names(spec)
        self._use_for_urls(obj, frozenset((obj[0], name) for name in names))
        if not names:
            return None
        secrets = {name: await self._secret((obj[0], name)) for name in sorted(names)}
        return callback_urls.resolve(spec, obj[0], secrets)

    def renew(self, resolved: Resolved) -> bool:
        """CAMS refused the security token: True when the operator can get a new one itself."""
        if self._temporary is None or not resolved.renewable:
            return False
        self._temporary.invalidate()
        return True

    # --- Secrets and who used them ----------------------------------------------------------------------

    async def _secret(self, key: Key) -> SecretData | None:
        if key not in self._secrets:
            if (read := self._read_secret) is None:
                raise RuntimeError("this resolver reads no Secrets")
            self._secrets[key] = await self._reading.run(key, lambda: read(*key))
        return self._secrets[key]

    def _use(self, obj: Key, secret: Key | None, account: AccountKey | None) -> None:
        old_secret, old_account = self._used.pop(obj, (None, None))
        if old_secret is not None and old_secret != secret:
            self._drop_secret_user(old_secret, obj)
        if old_account is not None and old_account != account:
            self._account_users[old_account].discard(obj)
            if not self._account_users[old_account]:
                del self._account_users[old_account]
        if secret is not None:
            self._secret_users[secret].add(obj)
        if account is not None:
            self._account_users[account].add(obj)
        if secret is not None or account is not None:
            self._used[obj] = (secret, account)

    def _drop_secret_user(self, secret: Key, obj: Key) -> None:
        self._secret_users[secret].discard(obj)
        if not self._secret_users[secret]:
            del self._secret_users[secret]
            self._forget_if_unused(secret)

    def _use_for_urls(self, obj: Key, secrets: frozenset[Key]) -> None:
        for secret in self._url_secrets.use(obj, secrets):
            self._forget_if_unused(secret)

    def _forget_if_unused(self, secret: Key) -> None:
        """No object uses this Secret any more: forget it, and its data, entirely."""
        if secret not in self._secret_users and secret not in self._url_secrets:
            self._secrets.pop(secret, None)

    def secrets_to_refresh(self) -> list[Key]:
        """The Secrets read so far that an object or an account still names; the others are forgotten."""
        named = {choice_of(a).secret for a in self.accounts.values() if a.spec is not None}
        used = self._secret_users.keys() | self._url_secrets.used() | named
        for key in [k for k in self._secrets if k not in used]:
            del self._secrets[key]
        return list(self._secrets)

    def forget(self, obj: Key) -> None:
        """An object is gone."""
        self._use(obj, None, None)
        self._use_for_urls(obj, frozenset())
        self._kept.pop(obj, None)

    def secret_changed(
        self, namespace: str, name: str, resource_version: str | None
    ) -> tuple[set[Key], bool]:
        """A Secret was read again (resource_version None: it does not exist). Returns the objects to
        reconcile again, and whether the data they used changed (False when it was never read)."""
        key = (namespace, name)
        users = set(self._secret_users.get(key, ())) | self._url_secrets.users(key)
        if key not in self._secrets:
            return users, False
        cached = self._secrets[key]
        if (cached.resource_version if cached else None) == resource_version:
            return set(), False  # the version already read
        del self._secrets[key]
        return users, True
