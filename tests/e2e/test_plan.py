"""`cams-webhook-operator plan --cluster` on the real API server and the simulator: fifty manifests (in
sync, changed, new, refused by tenancy, conflicting, invalid) get exactly their classes, the plan makes
reads only (one QueryChatappPhoneNumbers for the one space), and the operator, applying the same directory
afterwards, makes exactly the calls the plan announced; `kubectl cams status` sums it up."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .docs import block
from .harness import BIN, wait_for
from .manifests import cams_account, is_ready, key_secret, phone_webhook
from .system import OPERATOR_ENV, OPERATOR_SECRET, SPACE, System


def _number(i: int) -> str:
    return f"86139{i:08d}"


def _manifests(namespace: str) -> dict[str, dict[str, Any]]:
    """Name -> manifest, by class: numbers 0-19 exist (10 unchanged, 10 with a new URL), 20-34 are new,
    the tenancy class names an account that may not act on the space, the conflicting one names a number
    an object of the first class manages, the invalid one a phone number the API server refuses."""
    url = "https://hooks.example.com/plan/status"
    made: dict[str, dict[str, Any]] = {}
    for i in range(35):
        kind = "sync" if i < 10 else "changed" if i < 20 else "new"
        made[f"{kind}-{i}"] = phone_webhook(
            f"{kind}-{i}",
            namespace,
            custSpaceId=SPACE,
            phoneNumber=_number(i),
            statusCallbackUrl=url + ("-v2" if kind == "changed" else ""),
        )
    for i in range(5):
        made[f"tenancy-{i}"] = phone_webhook(
            f"tenancy-{i}",
            namespace,
            custSpaceId=SPACE,
            phoneNumber=_number(40 + i),
            statusCallbackUrl=url,
            accountRef={"kind": "CamsAccount", "name": "elsewhere"},
        )
        made[f"conflict-{i}"] = phone_webhook(
            f"conflict-{i}", namespace, custSpaceId=SPACE, phoneNumber=_number(i), statusCallbackUrl=url
        )
        made[f"invalid-{i}"] = phone_webhook(
            f"invalid-{i}", namespace, custSpaceId=SPACE, phoneNumber=f"+86 139-{i}", statusCallbackUrl=url
        )
    return made


def _plan_env(system: System) -> dict[str, str]:
    """The caller's environment: the cluster, the simulator as CAMS, the operator's key as the reader."""
    return {
        **os.environ,
        **OPERATOR_ENV,
        "KUBECONFIG": str(system.kubectl.kubeconfig),
        "CAMS_ENDPOINT": system.simulator.endpoint,
        "ALIBABA_CLOUD_STS_ENDPOINT": system.simulator.endpoint,
        "CAMS_ALLOW_HTTP": "true",
        "CAMS_OPERATOR_NAMESPACE": system.namespace,
    }


def _plan(system: System, directory: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [str(BIN / "kubectl-cams"), "plan", "--cluster", "-f", str(directory), "-o", "json"],
        env=_plan_env(system),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 2, 3), done.stderr
    assert OPERATOR_SECRET not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


EXPECTED = {
    "sync": "in sync",
    "changed": "would change",
    "new": "would change",
    "tenancy": "would be refused",
    "conflict": "would conflict",
    "invalid": "invalid",
}


def test_the_plan_says_what_the_operator_then_does(system: System, tmp_path: Path) -> None:
    made = _manifests(system.namespace)
    directory = _the_cluster_before_the_change(system, made, tmp_path)
    calls_before, reads_before = len(system.simulator.updates()), len(system.simulator.reads())

    code, planned = _plan(system, directory)

    verdicts = {o["name"]: o["plan"] for o in planned["objects"]}
    assert {name: verdicts[name] for name in made} == {name: EXPECTED[name.split("-")[0]] for name in made}
    assert code == 3, "refusals, conflicts and invalid manifests make the exit code 3"
    assert {o["reason"] for o in planned["objects"] if o["plan"] == "would be refused"} == {"SpaceNotAllowed"}
    assert len(system.simulator.updates()) == calls_before, "the plan made no UpdatePhoneWebhook call"
    assert len(system.simulator.reads()) - reads_before == 1 == planned["totals"]["reads"]
    announced = {o["phoneNumber"] for o in planned["objects"] if o["plan"] == "would change"}
    assert sum(planned["totals"]["calls"].values()) == len(announced) == 25
    _applied_as_a_gitops_tool_would(system, made)
    wait_for(lambda: len(system.simulator.updates()) - calls_before >= 25, timeout=30, what="25 calls")
    called = [c["params"]["PhoneNumber"] for c in system.simulator.updates()[calls_before:]]
    assert sorted(called) == sorted(announced), "exactly the calls the plan announced, each once"
    _status_sums_it_up(system)


def _the_cluster_before_the_change(system: System, made: dict[str, dict[str, Any]], tmp_path: Path) -> Path:
    """Objects 0-19 applied and Ready (10-19 with the URL before the change), the account that may not act
    on the space, and the directory of the change."""
    kubectl, namespace = system.kubectl, system.namespace
    kubectl.apply_objects(key_secret("key", namespace, "LTAI-e2e", OPERATOR_SECRET))
    elsewhere = {"credentials": {"secretRef": {"name": "key"}}, "spaces": ["space-other"]}
    kubectl.apply_objects(cams_account("elsewhere", namespace, **elsewhere))
    kubectl.apply_objects(*(made[f"sync-{i}"] for i in range(10)))
    old_url = "https://hooks.example.com/plan/status"
    kubectl.apply_objects(
        *(
            phone_webhook(
                f"changed-{i}",
                namespace,
                custSpaceId=SPACE,
                phoneNumber=_number(i),
                statusCallbackUrl=old_url,
            )
            for i in range(10, 20)
        )
    )
    wait_for(lambda: kubectl.all_ready(namespace, 20), timeout=60, what="the first 20 Ready")
    directory = tmp_path / "manifests"
    directory.mkdir()
    for name, body in made.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return directory


def _applied_as_a_gitops_tool_would(system: System, made: dict[str, dict[str, Any]]) -> None:
    """Every manifest applied (the API server refuses the invalid ones), until the operator settled."""
    kubectl, namespace = system.kubectl, system.namespace
    for name, body in made.items():
        applied = kubectl.apply(json.dumps(body), check=False)
        assert (applied.returncode != 0) == name.startswith("invalid"), applied.stderr

    def ready_count() -> int | None:
        items = kubectl.phone_webhooks(namespace)
        ready = sum(is_ready(item, item["metadata"]["generation"]) for item in items)
        return ready if ready == 35 else None

    wait_for(ready_count, timeout=60, what="the in-sync, changed and new objects Ready at their generation")


def _status_sums_it_up(system: System) -> None:
    out = subprocess.run(
        [str(BIN / "kubectl-cams"), "status", "-n", system.namespace],
        env={**os.environ, "KUBECONFIG": str(system.kubectl.kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(line for line in out.splitlines() if line.startswith(system.namespace))
    assert row.split()[1:3] == ["45", "35"], out
    assert "SpaceNotAllowed 5" in row, out
    assert "Conflict 5" in row, out


def test_the_plan_reads_kustomize_output_as_docs_gitops_pastes_it(system: System, tmp_path: Path) -> None:
    """docs/gitops.md's command, pasted in a repository whose deploy/cams is a kustomization."""
    deploy = tmp_path / "deploy" / "cams"
    deploy.mkdir(parents=True)
    body = phone_webhook(
        "kustomized", "", custSpaceId=SPACE, phoneNumber=_number(90), statusCallbackUrl="https://k.example/s"
    )
    del body["metadata"]["namespace"]
    (deploy / "line.yaml").write_text(yaml.safe_dump(body))
    kustomization = {"namespace": system.namespace, "resources": ["line.yaml"]}
    (deploy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    env = {**_plan_env(system), "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block("docs/gitops.md", "tests/e2e/test_plan.py", "kustomize")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr  # one change
    row = next(line for line in done.stdout.splitlines() if "kustomized" in line)
    assert row.split()[:4] == [system.namespace, "kustomized", _number(90), "would"], done.stdout
    assert "1 UpdatePhoneWebhook call(s)" in done.stdout
    assert not system.simulator.updates()
