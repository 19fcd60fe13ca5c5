"""Adopting what exists: `import` prints Observe-mode objects from a space, the API server accepts them,
the operator observes without a single update, reports drift, and a switch to Manage applies once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .harness import (
    BIN,
    DEFAULT_ACCOUNT_NAME,
    Kubectl,
    simulator_in,
    start_operator,
    wait_for,
)

SECRET = "import-secret"
URL_TOKEN = "legacy-url-token-Hd24"  # the last number's inbound URL carries it
NUMBERS = ["8613800001111", "8613800002222", "8613800003333"]


def test_import_observe_then_manage(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    simulator = simulator_in(
        tmp_path,
        {
            "accounts": [
                {
                    "accessKeyId": "import-key",
                    "accessKeySecret": SECRET,
                    "uid": "1",
                    "spaces": [{"id": "legacy"}],
                }
            ]
        },
    )
    for i, number in enumerate(NUMBERS):  # configured in the console long ago
        simulator.post(
            "/_simulator/webhooks",
            {
                "CustSpaceId": "legacy",
                "PhoneNumber": number,
                "StatusCallbackUrl": f"https://legacy.example/{i}/status",
                "UpCallbackUrl": f"https://legacy.example/{i}/inbound"
                + (f"?token={URL_TOKEN}" if i == len(NUMBERS) - 1 else ""),
            },
        )
    env = {
        "CAMS_ENDPOINT": simulator.endpoint,
        "CAMS_ALLOW_HTTP": "true",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "import-key",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
    }

    def run_import(*account: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(BIN / "cams-webhook-operator"),
                "import",
                "--space",
                "legacy",
                "--namespace",
                namespace,
                "--urls-to-secrets",
                *account,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env, "KUBECONFIG": str(kubectl.kubeconfig)},
        )

    # The account rules hold for import too: it refuses to print objects the operator would refuse.
    missing = run_import("--account", "CamsAccount/nope")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert "CamsAccount nope (or namespace" in missing.stderr
    kubectl.apply(
        f"""
apiVersion: camswebhook.io/v1alpha1
kind: CamsAccount
metadata: {{name: elsewhere, namespace: {namespace}}}
spec: {{credentials: {{secretRef: {{name: k}}}}, spaces: [other-space]}}
"""
    )
    foreign = run_import("--account", "CamsAccount/elsewhere")
    assert foreign.returncode == 1
    assert "may act only on the spaces other-space, not on legacy" in foreign.stderr
    imported = run_import("--account", f"ClusterCamsAccount/{DEFAULT_ACCOUNT_NAME}")
    assert imported.returncode == 0, imported.stderr
    documents = [doc for doc in yaml.safe_load_all(imported.stdout) if doc]
    # Every URL here has a path, which may be a token (Slack's are): all of them go into Secrets.
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
    assert kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=imported.stdout).returncode == 0
    kubectl.apply(imported.stdout)

    operator = start_operator(
        kubeconfig=kubectl.kubeconfig,
        endpoint=simulator.endpoint,
        namespace=namespace,
        log=tmp_path / "operator.log",
        extra_env={**env, "CAMS_DRIFT_INTERVAL_SECONDS": "2"},
    )

    def condition(name: str, kind: str) -> dict[str, Any]:
        obj = kubectl.json("get", "phonewebhook", name, "-n", namespace)
        return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})

    def held_url(number: str) -> str:
        return str((simulator.webhook("legacy", number) or {}).get("StatusCallbackUrl"))

    try:
        for number in NUMBERS:
            wait_for(
                lambda n=number: condition(f"pwh-{n}", "Ready").get("reason") == "Observed",  # type: ignore[misc]
                what=f"pwh-{number} observed",
            )
            assert condition(f"pwh-{number}", "InSync")["status"] == "True"
        # Observed objects in sync are counted in /metrics (this once made every scrape fail).
        assert 'cams_webhook_operator_objects{condition="InSync"} 3.0' in operator.scrape()
        live = kubectl.json("get", "phonewebhook", f"pwh-{NUMBERS[0]}", "-n", namespace)["status"]["live"]
        assert live["statusCallbackUrl"] == "https://legacy.example/redacted"
        # The URL from the Secret matches what CAMS holds, and status shows it without its token.
        live = kubectl.json("get", "phonewebhook", f"pwh-{NUMBERS[2]}", "-n", namespace)["status"]["live"]
        assert live["upCallbackUrl"] == "https://legacy.example/redacted?redacted"
        assert live["upCallbackUrlMatches"] is True
        assert (live["numberStatus"], live["qualityRating"]) == ("CONNECTED", "GREEN")
        # The imported objects show the numbers' health at once; import put none of it in the spec.
        for number in NUMBERS:
            assert condition(f"pwh-{number}", "NumberHealthy")["status"] == "True"
        spec = kubectl.json("get", "phonewebhook", f"pwh-{NUMBERS[0]}", "-n", namespace)["spec"]
        assert not {"qualityRating", "numberStatus"} & set(spec)

        # Someone edits the console: the observer reports it and changes nothing.
        simulator.post(
            "/_simulator/webhooks",
            {
                "CustSpaceId": "legacy",
                "PhoneNumber": NUMBERS[1],
                "StatusCallbackUrl": "https://edited.example/status",
            },
        )
        wait_for(
            lambda: condition(f"pwh-{NUMBERS[1]}", "InSync").get("reason") == "Differs",
            what="the drift to be reported",
        )
        assert [len(simulator.calls(n)) for n in NUMBERS] == [0, 0, 0]
        assert held_url(NUMBERS[1]) == "https://edited.example/status"

        # Taking over one number: exactly one call, the spec wins.
        kubectl.run(
            "patch",
            "phonewebhook",
            f"pwh-{NUMBERS[1]}",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec":{"managementMode":"Manage"}}',
        )
        wait_for(lambda: condition(f"pwh-{NUMBERS[1]}", "Ready").get("reason") == "Applied", what="managed")
        assert [len(simulator.calls(n)) for n in NUMBERS] == [0, 1, 0]
        assert held_url(NUMBERS[1]) == "https://legacy.example/1/status"
    finally:
        operator.stop()
        simulator.stop()
