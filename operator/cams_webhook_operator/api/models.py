"""The spec of a PhoneWebhook (its status: status_models.py).

Every validation rule lives here twice on purpose: as a Python validator (so the operator never acts on
an object the API server would refuse, e.g. one stored before a rule was tightened) and as a CEL rule in
`json_schema_extra` (so the API server refuses bad manifests with the same message). The CRD in `crds/`
is generated from these models by `python -m cams_webhook_operator.api.crd`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.alias_generators import to_camel

from cams_webhook_operator.api.names import AccountName, SecretKey, SecretName

GROUP = "camswebhook.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PhoneWebhook"
PLURAL = "phonewebhooks"
SINGULAR = "phonewebhook"
SHORT_NAME = "pwh"
CATEGORY = "cams"

# Annotations a person sets on a PhoneWebhook (documented in docs/api.md).
PAUSED_ANNOTATION = f"{GROUP}/paused"  # "true": no CAMS call at all for this object
RECONCILE_REQUEST_ANNOTATION = f"{GROUP}/reconcile-requested-at"  # any new value: apply once, now
# How often to compare CAMS's live webhook with the spec: "30s", "10m", "1h", plain seconds, or "off".
DRIFT_INTERVAL_ANNOTATION = f"{GROUP}/drift-check-interval"
# "true": let a deletionPolicy Clear object go without clearing CAMS (when CAMS refuses for good).
RELEASE_ANNOTATION = f"{GROUP}/release-without-clearing"
# Held by deletionPolicy Clear objects only, so that Retain objects can never be stuck in deletion.
CLEAR_FINALIZER = f"{GROUP}/clear-webhook"

PHONE_NUMBER_PATTERN = r"^[1-9][0-9]{5,14}$"
PHONE_NUMBER_MESSAGE = (
    "phoneNumber must be the number in international format: digits only, starting with the country code, "
    "no '+', spaces or dashes (for example 8613800001234)"
)
CUST_SPACE_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
CUST_SPACE_ID_MESSAGE = "custSpaceId must be the CAMS space ID: letters, digits, '.', '_' or '-' only"
URL_MAX_LENGTH = 1024
URL_MESSAGE = "must be an absolute http:// or https:// URL with a host, for example https://example.com/cams"
SECRET_NAMESPACE_MESSAGE = (
    "A Secret reference may not name a namespace: only a Secret in this object's own namespace may be used; "
    "remove the field and create the Secret next to the object"
)


def url_from_message(field: str) -> str:
    return (
        f"{field} and {field}From both give the {field} URL: give one of them ({field}From keeps a URL that "
        "carries a token in a Secret, out of Git and out of status)"
    )


ACCOUNT_REF_MESSAGE = (
    "accountRef and credentialsSecretRef are two ways to say which credentials to use: give one of them"
)
# An admin marks one ClusterCamsAccount as the account of PhoneWebhooks that name none (as a default
# StorageClass is marked); the account's namespace rules still apply.
DEFAULT_ACCOUNT_ANNOTATION = f"{GROUP}/default-account"
ACCOUNT_KIND = "CamsAccount"
CLUSTER_ACCOUNT_KIND = "ClusterCamsAccount"
ACCOUNT_PLURAL = "camsaccounts"
CLUSTER_ACCOUNT_PLURAL = "clustercamsaccounts"


def _immutable(field: str) -> dict[str, Any]:
    return {
        "rule": "self == oldSelf",
        "message": f"{field} is immutable: changing it would silently abandon the old number's webhook; "
        "delete this PhoneWebhook and create a new one instead",
    }


def timestamp(moment: datetime) -> str:
    """The one format of a time in a message for people (status messages, Events, conflicts)."""
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def userinfo_message(field: str) -> str:
    return (
        f"{field} must not carry a user name or password (user:password@host): they would be stored and "
        f"shown in clear; put the URL in a Secret and name it in {field}From.secretKeyRef instead"
    )


_USERINFO = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@"
_HTTP_URL = "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''"


def _url_rules(field: str) -> list[JsonValue]:
    return [
        {"rule": _HTTP_URL, "message": f"{field} {URL_MESSAGE}"},
        {"rule": f"!self.matches('{_USERINFO}')", "message": userinfo_message(field)},
    ]


# One set per combination of fields given, shared by every model that was given those fields.
_FIELDS_SET: dict[frozenset[str], set[str]] = {}


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        self._share_fields_set()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied._share_fields_set()
        return copied

    def _share_fields_set(self) -> None:
        """Share the set of fields given among all models given the same fields. pydantic keeps one such
        set per instance (728 bytes for six fields, two thirds of a Condition; 2 KB for a status); the
        operator keeps a spec and a status with four conditions per object: 4 KB per object. Sharing is
        safe because these models are frozen: pydantic only ever copies the set (model_copy), never
        changes it in place."""
        given = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _FIELDS_SET.setdefault(frozenset(given), given))


class _InOwnNamespace(CamelModel):
    """A reference to a Secret, which must be in the referring object's own namespace."""

    model_config = ConfigDict(extra="forbid")

    # Declared only to be refused with a message a person understands; without it a namespace would be
    # pruned silently or refused as an "unknown field" with no reason given.
    namespace: str | None = Field(
        default=None,
        description="Not supported: the Secret must be in this object's own namespace.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "false", "message": SECRET_NAMESPACE_MESSAGE}]
        },
    )

    @field_validator("namespace")
    @classmethod
    def _no_namespace(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(SECRET_NAMESPACE_MESSAGE)
        return value


class SecretReference(_InOwnNamespace):
    """A Secret in this object's own namespace."""

    name: SecretName = Field(
        description="Name of a Secret in the same namespace as this object, with the keys accessKeyId and "
        "accessKeySecret, and securityToken when the key is an STS temporary credential.",
    )


class SecretKeySelector(_InOwnNamespace):
    """A key of a Secret in this object's own namespace, as in a container's env valueFrom.secretKeyRef."""

    name: SecretName = Field(description="Name of a Secret in this object's namespace.")
    key: SecretKey = Field(description="The key of the Secret whose value is the URL.")


class UrlSource(CamelModel):
    """Where a callback URL comes from when it is not written in the spec."""

    model_config = ConfigDict(extra="forbid")

    secret_key_ref: SecretKeySelector = Field(
        description="A key of a Secret in this namespace whose value is the URL (for example one with a "
        "token in its query string). The operator reads it by name and applies it again when it changes; "
        "the value never appears in status, Events or logs."
    )


class AccountReference(CamelModel):
    """The account whose credentials and rules a PhoneWebhook uses."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["CamsAccount", "ClusterCamsAccount"] = Field(
        description="CamsAccount (in this namespace) or ClusterCamsAccount (made available to this "
        "namespace by the platform team)."
    )
    name: AccountName = Field(description="The account's name.")


class PhoneWebhookSpec(CamelModel):
    """The webhook configuration wanted in CAMS for one WhatsApp/Viber business number."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.accountRef) && has(self.credentialsSecretRef))",
                    "message": ACCOUNT_REF_MESSAGE,
                },
                {
                    "rule": "!(has(self.statusCallbackUrl) && has(self.statusCallbackUrlFrom))",
                    "message": url_from_message("statusCallbackUrl"),
                },
                {
                    "rule": "!(has(self.upCallbackUrl) && has(self.upCallbackUrlFrom))",
                    "message": url_from_message("upCallbackUrl"),
                },
            ]
        },
    )

    cust_space_id: str = Field(
        min_length=1,
        max_length=64,
        description="CAMS space ID (CustSpaceId) that owns the phone number; for ISV sub-clients, "
        "the sub-client's space ID. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.matches('{CUST_SPACE_ID_PATTERN}')", "message": CUST_SPACE_ID_MESSAGE},
                _immutable("custSpaceId"),
            ]
        },
    )
    phone_number: str = Field(
        min_length=1,
        # Looser than the 15 digits the pattern allows, so "+86 138-0000-1234" gets the CEL rule's message
        # (what a valid number looks like) rather than "Too long", which stops the API server's CEL checks.
        max_length=32,
        description="The business phone number with country code, digits only (E.164 without '+'), "
        "for example 8613800001234. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.matches('{PHONE_NUMBER_PATTERN}')", "message": PHONE_NUMBER_MESSAGE},
                _immutable("phoneNumber"),
            ]
        },
    )
    status_callback_url: str | None = Field(
        default=None,
        max_length=URL_MAX_LENGTH,
        description="HTTP(S) URL that CAMS calls with message status reports (StatusCallbackUrl). "
        "Unset leaves the value in CAMS unchanged.",
        json_schema_extra={"x-kubernetes-validations": _url_rules("statusCallbackUrl")},
    )
    up_callback_url: str | None = Field(
        default=None,
        max_length=URL_MAX_LENGTH,
        description="HTTP(S) URL that CAMS calls with inbound (upstream) messages (UpCallbackUrl). "
        "Unset leaves the value in CAMS unchanged.",
        json_schema_extra={"x-kubernetes-validations": _url_rules("upCallbackUrl")},
    )
    status_callback_url_from: UrlSource | None = Field(
        default=None,
        description="StatusCallbackUrl from a key of a Secret in this namespace, for a URL that carries a "
        "token. Not together with statusCallbackUrl.",
    )
    up_callback_url_from: UrlSource | None = Field(
        default=None,
        description="UpCallbackUrl from a key of a Secret in this namespace, for a URL that carries a token. "
        "Not together with upCallbackUrl.",
    )
    http_flag: bool | None = Field(
        default=None,
        description="Whether CAMS delivers receipts over HTTP (HttpFlag Y/N). A boolean, not a string: "
        "write true or false. Unset leaves the value in CAMS unchanged.",
    )
    queue_flag: bool | None = Field(
        default=None,
        description="Whether CAMS delivers receipts through a message queue (QueueFlag Y/N). A boolean, "
        "not a string: write true or false. Unset leaves the value in CAMS unchanged.",
    )
    management_mode: Literal["Manage", "Observe"] = Field(
        default="Manage",
        description="Manage (default): the operator applies this spec to CAMS. Observe: it never calls "
        "UpdatePhoneWebhook; it reads what CAMS holds, shows it in status.live and says in the InSync "
        "condition whether it matches this spec. Switching to Manage applies the spec once.",
    )
    deletion_policy: Literal["Retain", "Clear"] = Field(
        default="Retain",
        description="What deleting this object does in CAMS. Retain (default): nothing, the webhook stays as "
        "it is. Clear: the operator clears the callback URLs and sets both flags to N before the object "
        f"goes; if CAMS refuses for good, the annotation {RELEASE_ANNOTATION}=true lets it go anyway.",
    )
    account_ref: AccountReference | None = Field(
        default=None,
        description="The CamsAccount or ClusterCamsAccount to call CAMS as. Unset, and without "
        "credentialsSecretRef: the ClusterCamsAccount marked as the default, if the platform team marked one "
        "and it allows this namespace. The operator's own identity is never used otherwise.",
    )
    credentials_secret_ref: SecretReference | None = Field(
        default=None,
        description="Shorthand for an account of this object's own: a Secret in this namespace with the "
        "Alibaba Cloud credentials to call CAMS with, any space. Not together with accountRef.",
    )

    @model_validator(mode="after")
    def _one_credentials_source(self) -> PhoneWebhookSpec:
        if self.account_ref is not None and self.credentials_secret_ref is not None:
            raise ValueError(ACCOUNT_REF_MESSAGE)
        if self.status_callback_url is not None and self.status_callback_url_from is not None:
            raise ValueError(url_from_message("statusCallbackUrl"))
        if self.up_callback_url is not None and self.up_callback_url_from is not None:
            raise ValueError(url_from_message("upCallbackUrl"))
        return self

    @field_validator("phone_number")
    @classmethod
    def _phone_number_format(cls, value: str) -> str:
        if not re.fullmatch(PHONE_NUMBER_PATTERN, value):
            raise ValueError(PHONE_NUMBER_MESSAGE)
        return value

    @field_validator("cust_space_id")
    @classmethod
    def _cust_space_id_format(cls, value: str) -> str:
        if not re.fullmatch(CUST_SPACE_ID_PATTERN, value):
            raise ValueError(CUST_SPACE_ID_MESSAGE)
        return sys.intern(value)  # a space holds many numbers: one string per space, not per object

    @field_validator("status_callback_url", "up_callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(URL_MESSAGE)
        # User-info is refused by the API server (the CRD's rule), for new values only: 0.1.0 allowed it,
        # and an object stored then keeps its URL (CRD validation ratcheting) and stays managed, with a
        # Warning that says how to move the URL into a Secret (`urls_with_credentials`).
        return value

    def urls_with_credentials(self) -> tuple[str, ...]:
        """The literal URL fields that carry a user name or password (allowed by 0.1.0, not since)."""
        return tuple(
            field
            for field, url in (
                ("statusCallbackUrl", self.status_callback_url),
                ("upCallbackUrl", self.up_callback_url),
            )
            if url is not None and re.match(_USERINFO, url)
        )
