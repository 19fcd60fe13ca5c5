"""The API models and the CRD generated from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.api.accounts import CamsAccountSpec, ClusterCamsAccountSpec, scope_of
from cams_webhook_operator.api.crd import KINDS, build_crd, main, rendered
from cams_webhook_operator.api.status_models import Condition, PhoneWebhookStatus

VALID = {"custSpaceId": "space-1", "phoneNumber": "8613800001234"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phoneNumber": "+8613800001234"}, "international format"),
        ({"phoneNumber": "138 0000 1234"}, "international format"),
        ({"statusCallbackUrl": "ftp://example.com/x"}, "http:// or https://"),
        ({"upCallbackUrl": "https://"}, "http:// or https://"),
        ({"statusCallbackUrl": "https://example.com/" + "a" * 1100}, "at most 1024"),
        ({"httpFlag": "maybe"}, "valid boolean"),
        ({"credentialsSecretRef": {"name": "s", "namespace": "other"}}, "own namespace"),
        ({"custSpaceId": "space 1"}, "CAMS space ID"),
        ({"unknownField": 1}, "Extra inputs"),
    ],
    ids=[
        "plus-sign",
        "spaces",
        "ftp-url",
        "url-without-host",
        "long-url",
        "flag-word",
        "secret-namespace",
        "space-with-blank",
        "unknown-field",
    ],
)
def test_invalid_spec_is_refused_with_a_clear_message(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PhoneWebhookSpec.model_validate({**VALID, **change})


def test_a_url_with_a_password_is_the_api_servers_to_refuse_and_the_operators_to_flag() -> None:
    """0.1.0 allowed it: an object stored then must still parse (the CRD refuses new values only)."""
    spec = PhoneWebhookSpec.model_validate({**VALID, "upCallbackUrl": "https://hook:s3cret@example.com/in"})
    assert spec.urls_with_credentials() == ("upCallbackUrl",)
    assert PhoneWebhookSpec.model_validate(VALID).urls_with_credentials() == ()
    spec = build_crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["properties"]["upCallbackUrl"]["x-kubernetes-validations"]
    assert any("must not carry a user name or password" in r["message"] for r in rules)
    assert any("upCallbackUrlFrom.secretKeyRef" in r["message"] for r in rules)


def test_valid_spec_parses_camel_case_fields() -> None:
    spec = PhoneWebhookSpec.model_validate(
        {**VALID, "httpFlag": True, "queueFlag": False, "credentialsSecretRef": {"name": "cams"}}
    )
    assert spec.http_flag is True
    assert spec.queue_flag is False
    assert spec.credentials_secret_ref is not None
    assert spec.credentials_secret_ref.name == "cams"


def test_committed_crds_match_the_models() -> None:
    assert main(["--check"]) == 0, "run: python -m cams_webhook_operator.api.crd"
    for path, text in rendered().items():
        assert path.read_text() == text
    assert len(rendered()) == 6, "three kinds, each in crds/ and in the chart"


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _walk(sub, f"{path}.{name}")
    if "items" in schema:
        out += _walk(schema["items"], f"{path}[]")
    return out


@pytest.mark.parametrize("kind", KINDS, ids=[kind.kind for kind in KINDS])
def test_every_spec_and_status_field_has_a_description(kind: Any) -> None:
    root = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in ("spec", "status"):
        for path, node in _walk(root["properties"][part], part):
            assert node.get("description"), f"{kind.kind} {path} has no description"


@pytest.mark.parametrize("kind", KINDS, ids=[kind.kind for kind in KINDS])
def test_every_kind_is_structural_has_a_status_and_is_in_the_cams_category(kind: Any) -> None:
    text = yaml.safe_dump(build_crd(kind))
    for forbidden in ("$ref", "anyOf", "title:", "$defs", "additionalProperties: false"):
        assert forbidden not in text
    crd = build_crd(kind)
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["cams"], "kubectl get cams lists every kind"


def test_phonewebhook_crd() -> None:
    crd = yaml.safe_load(yaml.safe_dump(build_crd(KINDS[0])))
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert version["schema"]["openAPIV3Schema"]["properties"]["status"]["default"] == {
        "observedGeneration": -1
    }
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["custSpaceId", "phoneNumber"]
    for immutable in ("custSpaceId", "phoneNumber"):
        rules = [rule["rule"] for rule in spec["properties"][immutable]["x-kubernetes-validations"]]
        assert "self == oldSelf" in rules
    assert crd["spec"]["names"]["shortNames"] == ["pwh"]
    assert crd["spec"]["names"]["categories"] == ["cams"]


def test_models_given_the_same_fields_share_one_set_of_them_and_a_copy_changes_no_other() -> None:
    """The memory saving of CamelModel: one fields-set per combination of fields, not per instance."""
    now = datetime(2026, 11, 28, tzinfo=UTC)

    def ready(message: str) -> Condition:
        return Condition(
            type="Ready",
            status="True",
            reason="Applied",
            message=message,
            last_transition_time=now,
            observed_generation=1,
        )

    first, second = ready("a"), ready("b")
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    status = PhoneWebhookStatus(observed_generation=1, conditions=[first])
    other = PhoneWebhookStatus(observed_generation=1, conditions=[second])
    updated = status.model_copy(update={"applied_fingerprint": "f" * 32})
    assert status.model_fields_set == other.model_fields_set == {"observed_generation", "conditions"}
    assert updated.model_fields_set == {"observed_generation", "conditions", "applied_fingerprint"}
    assert updated.model_dump(by_alias=True, exclude_unset=True)["appliedFingerprint"] == "f" * 32
    assert "appliedFingerprint" not in other.model_dump(by_alias=True, exclude_unset=True)


@pytest.mark.parametrize(
    ("kind", "spec", "spaces", "namespaces"),
    [
        ("namespaced", {}, "all", None),
        ("namespaced", {"spaces": ["s1", "s2"]}, "s1,s2", None),
        ("cluster", {}, "all", "none"),
        ("cluster", {"namespaceSelector": {}}, "all", "all"),
        ("cluster", {"namespaces": ["a", "b"], "namespaceSelector": {}}, "all", "all"),
        ("cluster", {"namespaces": ["a"]}, "all", "a"),
        (
            "cluster",
            {
                "namespaces": ["a"],
                "namespaceSelector": {
                    "matchLabels": {"team": "x"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["1", "2"]},
                        {"key": "legacy", "operator": "DoesNotExist"},
                    ],
                },
            },
            "all",
            "a or team=x,tier in (1,2),!legacy",
        ),
    ],
)
def test_an_accounts_status_says_what_it_admits_where_its_spec_leaves_a_list_out(
    kind: str, spec: dict[str, Any], spaces: str, namespaces: str | None
) -> None:
    """kubectl's SPACES and NAMESPACES columns read the status: a JSONPath column shows an unset list as
    nothing, which reads as "none" while it means "all"."""
    secret_ref = {"name": "k", "namespace": "ops"} if kind == "cluster" else {"name": "k"}
    credentials = {"credentials": {"secretRef": secret_ref}}
    model = ClusterCamsAccountSpec if kind == "cluster" else CamsAccountSpec
    parsed = model.model_validate({**credentials, **spec})
    assert scope_of(parsed) == {"spaces": spaces, "namespaces": namespaces}
