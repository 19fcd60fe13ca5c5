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
