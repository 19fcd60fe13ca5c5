"""URLs from Secrets, pure parts: what a Secret must hold, what a problem says (never the value), and how
status shows a URL that CAMS holds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls, redact, resolve, secret_names
from cams_webhook_operator.tenancy.credentials import CredentialProblem, SecretData

TOKEN = "s3cr3t-t0ken"
SPEC = PhoneWebhookSpec.model_validate(
    {
        "custSpaceId": "space",
        "phoneNumber": "8613800001234",
        "statusCallbackUrl": "https://hooks.example/status",
        "upCallbackUrlFrom": {"secretKeyRef": {"name": "hooks", "key": "inbound"}},
    }
)


def _secret(**data: str) -> SecretData:
    return SecretData(resource_version="1", data=data)


def test_a_url_from_a_secret_replaces_only_its_own_field() -> None:
    assert secret_names(SPEC) == {"hooks"}
    urls = resolve(SPEC, "team", {"hooks": _secret(inbound=f" https://hooks.example/in?token={TOKEN}\n")})
    assert urls == CallbackUrls("https://hooks.example/status", f"https://hooks.example/in?token={TOKEN}")


@pytest.mark.parametrize(
    ("secrets", "reason", "says"),
    [
        ({"hooks": None}, "CallbackUrlSecretNotFound", "Secret team/hooks named in spec.upCallbackUrlFrom"),
        ({"hooks": _secret(other="x")}, "CallbackUrlKeyNotFound", "has no key inbound"),
        ({"hooks": _secret(inbound=f"hooks.example/in?token={TOKEN}")}, "InvalidCallbackUrl", "key inbound"),
        ({"hooks": _secret(inbound=f"ftp://hooks.example/?token={TOKEN}")}, "InvalidCallbackUrl", "http(s)"),
    ],
    ids=["no-secret", "no-key", "no-scheme", "not-http"],
)
def test_a_problem_names_the_secret_and_key_but_never_the_value(
    secrets: dict[str, SecretData | None], reason: str, says: str
) -> None:
    problem = resolve(SPEC, "team", secrets)
    assert isinstance(problem, CredentialProblem)
    assert problem.reason == reason
    assert says in problem.message
    assert TOKEN not in problem.message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example/cams/in?token=abc", "https://hooks.example/redacted?redacted"),
        (
            "https://user:pw@hooks.example:8443/x#frag",
            "https://redacted@hooks.example:8443/redacted#redacted",
        ),
        ("http://[::1]:8080/plain", "http://[::1]:8080/redacted"),
        (
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "https://hooks.slack.com/redacted",
        ),  # a path token
        ("https://hooks.example/", "https://hooks.example/"),
        ("https://hooks.example", "https://hooks.example"),
        ("", ""),
        ("https://hooks.example:99999/?token=abc", "redacted"),
    ],
)
def test_redacted_urls_keep_where_they_lead_and_drop_where_tokens_travel(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "spec",
    [
        {
            "statusCallbackUrl": "https://a.example/s",
            "statusCallbackUrlFrom": {"secretKeyRef": {"name": "h", "key": "k"}},
        },
        {
            "upCallbackUrl": "https://a.example/u",
            "upCallbackUrlFrom": {"secretKeyRef": {"name": "h", "key": "k"}},
        },
        {"upCallbackUrlFrom": {"secretKeyRef": {"name": "h", "key": "k", "namespace": "other"}}},
        {"upCallbackUrlFrom": {"secretKeyRef": {"name": "h", "key": "bad/key"}}},
    ],
    ids=["status-both", "up-both", "other-namespace", "bad-key"],
)
def test_a_literal_url_and_a_secret_for_the_same_field_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PhoneWebhookSpec.model_validate({"custSpaceId": "s", "phoneNumber": "8613800001234", **spec})
