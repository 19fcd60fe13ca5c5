"""RRSA end to end: the operator gets temporary credentials from STS with the projected token, uses them
with their security token, refreshes them across expiry, and a refused token shows in status."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from .harness import Kubectl, simulator_in, start_operator, wait_for

ROLE = "acs:ram::1000:role/cams-webhook-operator"
PROVIDER = "acs:ram::1000:oidc-provider/ack-rrsa-test"
OIDC_TOKEN = "eyJ-projected-token-for-tests-Qx81"


def _ready(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    obj: dict[str, Any] = kubectl.json("get", "phonewebhook", name, "-n", namespace)
    conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    return obj if conditions.get("Ready", {}).get("status") == "True" else None


def test_rrsa_credentials_are_used_refreshed_and_refusals_shown(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(OIDC_TOKEN)
    simulator = simulator_in(
        tmp_path,
        {
            "accounts": [],
            "roles": [
                {
                    "roleArn": ROLE,
                    "oidcProviderArn": PROVIDER,
                    "oidcTokens": [OIDC_TOKEN],
                    "uid": "1000",
                    "spaces": [{"id": "rrsa"}],
                    # The operator asks for an hour (STS's minimum is 900 s); these live 4 s.
                    "issuedLifetimeSeconds": 4,
                }
            ],
        },
    )
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={
                "ALIBABA_CLOUD_ROLE_ARN": ROLE,
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token),
                "ALIBABA_CLOUD_STS_ENDPOINT": simulator.endpoint,
                "CAMS_RETRY_MAX_SECONDS": "3",
            },
        )
    except BaseException:
        simulator.stop()  # a failed start must not leave the simulator running into the next tests
        raise

    def apply(name: str, number: str) -> None:
        kubectl.apply(
            yaml.safe_dump(
                {
                    "apiVersion": "camswebhook.io/v1alpha1",
                    "kind": "PhoneWebhook",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "custSpaceId": "rrsa",
                        "phoneNumber": number,
                        "upCallbackUrl": "https://r.example/up",
                    },
                }
            )
        )

    def keys(number: str) -> list[str | None]:
        return [c["accessKeyId"] for c in simulator.calls(number)]

    try:
        apply("first", "8613800002001")
        wait_for(lambda: _ready(kubectl, namespace, "first"), what="first Ready with RRSA")
        time.sleep(4.5)  # the first credentials have expired by now
        apply("second", "8613800002002")
        wait_for(lambda: _ready(kubectl, namespace, "second"), what="second Ready after a refresh")
        first_key, second_key = keys("8613800002001"), keys("8613800002002")
        assert len(first_key) == len(second_key) == 1
        assert str(first_key[0]).startswith("STS.")
        assert str(second_key[0]).startswith("STS.")
        assert first_key != second_key, "the expired credentials were replaced"
        exchanges = simulator.get("/_simulator/state")["calls"]
        assert exchanges.get("AssumeRoleWithOIDC/OK", 0) >= 2

        token.write_text("a-token-sts-refuses")  # e.g. the role's trust policy no longer matches
        time.sleep(5)  # the credentials held (4 s) have expired: a refresh is needed, and refused
        apply("third", "8613800002003")

        def refused() -> dict[str, Any] | None:
            obj: dict[str, Any] = kubectl.json("get", "phonewebhook", "third", "-n", namespace)
            stalled = [
                c
                for c in obj.get("status", {}).get("conditions", [])
                if c["type"] == "Stalled" and c["status"] == "True" and c["reason"] == "RRSAFailed"
            ]
            return obj if stalled else None

        obj = wait_for(refused, what="the refused token to show in status")
        assert "AuthenticationFail.OIDCToken.Invalid" in obj["status"]["conditions"][0]["message"]
        token.write_text(OIDC_TOKEN)  # fixed outside Kubernetes: the operator looks again by itself
        wait_for(
            lambda: _ready(kubectl, namespace, "third"), timeout=30, what="third Ready once the token is good"
        )
        events = kubectl.json("get", "events", "-n", namespace)
        shown = json.dumps(obj) + json.dumps(events)
        operator.scrape()
    finally:
        operator.stop()
        simulator.stop()
    log = operator.output()
    for value in (OIDC_TOKEN, "a-token-sts-refuses"):
        assert value not in log
        assert value not in shown
