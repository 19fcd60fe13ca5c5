"""Adopting what exists: `import` prints Observe-mode objects from a space, the API server accepts them,
the operator observes without a single update, reports drift, and a switch to Manage applies once."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .harness import (
    BIN,
    DEFAULT_ACCOUNT_NAME,
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    simulator_in,
    start_operator,
    wait_for,
)
from .manifests import cams_account, condition, one_account

SECRET = "import-secret"
URL_TOKEN = "legacy-url-token-Hd24"  # the last number's inbound URL carries it
NUMBERS = ["8613800001111", "8613800002222", "8613800003333"]


@dataclass
class Legacy:
    """A space configured in the console long ago, the namespace to adopt it into, and the `import`
    command run as a user would, with the same environment as the operator."""

    kubectl: Kubectl
    namespace: str
    simulator: SimulatorProcess

    @property
    def env(self) -> dict[str, str]:
        return {
            "CAMS_ENDPOINT": self.simulator.endpoint,
            "CAMS_ALLOW_HTTP": "true",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "import-key",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        }

    def run_import(self, *account: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "cams-webhook-operator"), "import", "--space", "legacy", "--namespace", self.namespace,
             "--urls-to-secrets", *account],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env, "KUBECONFIG": str(self.kubectl.kubeconfig)},
        )  # fmt: skip

    def condition(self, number: str, kind: str) -> dict[str, Any]:
        return condition(self.get(number), kind) or {}

    def get(self, number: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.json("get", "phonewebhook", f"pwh-{number}", "-n", self.namespace)
        return obj

    def held_url(self, number: str) -> str:
        return str((self.simulator.webhook("legacy", number) or {}).get("StatusCallbackUrl"))


def test_import_observe_then_manage(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    simulator = simulator_in(tmp_path, one_account("import-key", SECRET, "legacy"))
    legacy = Legacy(kubectl, namespace, simulator)
    operator = None
    try:
        for i, number in enumerate(NUMBERS):  # configured in the console long ago
            token = f"?token={URL_TOKEN}" if i == len(NUMBERS) - 1 else ""
            simulator.set_webhook(
                "legacy",
                number,
                StatusCallbackUrl=f"https://legacy.example/{i}/status",
                UpCallbackUrl=f"https://legacy.example/{i}/inbound{token}",
            )
        _import_refuses_what_the_operator_would_refuse(legacy)
        imported = legacy.run_import("--account", f"ClusterCamsAccount/{DEFAULT_ACCOUNT_NAME}")
        assert imported.returncode == 0, imported.stderr
        _the_import_is_observe_objects_with_urls_in_secrets(imported.stdout)
        assert kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=imported.stdout).returncode == 0
        kubectl.apply(imported.stdout)
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={**legacy.env, "CAMS_DRIFT_INTERVAL_SECONDS": "2"},
        )
        _observed_in_sync_with_health_and_redacted_urls(legacy, operator)
        _a_console_edit_is_reported_then_a_switch_to_manage_applies_once(legacy)
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()


def _import_refuses_what_the_operator_would_refuse(legacy: Legacy) -> None:
    """The account rules hold for import too: a missing account, an account limited to other spaces."""
    missing = legacy.run_import("--account", "CamsAccount/nope")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert "CamsAccount nope (or namespace" in missing.stderr
    legacy.kubectl.apply_objects(
        cams_account(
            "elsewhere", legacy.namespace, credentials={"secretRef": {"name": "k"}}, spaces=["other-space"]
        )
    )
    foreign = legacy.run_import("--account", "CamsAccount/elsewhere")
    assert foreign.returncode == 1
    assert "may act only on the spaces other-space, not on legacy" in foreign.stderr


def _the_import_is_observe_objects_with_urls_in_secrets(printed: str) -> None:
    """Every URL here has a path, which may be a token (Slack's are): all of them go into Secrets; the
    objects observe, through the account given, and leave the flags the read API does not show unset."""
    documents = [doc for doc in yaml.safe_load_all(printed) if doc]
    secrets = [doc for doc in documents if doc["kind"] == "Secret"]
    assert len(secrets) == len(NUMBERS)
    secret = secrets[2]
    assert secret["stringData"]["upCallbackUrl"] == f"https://legacy.example/2/inbound?token={URL_TOKEN}"
    objects = [doc for doc in documents if doc["kind"] == "PhoneWebhook"]
    assert URL_TOKEN not in yaml.safe_dump_all(objects)
    assert "legacy.example" not in yaml.safe_dump_all(objects)
    assert objects[2]["spec"]["upCallbackUrlFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert [o["spec"]["phoneNumber"] for o in objects] == NUMBERS
    assert {o["spec"]["accountRef"]["name"] for o in objects} == {DEFAULT_ACCOUNT_NAME}
    assert {o["spec"]["managementMode"] for o in objects} == {"Observe"}
    assert "httpFlag" not in objects[0]["spec"], "the read API has no flags: left unset"


def _observed_in_sync_with_health_and_redacted_urls(legacy: Legacy, operator: OperatorProcess) -> None:
    for number in NUMBERS:
        wait_for(
            lambda n=number: legacy.condition(n, "Ready").get("reason") == "Observed",  # type: ignore[misc]
            what=f"pwh-{number} observed",
        )
        assert legacy.condition(number, "InSync")["status"] == "True"
    # Observed objects in sync are counted in /metrics (this once made every scrape fail).
    assert 'cams_webhook_operator_objects{condition="InSync"} 3.0' in operator.scrape()
    live = legacy.get(NUMBERS[0])["status"]["live"]
    assert live["statusCallbackUrl"] == "https://legacy.example/redacted"
    # The URL from the Secret matches what CAMS holds, and status shows it without its token.
    live = legacy.get(NUMBERS[2])["status"]["live"]
    assert live["upCallbackUrl"] == "https://legacy.example/redacted?redacted"
    assert live["upCallbackUrlMatches"] is True
    assert (live["numberStatus"], live["qualityRating"]) == ("CONNECTED", "GREEN")
    # The imported objects show the numbers' health at once; import put none of it in the spec.
    for number in NUMBERS:
        assert legacy.condition(number, "NumberHealthy")["status"] == "True"
    assert not {"qualityRating", "numberStatus"} & set(legacy.get(NUMBERS[0])["spec"])


def _a_console_edit_is_reported_then_a_switch_to_manage_applies_once(legacy: Legacy) -> None:
    """The observer reports the edit and changes nothing; taking over one number is exactly one call, and
    the spec wins."""
    legacy.simulator.set_webhook("legacy", NUMBERS[1], StatusCallbackUrl="https://edited.example/status")
    wait_for(
        lambda: legacy.condition(NUMBERS[1], "InSync").get("reason") == "Differs",
        what="the drift to be reported",
    )
    assert [len(legacy.simulator.calls(n)) for n in NUMBERS] == [0, 0, 0]
    assert legacy.held_url(NUMBERS[1]) == "https://edited.example/status"
    # What the switch to Manage would change, in the status before anyone switches (issue 33).
    planned = legacy.get(NUMBERS[1])["status"]["manageWouldChange"]
    assert planned == [
        {
            "specField": "statusCallbackUrl",
            "held": "https://edited.example/redacted",
            "wanted": "https://legacy.example/redacted",
        }
    ]
    legacy.kubectl.run(
        "patch", "phonewebhook", f"pwh-{NUMBERS[1]}", "-n", legacy.namespace, "--type=merge",
        "-p", '{"spec":{"managementMode":"Manage"}}',
    )  # fmt: skip
    wait_for(lambda: legacy.condition(NUMBERS[1], "Ready").get("reason") == "Applied", what="managed")
    assert [len(legacy.simulator.calls(n)) for n in NUMBERS] == [0, 1, 0]
    assert legacy.held_url(NUMBERS[1]) == "https://legacy.example/1/status"
