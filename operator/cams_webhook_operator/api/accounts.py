"""CamsAccount and ClusterCamsAccount: whose credentials a PhoneWebhook calls CAMS with, and on which
spaces, from which namespaces.

CAMS's RAM policies cannot restrict a key to a space, so these objects are where "team B may not touch team
A's numbers" is enforced. As in models.py, every rule is here twice: a Python validator and a CEL rule, so
that the API server refuses a bad manifest with the message the operator would give.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from cams_webhook_operator.api.models import CUST_SPACE_ID_PATTERN, CamelModel, SecretReference
from cams_webhook_operator.api.names import NamespaceName, SecretName
from cams_webhook_operator.api.status_models import Condition

SPACE_ITEM_MESSAGE = "spaces lists CAMS space IDs (CustSpaceId): letters, digits, '.', '_' or '-' only"
SPACES_EMPTY_MESSAGE = (
    "spaces, when given, lists at least one CustSpaceId; leave it out to allow every space of the account"
)
NAMESPACES_EMPTY_MESSAGE = (
    "namespaces, when given, lists at least one namespace; leave it out (and namespaceSelector too) if no "
    "namespace may use this account yet"
)
CREDENTIALS_ONE_OF_MESSAGE = (
    "credentials takes exactly one of secretRef (a Secret in the operator's namespace) or "
    "operatorIdentity: {} (the operator's own AccessKey or RRSA role)"
)
NAMESPACE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAMESPACE_NAME_MESSAGE = "namespaces lists namespace names: lower-case letters, digits and '-'"


MAX_SPACES = 256  # bounds that keep the CEL rules' cost within the API server's budget
MAX_SPACE_ID_LENGTH = 64
MAX_NAMESPACES = 256


def _spaces_field() -> Any:
    return Field(
        default=None,
        max_length=MAX_SPACES,
        description="The CAMS spaces (CustSpaceId) this account may act on. Unset: every space the "
        "credentials reach. A PhoneWebhook for any other space is refused before any CAMS call.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {
                "type": "string",
                "description": "A CustSpaceId.",
                "maxLength": MAX_SPACE_ID_LENGTH,
                "x-kubernetes-validations": [
                    {"rule": f"self.matches('{CUST_SPACE_ID_PATTERN}')", "message": SPACE_ITEM_MESSAGE}
                ],
            },
            "x-kubernetes-validations": [{"rule": "size(self) > 0", "message": SPACES_EMPTY_MESSAGE}],
        },
    )


def _qps_field(description: str) -> Any:
    return Field(default=None, gt=0, le=10000, description=description)


NAMESPACED_QPS = (
    "At most this many UpdatePhoneWebhook calls per second for this account's own objects, to leave room for "
    "others. It never paces anything else: the Alibaba Cloud account's quota is the platform's to set "
    "(ClusterCamsAccount qps, else the operator's CAMS_QPS)."
)
CLUSTER_QPS = (
    "UpdatePhoneWebhook calls per second of the Alibaba Cloud account these credentials belong to, if "
    "Alibaba raised its quota from 10 (or less, to leave room for other clients). Unset: the operator's "
    "CAMS_QPS. When several ClusterCamsAccounts reach one Alibaba account, the smallest value applies."
)


def _check_spaces(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    if not value:
        raise ValueError(SPACES_EMPTY_MESSAGE)
    for space in value:
        if len(space) > MAX_SPACE_ID_LENGTH or not re.fullmatch(CUST_SPACE_ID_PATTERN, space):
            raise ValueError(SPACE_ITEM_MESSAGE)
    return value


class AccountCredentials(CamelModel):
    """Where a CamsAccount's credentials are."""

    model_config = ConfigDict(extra="forbid")

    secret_ref: SecretReference = Field(
        description="A Secret in the CamsAccount's own namespace with accessKeyId and accessKeySecret (and "
        "securityToken for STS)."
    )


class CamsAccountSpec(CamelModel):
    """An Alibaba Cloud account's credentials, for the PhoneWebhooks of this namespace only."""

    model_config = ConfigDict(extra="forbid")

    credentials: AccountCredentials = Field(description="Where the credentials are.")
    spaces: list[str] | None = _spaces_field()
    qps: float | None = _qps_field(NAMESPACED_QPS)

    @field_validator("spaces")
    @classmethod
    def _spaces_format(cls, value: list[str] | None) -> list[str] | None:
        return _check_spaces(value)


class ClusterSecretReference(CamelModel):
    """A Secret in the operator's namespace."""

    model_config = ConfigDict(extra="forbid")

    name: SecretName = Field(description="The Secret's name.")
    namespace: NamespaceName = Field(
        description="The Secret's namespace: the operator's own (where it runs). Credentials for many "
        "teams stay where no team can read them, and the operator needs no access to Secrets of other "
        "namespaces for them.",
    )


class OperatorIdentity(CamelModel):
    """The operator's own credentials: its environment AccessKey, else its RRSA role."""

    model_config = ConfigDict(extra="forbid")


class ClusterAccountCredentials(CamelModel):
    """Where a ClusterCamsAccount's credentials are: a Secret, or the operator's identity."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretRef) != has(self.operatorIdentity)",
                    "message": CREDENTIALS_ONE_OF_MESSAGE,
                }
            ]
        },
    )

    secret_ref: ClusterSecretReference | None = Field(
        default=None, description="A Secret in the operator's namespace with the credentials."
    )
    operator_identity: OperatorIdentity | None = Field(
        default=None,
        description="{} to use the operator's own AccessKey (environment) or RRSA role. Only a "
        "ClusterCamsAccount can: the operator's identity is never used by a PhoneWebhook otherwise.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ClusterAccountCredentials:
        if (self.secret_ref is None) == (self.operator_identity is None):
            raise ValueError(CREDENTIALS_ONE_OF_MESSAGE)
        return self


class LabelSelectorRequirement(CamelModel):
    """One requirement on a namespace's labels."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How key and values match."
    )
    values: list[str] | None = Field(
        default=None,
        description="The values for In and NotIn.",
        json_schema_extra={"items": {"type": "string", "description": "A label value."}},
    )


class LabelSelector(CamelModel):
    """A Kubernetes label selector (metav1.LabelSelector); {} selects every namespace."""

    model_config = ConfigDict(extra="forbid")

    match_labels: dict[str, str] | None = Field(default=None, description="Labels a namespace must have.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, description="Requirements a namespace's labels must meet."
    )


class ClusterCamsAccountSpec(CamelModel):
    """An Alibaba Cloud account the platform team makes available to chosen namespaces."""

    model_config = ConfigDict(extra="forbid")

    credentials: ClusterAccountCredentials = Field(description="Where the credentials are.")
    spaces: list[str] | None = _spaces_field()
    qps: float | None = _qps_field(CLUSTER_QPS)
    namespaces: list[str] | None = Field(
        default=None,
        max_length=MAX_NAMESPACES,
        description="Namespaces whose PhoneWebhooks may use this account. With namespaceSelector, either "
        "one admits a namespace. Neither: no namespace may.",
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {
                "type": "string",
                "description": "A namespace's name.",
                "maxLength": 63,
                "x-kubernetes-validations": [
                    {"rule": f"self.matches('{NAMESPACE_NAME_PATTERN}')", "message": NAMESPACE_NAME_MESSAGE}
                ],
            },
            "x-kubernetes-validations": [{"rule": "size(self) > 0", "message": NAMESPACES_EMPTY_MESSAGE}],
        },
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Namespaces, by their labels, whose PhoneWebhooks may use this account ({} is every "
        "namespace).",
    )

    @field_validator("spaces")
    @classmethod
    def _spaces_format(cls, value: list[str] | None) -> list[str] | None:
        return _check_spaces(value)

    @field_validator("namespaces")
    @classmethod
    def _some_namespaces(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError(NAMESPACES_EMPTY_MESSAGE)
        for name in value:
            if len(name) > 63 or not re.fullmatch(NAMESPACE_NAME_PATTERN, name):
                raise ValueError(NAMESPACE_NAME_MESSAGE)
        return value


class AccountStatus(CamelModel):
    """Whether the account's credentials can be used; written only by the operator."""

    observed_generation: int = Field(
        default=-1, description="The metadata.generation the operator last checked; -1 until it has."
    )
    credentials: str | None = Field(
        default=None,
        description="Where the credentials come from, for people: the Secret, or the operator's identity "
        "(AccessKey or RRSA role). Never a key or a secret.",
    )
    spaces: str | None = Field(
        default=None,
        description="The spaces the account may act on, for people (kubectl's SPACES column): 'all' when "
        "spec.spaces is unset, else the list.",
    )
    namespaces: str | None = Field(
        default=None,
        description="ClusterCamsAccount only, for people (kubectl's NAMESPACES column): the namespaces it "
        "admits: 'all', 'none', the names listed and/or the label selector.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (with Reconciling and Stalled, as kstatus reads them): True when the "
        "credentials were found; otherwise the reason says what is missing.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def _selector_text(selector: LabelSelector) -> str:
    """A label selector as kubectl prints one (metav1.FormatLabelSelector): key=value, key in (a,b), !key."""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for requirement in selector.match_expressions or []:
        values = ",".join(requirement.values or [])
        parts.append(
            {
                "In": f"{requirement.key} in ({values})",
                "NotIn": f"{requirement.key} notin ({values})",
                "Exists": requirement.key,
                "DoesNotExist": f"!{requirement.key}",
            }[requirement.operator]
        )
    return ",".join(parts)


def scope_of(spec: CamsAccountSpec | ClusterCamsAccountSpec) -> dict[str, str | None]:
    """What an account admits, as its status shows it to people: a JSONPath column cannot say that an
    unset list means every space, so the status says "all"."""
    spaces = ",".join(spec.spaces) if spec.spaces is not None else "all"
    if not isinstance(spec, ClusterCamsAccountSpec):
        return {"spaces": spaces, "namespaces": None}
    admitted = [",".join(spec.namespaces)] if spec.namespaces else []
    if spec.namespace_selector is not None:
        selector = _selector_text(spec.namespace_selector)
        admitted = ["all"] if not selector else [*admitted, selector]
    return {"spaces": spaces, "namespaces": " or ".join(admitted) or "none"}
