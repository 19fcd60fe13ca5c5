"""The import command's manifests: Observe mode, only what CAMS holds, valid against the models."""

from __future__ import annotations

import yaml

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.importer import manifests, render


def test_imported_objects_observe_and_carry_only_what_cams_holds() -> None:
    numbers = {
        "8613800002222": LiveNumber("8613800002222", "", "https://b.example/up", "VERIFIED"),
        "8613800001111": LiveNumber("8613800001111", "https://a.example/status", "", "VERIFIED"),
    }
    objects = manifests(space="s1", namespace="messaging", numbers=numbers, credentials_secret="cams")
    assert [o["metadata"] for o in objects] == [
        {"name": "pwh-8613800001111", "namespace": "messaging"},
        {"name": "pwh-8613800002222", "namespace": "messaging"},
    ]
    first = objects[0]["spec"]
    assert first == {
        "custSpaceId": "s1",
        "phoneNumber": "8613800001111",
        "managementMode": "Observe",
        "statusCallbackUrl": "https://a.example/status",
        "credentialsSecretRef": {"name": "cams"},
    }
    for obj in objects:
        PhoneWebhookSpec.model_validate(obj["spec"])
    text = render(space="s1", objects=objects)
    assert text.startswith("# Imported from CAMS space s1")
    assert len([doc for doc in yaml.safe_load_all(text) if doc]) == 2


def test_imported_objects_name_the_account_they_were_imported_for() -> None:
    numbers = {"8613800001111": LiveNumber("8613800001111", "https://a.example/status", "", "VERIFIED")}
    (obj,) = manifests(
        space="s1", namespace="team", numbers=numbers, account=("ClusterCamsAccount", "shared")
    )
    spec = PhoneWebhookSpec.model_validate(obj["spec"])
    assert spec.account_ref is not None
    assert (spec.account_ref.kind, spec.account_ref.name) == ("ClusterCamsAccount", "shared")
    assert spec.credentials_secret_ref is None


def test_urls_with_tokens_go_into_one_secret_per_number_that_the_object_names() -> None:
    numbers = {
        "8613800001111": LiveNumber(
            "8613800001111", "https://a.example/status", "https://a.example/in?token=t0k", "VERIFIED"
        ),
        "8613800002222": LiveNumber("8613800002222", "https://u:pw@b.example/s", "", "VERIFIED"),
        "8613800003333": LiveNumber("8613800003333", "https://c.example", "", "VERIFIED"),
    }
    objects = manifests(space="s1", namespace="team", numbers=numbers, urls_to_secrets=True)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "pwh-8613800001111-callback-urls"),
        ("PhoneWebhook", "pwh-8613800001111"),
        ("Secret", "pwh-8613800002222-callback-urls"),
        ("PhoneWebhook", "pwh-8613800002222"),
        ("PhoneWebhook", "pwh-8613800003333"),
    ]
    secret, first = objects[0], objects[1]
    assert secret["metadata"]["namespace"] == "team"
    assert secret["stringData"] == {
        "statusCallbackUrl": "https://a.example/status",  # a path may be a token (Slack's are)
        "upCallbackUrl": "https://a.example/in?token=t0k",
    }
    assert first["spec"]["upCallbackUrlFrom"] == {
        "secretKeyRef": {"name": "pwh-8613800001111-callback-urls", "key": "upCallbackUrl"}
    }
    assert objects[4]["spec"]["statusCallbackUrl"] == "https://c.example", "nothing to hide: in the spec"
    assert objects[2]["stringData"] == {"statusCallbackUrl": "https://u:pw@b.example/s"}
    for obj in objects:
        if obj["kind"] == "PhoneWebhook":
            spec = PhoneWebhookSpec.model_validate(obj["spec"])  # valid: no user-info left in a spec
            assert "t0k" not in str(obj["spec"])
            assert "pw@" not in str(obj["spec"])
            assert spec.management_mode == "Observe"
    assert "seal or encrypt those Secrets" in render(space="s1", objects=objects)
