"""Who may act on which number: which account a PhoneWebhook uses, and whether its namespace and its space
are allowed to. Pure: the accounts and namespace labels are what the watches showed.

A tenant is a namespace. A CamsAccount serves its own namespace only; a ClusterCamsAccount serves the
namespaces the platform team named or selected; either may be limited to some spaces. A PhoneWebhook names
its account (`accountRef`), or brings a Secret of its own (`credentialsSecretRef`, the shorthand for an
account of its own on any space), or falls to the ClusterCamsAccount marked as the default. The operator's
own identity is reachable only through a ClusterCamsAccount that says `operatorIdentity: {}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cams_webhook_operator.api.accounts import CamsAccountSpec, ClusterCamsAccountSpec, LabelSelector
from cams_webhook_operator.api.models import (
    ACCOUNT_KIND,
    CLUSTER_ACCOUNT_KIND,
    DEFAULT_ACCOUNT_ANNOTATION,
    PhoneWebhookSpec,
)
from cams_webhook_operator.api.names import problem_of
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Quota


@dataclass(frozen=True, order=True)
class AccountKey:
    kind: str
    namespace: str  # "" for a ClusterCamsAccount
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Account:
    """A CamsAccount or ClusterCamsAccount as the watch last showed it."""

    key: AccountKey
    uid: str
    generation: int
    spec: CamsAccountSpec | ClusterCamsAccountSpec | None  # None: invalid, see problem
    problem: tuple[str, str] | None = None  # (reason, message): InvalidName or InvalidSpec
    default: bool = False

    @classmethod
    def of(cls, body: Mapping[str, Any], kind: str) -> Account:
        meta = body["metadata"]
        key = AccountKey(kind, meta.get("namespace") or "", meta["name"])
        model = CamsAccountSpec if kind == ACCOUNT_KIND else ClusterCamsAccountSpec
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        default = kind == CLUSTER_ACCOUNT_KIND and annotations.get(DEFAULT_ACCOUNT_ANNOTATION, "") == "true"
        try:
            spec: CamsAccountSpec | ClusterCamsAccountSpec | None = model.model_validate(
                body.get("spec") or {}
            )
            problem = None
        except ValidationError as exc:
            spec, problem = None, problem_of(exc)
        return cls(key, meta["uid"], int(meta.get("generation", 0)), spec, problem, default)

    @property
    def problem_message(self) -> str:
        return self.problem[1] if self.problem else ""


@dataclass(frozen=True)
class Choice:
    """The account an object may use, and where its credentials are."""

    account: AccountKey | None  # None: the object's own credentialsSecretRef
    secret: tuple[str, str] | None  # (namespace, name) of the Secret with the credentials
    operator_identity: bool = False
    quota: Quota | None = None


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: every requirement holds; {} selects everything."""
    if any(labels.get(key) != value for key, value in (selector.match_labels or {}).items()):
        return False
    for requirement in selector.match_expressions or ():
        present, values = requirement.key in labels, requirement.values or []
        holds = {
            "In": present and labels.get(requirement.key) in values,
            "NotIn": not present or labels.get(requirement.key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[requirement.operator]
        if not holds:
            return False
    return True


def admits(spec: ClusterCamsAccountSpec, namespace: str, labels: Mapping[str, str] | None) -> bool:
    """Whether the account admits the namespace; never by a selector while its labels are not known."""
    if spec.namespaces and namespace in spec.namespaces:
        return True
    selector = spec.namespace_selector
    return selector is not None and labels is not None and selects(selector, labels)


# The reasons of a refusal by these rules (not CAMS's); each message says which rule and what to do.
REFUSALS = frozenset(
    {"AccountNotFound", "AccountNotAllowed", "SpaceNotAllowed", "NoAccount", "AccountInvalid"}
)

NO_ACCOUNT = (
    "This PhoneWebhook names no account: set spec.accountRef to a CamsAccount of this namespace or to a "
    "ClusterCamsAccount that admits it (or spec.credentialsSecretRef to a Secret of this namespace). A "
    f"platform team can also mark one ClusterCamsAccount as the default ({DEFAULT_ACCOUNT_ANNOTATION}=true)."
)


def choose(
    *,
    namespace: str,
    spec: PhoneWebhookSpec,
    accounts: Mapping[AccountKey, Account],
    labels: Mapping[str, str] | None,
) -> Choice | CredentialProblem:
    """The account `spec` (of an object in `namespace`) may use, or why it may use none. Decided before
    any CAMS call, so that a refusal never reaches CAMS."""
    if spec.credentials_secret_ref is not None:
        return Choice(None, (namespace, spec.credentials_secret_ref.name))
    if spec.account_ref is not None:
        ref = spec.account_ref
        key = AccountKey(ref.kind, namespace if ref.kind == ACCOUNT_KIND else "", ref.name)
        account = accounts.get(key)
        if account is None:
            where = f" in namespace {namespace}" if ref.kind == ACCOUNT_KIND else ""
            listed = (
                f"kubectl get camsaccounts -n {namespace}"
                if ref.kind == ACCOUNT_KIND
                else ("kubectl get clustercamsaccounts")
            )
            return CredentialProblem(
                "AccountNotFound",
                f"{key} named in spec.accountRef does not exist{where} (the accounts: {listed})",
            )
    else:
        defaults = sorted(a.key.name for a in accounts.values() if a.default)
        if len(defaults) != 1:
            several = (
                f" Several are marked the default ({', '.join(defaults)}): keep one." if defaults else ""
            )
            return CredentialProblem("NoAccount", NO_ACCOUNT + several)
        account = accounts[AccountKey(CLUSTER_ACCOUNT_KIND, "", defaults[0])]
    return allowed(account, namespace=namespace, space=spec.cust_space_id, labels=labels)


def allowed(
    account: Account, *, namespace: str, space: str, labels: Mapping[str, str] | None
) -> Choice | CredentialProblem:
    if account.spec is None:
        return CredentialProblem("AccountInvalid", f"{account.key} is invalid: {account.problem_message}")
    spec = account.spec
    if isinstance(spec, ClusterCamsAccountSpec) and not admits(spec, namespace, labels):
        if labels is None and spec.namespace_selector is not None:
            # Not known yet (the object's event came before its namespace's): nothing is admitted by a
            # selector then, or NotIn and DoesNotExist would admit what they should not. The namespace's
            # event decides again.
            return CredentialProblem(
                "AccountNotAllowed",
                f"{account.key} admits namespaces by their labels, and the labels of namespace {namespace} "
                "are not known yet; decided again as soon as they are",
                transient=True,
            )
        return CredentialProblem(
            "AccountNotAllowed",
            f"{account.key} does not admit namespace {namespace}: its spec.namespaces or "
            "spec.namespaceSelector would have to include it (ask the platform team), or use another account",
        )
    if spec.spaces is not None and space not in spec.spaces:
        return CredentialProblem(
            "SpaceNotAllowed",
            f"{account.key} may act only on the spaces {', '.join(spec.spaces)}, not on {space}: use an "
            "account for that space, or have the space added to the account's spec.spaces",
        )
    return choice_of(account)


def choice_of(account: Account) -> Choice:
    """Where a (valid) account's credentials are."""
    spec = account.spec
    assert spec is not None
    if isinstance(spec, CamsAccountSpec):
        own = Quota(str(account.key), spec.qps, shared=False) if spec.qps is not None else None
        return Choice(account.key, (account.key.namespace, spec.credentials.secret_ref.name), quota=own)
    secret = spec.credentials.secret_ref
    return Choice(
        account.key,
        (secret.namespace, secret.name) if secret else None,
        operator_identity=spec.credentials.operator_identity is not None,
        quota=Quota(str(account.key), spec.qps, shared=True),
    )


# What an object that names neither an account nor a Secret uses: the account marked as the default.
DEFAULT = "the default account"


def named_account(spec: PhoneWebhookSpec, namespace: str) -> AccountKey | str | None:
    """The account an object's spec names; DEFAULT when it names none (and no Secret of its own); None
    when it brings its own Secret."""
    ref = spec.account_ref
    if ref is None:
        return DEFAULT if spec.credentials_secret_ref is None else None
    return AccountKey(ref.kind, namespace if ref.kind == ACCOUNT_KIND else "", ref.name)
