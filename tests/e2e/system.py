"""The system most end-to-end scenarios run on: the operator as users run it (its console script, at DEBUG)
watching the test's namespace, the simulator with three accounts (one that works, one of STS credentials,
one that may do nothing), and what a scenario asks of them. The `system` fixture (conftest.py) starts it
and, whatever the scenario did, scans the log for every secret below."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Kubectl, OperatorProcess, SimulatorProcess, simulator_in, start_operator, wait_for
from .manifests import condition, phone_webhook, secret

OPERATOR_SECRET = "e2e-operator-secret-Zq81"
STS_SECRET = "e2e-sts-secret-Pw42"
STS_TOKEN = "e2e-sts-token-Lm07"
DENIED_SECRET = "e2e-denied-secret-Kd55"
URL_TOKEN = "e2e-url-token-Rv63"  # in callback URLs held by Secrets
SPACE = "space-e2e"
OPERATOR_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-e2e",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": OPERATOR_SECRET,
    # Shorter than the defaults (60 s, 300 s) so that the scenarios wait seconds, not minutes.
    "CAMS_SECRET_REFRESH_SECONDS": "3",
    "CAMS_CLAIM_GRACE_SECONDS": "8",
    "CAMS_MIN_DRIFT_INTERVAL_SECONDS": "1",
}
SIMULATOR_CONFIG = {
    "qps": 10,
    "accounts": [
        {
            "accessKeyId": "LTAI-e2e",
            "accessKeySecret": OPERATOR_SECRET,
            "uid": "1",
            "spaces": [{"id": SPACE}],
        },
        {
            "accessKeyId": "STS.e2e",
            "accessKeySecret": STS_SECRET,
            "securityToken": STS_TOKEN,
            "uid": "2",
            "spaces": [{"id": "space-sts"}],
        },
        {
            "accessKeyId": "LTAI-denied",
            "accessKeySecret": DENIED_SECRET,
            "uid": "3",
            "permitted": False,
            "spaces": [{"id": "space-denied"}],
        },
    ],
}
# Read every two seconds: scenarios about reads (drift, health) wait seconds for one.
FAST_DRIFT = {"camswebhook.io/drift-check-interval": "2s"}


@dataclass
class System:
    kubectl: Kubectl
    namespace: str
    simulator: SimulatorProcess
    operator: OperatorProcess
    tmp: Path

    def start_operator(
        self, *namespaces: str, extra_env: dict[str, str] | None = None, log: str = "operator.log"
    ) -> OperatorProcess:
        """Another operator process watching `namespaces` (default: the test's own)."""
        return start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=self.simulator.endpoint,
            namespace=list(namespaces or [self.namespace]),
            log=self.tmp / log,
            extra_env=extra_env or OPERATOR_ENV,
            verbose=True,
        )

    def restart_operator(self, *namespaces: str, extra_env: dict[str, str] | None = None) -> None:
        """Restart the operator, watching `namespaces` (default: the test's own)."""
        self.operator.stop()
        self.operator = self.start_operator(*namespaces, extra_env=extra_env)

    def apply(
        self, name: str, namespace: str | None = None, annotations: dict[str, str] | None = None, **spec: Any
    ) -> None:
        """Apply the PhoneWebhook `name` (in the account's space unless `spec` says another)."""
        body = phone_webhook(
            name, namespace or self.namespace, annotations=annotations, **{"custSpaceId": SPACE, **spec}
        )
        self.kubectl.apply(json.dumps(body))

    def apply_secret(self, name: str, **data: str) -> None:
        self.kubectl.apply(json.dumps(secret(name, self.namespace, **data)))

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.json(
            "get", "phonewebhook", name, "-n", namespace or self.namespace
        )
        return obj

    def exists(self, name: str, namespace: str | None = None) -> bool:
        return self.kubectl.exists("phonewebhook", name, namespace or self.namespace)

    def delete(self, name: str, *flags: str) -> None:
        self.kubectl.run("delete", "phonewebhook", name, "-n", self.namespace, *flags)

    def condition(self, name: str, kind: str, namespace: str | None = None) -> dict[str, Any] | None:
        return condition(self.get(name, namespace), kind)

    def wait_condition(
        self,
        name: str,
        kind: str,
        reason: str | None = None,
        timeout: float = 30,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        def holds() -> dict[str, Any] | None:
            found = self.condition(name, kind, namespace)
            if found and found["status"] == "True" and (reason is None or found["reason"] == reason):
                return found
            return None

        return wait_for(holds, timeout=timeout, what=f"{kind}={reason or 'True'} on {name}")

    def wait_generation(self, name: str, generation: int, namespace: str | None = None) -> None:
        """Until the operator has decided `generation` of the object."""
        wait_for(
            lambda: self.get(name, namespace)["status"].get("observedGeneration") == generation,
            what=f"generation {generation} of {name} observed",
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.kubectl.events(self.namespace, name)

    def event_reasons(self, name: str) -> set[str]:
        return {event["reason"] for event in self.events(name)}

    def held(self, number: str) -> dict[str, str]:
        """What CAMS holds for `number` in the account's space; fails if it holds nothing."""
        webhook = self.simulator.webhook(SPACE, number)
        assert webhook is not None, f"CAMS holds no webhook for {number}"
        return webhook


def running_system(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[System]:
    """The `system` fixture's body: started, yielded, stopped; then its log scanned for secrets."""
    simulator = simulator_in(tmp_path, SIMULATOR_CONFIG)
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env=OPERATOR_ENV,
            verbose=True,  # DEBUG: every watch event and API call is logged, and none may show a secret
        )
    except BaseException:
        simulator.stop()
        raise
    running = System(kubectl, namespace, simulator, operator, tmp_path)
    try:
        yield running
        # Whatever the scenario left behind, /metrics is still served (an InSync condition once broke it).
        running.operator.scrape()
    finally:
        running.operator.stop()
        simulator.stop()
    _assert_no_secret_logged(running.operator.output())


def _assert_no_secret_logged(log: str) -> None:
    """No secret, token or signature in the log, plain or as a Secret's data carries it (base64), even at
    DEBUG."""
    assert "DEBUG" in log, "the scan is meaningful only at the most verbose level"
    for value in (OPERATOR_SECRET, STS_SECRET, STS_TOKEN, DENIED_SECRET, URL_TOKEN):
        assert value not in log
        assert base64.b64encode(value.encode()).decode() not in log
    assert "Signature=" not in log
