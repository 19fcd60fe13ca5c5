"""RRSA end to end: the operator gets temporary credentials from STS with the projected token, uses them
with their security token, refreshes them across expiry, and a refused token shows in status."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .harness import Kubectl, OperatorProcess, SimulatorProcess, simulator_in, start_operator, wait_for
from .manifests import condition, is_ready, phone_webhook

ROLE = "acs:ram::1000:role/cams-webhook-operator"
PROVIDER = "acs:ram::1000:oidc-provider/ack-rrsa-test"
OIDC_TOKEN = "eyJ-projected-token-for-tests-Qx81"
SIMULATOR_CONFIG = {
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
}


@dataclass
class Rrsa:
    """The operator on RRSA: its projected token file, and the simulator as STS and CAMS."""

    kubectl: Kubectl
    namespace: str
    token: Path
    simulator: SimulatorProcess

    def apply(self, name: str, number: str) -> None:
        body = phone_webhook(
            name, self.namespace, custSpaceId="rrsa", phoneNumber=number, upCallbackUrl="https://r.example/up"
        )
        self.kubectl.apply(yaml.safe_dump(body))

    def ready(self, name: str) -> bool:
        return is_ready(self.kubectl.json("get", "phonewebhook", name, "-n", self.namespace))

    def keys(self, number: str) -> list[str | None]:
        """The AccessKey IDs that `number`'s calls were signed with."""
        return [c["accessKeyId"] for c in self.simulator.calls(number)]


def _operator_on_rrsa(rrsa: Rrsa, tmp_path: Path) -> OperatorProcess:
    return start_operator(
        kubeconfig=rrsa.kubectl.kubeconfig,
        endpoint=rrsa.simulator.endpoint,
        namespace=rrsa.namespace,
        log=tmp_path / "operator.log",
        extra_env={
            "ALIBABA_CLOUD_ROLE_ARN": ROLE,
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(rrsa.token),
            "ALIBABA_CLOUD_STS_ENDPOINT": rrsa.simulator.endpoint,
            "CAMS_RETRY_MAX_SECONDS": "3",
        },
    )


def test_rrsa_credentials_are_used_refreshed_and_refusals_shown(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(OIDC_TOKEN)
    simulator = simulator_in(tmp_path, SIMULATOR_CONFIG)
    rrsa = Rrsa(kubectl, namespace, token, simulator)
    operator = None
    try:
        operator = _operator_on_rrsa(rrsa, tmp_path)
        _expired_credentials_are_replaced(rrsa)
        shown = _a_refused_token_shows_in_status_until_it_is_good(rrsa)
        operator.scrape()
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()
    log = operator.output()
    for value in (OIDC_TOKEN, "a-token-sts-refuses"):
        assert value not in log
        assert value not in shown


def _expired_credentials_are_replaced(rrsa: Rrsa) -> None:
    """Two objects, the second after the first credentials expired: each applied with STS credentials of
    its own."""
    rrsa.apply("first", "8613800002001")
    wait_for(lambda: rrsa.ready("first"), what="first Ready with RRSA")
    time.sleep(4.5)  # the first credentials have expired by now
    rrsa.apply("second", "8613800002002")
    wait_for(lambda: rrsa.ready("second"), what="second Ready after a refresh")
    first_key, second_key = rrsa.keys("8613800002001"), rrsa.keys("8613800002002")
    assert len(first_key) == len(second_key) == 1
    assert str(first_key[0]).startswith("STS.")
    assert str(second_key[0]).startswith("STS.")
    assert first_key != second_key, "the expired credentials were replaced"
    exchanges = rrsa.simulator.get("/_simulator/state")["calls"]
    assert exchanges.get("AssumeRoleWithOIDC/OK", 0) >= 2


def _a_refused_token_shows_in_status_until_it_is_good(rrsa: Rrsa) -> str:
    """The role's trust policy no longer matches the token: the next object stalls with STS's code; the
    token fixed outside Kubernetes, the operator looks again by itself. Returns what status and Events
    showed."""
    rrsa.token.write_text("a-token-sts-refuses")
    time.sleep(5)  # the credentials held (4 s) have expired: a refresh is needed, and refused
    rrsa.apply("third", "8613800002003")

    def refused() -> dict[str, Any] | None:
        obj: dict[str, Any] = rrsa.kubectl.json("get", "phonewebhook", "third", "-n", rrsa.namespace)
        stalled = condition(obj, "Stalled")
        return obj if stalled and stalled["status"] == "True" and stalled["reason"] == "RRSAFailed" else None

    obj = wait_for(refused, what="the refused token to show in status")
    assert "AuthenticationFail.OIDCToken.Invalid" in obj["status"]["conditions"][0]["message"]
    rrsa.token.write_text(OIDC_TOKEN)
    wait_for(lambda: rrsa.ready("third"), timeout=30, what="third Ready once the token is good")
    return json.dumps(obj) + json.dumps(rrsa.kubectl.json("get", "events", "-n", rrsa.namespace))
