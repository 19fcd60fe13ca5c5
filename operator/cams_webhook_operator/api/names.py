"""Names of Kubernetes objects, as Kubernetes itself validates them (apimachinery's IsDNS1123Subdomain,
IsDNS1123Label and IsConfigMapKey).

A reference to a Secret or an account is a *name*, never a path: a value such as
`../../victim/secrets/key` must be refused before it can reach a URL, or a tenant could make the operator
read another namespace's Secret. Each rule is given twice, as everywhere in `api/`: a pydantic validator
(so that the operator refuses an object stored before the rule existed) and a CEL rule (so that the API
server refuses a new manifest with the same message). The patterns use `[.]` rather than a backslash so
that one string serves Python's `re` and the API server's RE2 alike.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import PydanticCustomError

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX_LENGTH = 253
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX_LENGTH = 63
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
SECRET_KEY_MAX_LENGTH = 253

# The error type that marks a name refused by these rules, so that an object holding one is reported as
# having an invalid name (reason InvalidName) rather than an invalid spec in general.
INVALID_NAME = "invalid_name"

SUBDOMAIN_RULE = (
    "at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit "
    "(a name, not a path: no '/', no upper case, not '.' or '..')"
)
LABEL_RULE = (
    "at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit "
    "(a name, not a path: no '/', no '.', no upper case)"
)
KEY_RULE = "at most 253 letters, digits, '-', '_' and '.', and not '.' or '..' (a key, not a path: no '/')"


SECRET_NAME_MESSAGE = f"must be the name of a Secret as Kubernetes allows it: {SUBDOMAIN_RULE}"
ACCOUNT_NAME_MESSAGE = (
    f"must be the name of a CamsAccount or ClusterCamsAccount as Kubernetes allows it: {SUBDOMAIN_RULE}"
)
NAMESPACE_NAME_MESSAGE = f"must be the name of a namespace as Kubernetes allows it: {LABEL_RULE}"
SECRET_KEY_MESSAGE = f"must be a key of a Secret as Kubernetes allows it: {KEY_RULE}"


def _is_subdomain(value: str) -> bool:
    return len(value) <= DNS_SUBDOMAIN_MAX_LENGTH and re.fullmatch(DNS_SUBDOMAIN_PATTERN, value) is not None


def _is_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX_LENGTH and re.fullmatch(DNS_LABEL_PATTERN, value) is not None


def _is_key(value: str) -> bool:
    return (
        len(value) <= SECRET_KEY_MAX_LENGTH
        and re.fullmatch(SECRET_KEY_PATTERN, value) is not None
        and value not in (".", "..")
    )


def _checked(valid: Any, message: str) -> BeforeValidator:
    """A validator that runs before pydantic's own length checks, so that every bad name (empty, too
    long, or of the wrong characters) gets the same message and the same error type."""

    def check(value: object) -> object:
        if isinstance(value, str) and not valid(value):
            raise PydanticCustomError(INVALID_NAME, message)
        return value

    return BeforeValidator(check)


def _field(pattern: str, message: str, max_length: int, extra_rule: str = "") -> Any:
    """The schema half: lengths, and a CEL rule with the message (a plain `pattern` would make the API
    server answer with the regular expression instead)."""
    rule = f"self.matches('{pattern}')" + extra_rule
    return Field(
        min_length=1,
        max_length=max_length,
        json_schema_extra={"x-kubernetes-validations": [{"rule": rule, "message": message}]},
    )


# Field types; a field gives its own description with `= Field(description=...)`.
SecretName = Annotated[
    str,
    _field(DNS_SUBDOMAIN_PATTERN, SECRET_NAME_MESSAGE, DNS_SUBDOMAIN_MAX_LENGTH),
    _checked(_is_subdomain, SECRET_NAME_MESSAGE),
]
AccountName = Annotated[
    str,
    _field(DNS_SUBDOMAIN_PATTERN, ACCOUNT_NAME_MESSAGE, DNS_SUBDOMAIN_MAX_LENGTH),
    _checked(_is_subdomain, ACCOUNT_NAME_MESSAGE),
]
NamespaceName = Annotated[
    str,
    _field(DNS_LABEL_PATTERN, NAMESPACE_NAME_MESSAGE, DNS_LABEL_MAX_LENGTH),
    _checked(_is_label, NAMESPACE_NAME_MESSAGE),
]
SecretKey = Annotated[
    str,
    _field(SECRET_KEY_PATTERN, SECRET_KEY_MESSAGE, SECRET_KEY_MAX_LENGTH, " && self != '.' && self != '..'"),
    _checked(_is_key, SECRET_KEY_MESSAGE),
]


# The first words of the message of an object refused for its spec, by reason.
INVALID_SPEC_MESSAGES = {
    "InvalidSpec": "The spec is invalid",
    "InvalidName": "The spec names an object by an invalid name, so nothing was read and nothing was called",
}


def problem_of(exc: ValidationError) -> tuple[str, str]:
    """(reason, message) for a spec the models refuse: InvalidName when every error is a bad name (the
    message says which field and what a name may be), else InvalidSpec."""
    errors = exc.errors()
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where} {error['msg']}" if error["type"] == INVALID_NAME else str(error["msg"]))
    reason = "InvalidName" if errors and all(e["type"] == INVALID_NAME for e in errors) else "InvalidSpec"
    return reason, "; ".join(parts)
