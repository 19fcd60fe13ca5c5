"""An upgrade from the previous release (docs/releases.md) to the working tree, as docs/upgrading.md tells a
chart user, on a control plane of its own (the rest of the tier starts with this version's CRDs):

the previous release's chart installed (its CRD with it) and its operator, built from its commit the way its
image is built, managing objects of every kind it supports; then the CRD step and the account pasted from
docs/upgrading.md, `helm upgrade` to this chart with the same values file, and this operator. Every object
is Ready again with no UpdatePhoneWebhook call, keeps its finalizer and gets its claim; kstatus and both
versions of the Argo CD health check, sampled through the switch, never say Failed or Degraded. A URL with
a password, which only the previous release accepted, is kept and applied with a Warning."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd import argocd_health
from tests.releases import Release, current_version, file_at, installed, previous_release

from .harness import (
    BIN,
    REPO,
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    control_plane,
    kstatus,
    simulator_in,
    start_operator,
    wait_for,
)
from .helm_cli import Helm
from .manifests import condition, is_ready

UPGRADING = REPO / "docs" / "upgrading.md"
TEAM = "team-a"
HOME = "cams-system"  # the operator's namespace: the chart's release, claims and the leader's Lease
OPERATOR_KEY = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "op-key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "op-secret"}
ACCOUNTS = [
    {"accessKeyId": "op-key", "accessKeySecret": "op-secret", "uid": "1", "spaces": [{"id": "platform"}]},
    {"accessKeyId": "team-key", "accessKeySecret": "team-secret", "uid": "2", "spaces": [{"id": "team"}]},
]
OBSERVED_STATUS_URL = "https://legacy.example/status"
OBSERVED_UP_URL = "https://legacy.example/up?token=old-console-token"
# name -> (space, number, extra spec, annotations): every kind the previous release supports.
OBJECTS: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    "implicit": ("platform", "8613800007001", {}, {}),
    "from-secret": ("team", "8613800007002", {"credentialsSecretRef": {"name": "team-creds"}}, {}),
    "clear": (
        "team",
        "8613800007003",
        {"credentialsSecretRef": {"name": "team-creds"}, "deletionPolicy": "Clear"},
        {},
    ),
    "observer": (
        "platform",
        "8613800007004",
        {
            "managementMode": "Observe",
            "statusCallbackUrl": OBSERVED_STATUS_URL,
            "upCallbackUrl": OBSERVED_UP_URL,
        },
        {},
    ),
    "paused": ("platform", "8613800007005", {}, {"camswebhook.io/paused": "true"}),
    "account-ref": ("team", "8613800007006", {"accountRef": {"kind": "CamsAccount", "name": "team"}}, {}),
    "url-from-secret": (
        "team",
        "8613800007007",
        {
            "credentialsSecretRef": {"name": "team-creds"},
            "upCallbackUrlFrom": {"secretKeyRef": {"name": "team-hooks", "key": "inbound"}},
        },
        {},
    ),
}
MANAGED = ("implicit", "from-secret", "clear", "account-ref", "url-from-secret")
UNHEALTHY = {"Failed", "Degraded"}


def _manifest(name: str) -> dict[str, Any]:
    space, number, extra, annotations = OBJECTS[name]
    spec = {"custSpaceId": space, "phoneNumber": number, "statusCallbackUrl": "https://hooks.example/status"}
    if "upCallbackUrlFrom" not in extra:
        spec["upCallbackUrl"] = f"https://hooks.example/{name}/up"
    return {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "PhoneWebhook",
        "metadata": {"name": name, "namespace": TEAM, "annotations": annotations},
        "spec": {**spec, "httpFlag": True, **extra},
    }


# What the objects need besides themselves: the team's Secrets and account, and the default account
# that objects naming no credentials use (as docs/upgrading.md told users of 0.1.0 to create it).
TEAM_OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "team-creds", "namespace": TEAM},
        "stringData": {"accessKeyId": "team-key", "accessKeySecret": "team-secret"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "team-hooks", "namespace": TEAM},
        "stringData": {"inbound": "https://hooks.example/in?token=upgrade-token-31"},
    },
    {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "CamsAccount",
        "metadata": {"name": "team", "namespace": TEAM},
        "spec": {"credentials": {"secretRef": {"name": "team-creds"}}, "spaces": ["team"]},
    },
]


def _block(marker: str) -> str:
    """The fenced block right after an HTML comment that names this test, holding `marker`."""
    blocks = re.findall(
        r"<!-- [^>]*test_upgrade\.py -->\s*```\w*\n(.*?)```", UPGRADING.read_text(), re.DOTALL
    )
    (block,) = [b for b in blocks if marker in b]
    return str(block)


@pytest.fixture(scope="module")
def previous() -> tuple[Release, Path]:
    release = previous_release()
    return release, installed(release)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with control_plane(tmp_path_factory.mktemp("upgrade-controlplane")) as kubectl:
        yield kubectl


class HealthSampler(threading.Thread):
    """kstatus and the Argo CD health check of two versions, read from the live objects until stopped."""

    def __init__(self, kubectl: Kubectl, lua_scripts: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.kubectl, self.lua_scripts = kubectl, lua_scripts
        self.samples: list[tuple[str, str, str]] = []  # (object, tool, verdict)
        self.rounds = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None  # a sampler that died must fail the test, not go quiet

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                for item in self.kubectl.json("get", "phonewebhooks", "-n", TEAM)["items"]:
                    name = item["metadata"]["name"]
                    self.samples.append((name, "kstatus", kstatus(self.kubectl, TEAM, name)))
                    for version, script in self.lua_scripts.items():
                        self.samples.append((name, f"argocd {version}", argocd_health(item, script)[0]))
                self.rounds += 1
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)
        assert self.error is None, f"the health sampler failed: {self.error!r}"


@dataclass
class Upgrade:
    """The cluster of the upgrade, the simulator, the release before this one and the values file the user
    keeps, with what the scenario asks of them."""

    kubectl: Kubectl
    helm: Helm
    simulator: SimulatorProcess
    release: Release
    home: Path  # the previous release, installed (tests/releases.py)
    values: Path
    logs: Path

    def operator(self, log: str, binary: Path = BIN / "cams-webhook-operator") -> OperatorProcess:
        return start_operator(
            kubeconfig=self.kubectl.kubeconfig,
            endpoint=self.simulator.endpoint,
            namespace=TEAM,
            log=self.logs / log,
            operator_namespace=HOME,
            binary=binary,
            extra_env={**OPERATOR_KEY, "CAMS_LEADER_ELECTION_NAMESPACE": HOME},
        )

    def objects(self) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.kubectl.phone_webhooks(TEAM)}

    def updates(self) -> int:
        return len(self.simulator.updates())

    def claimed(self) -> bool:
        return self.kubectl.claim_holders(HOME) == sorted(f"{TEAM}/{name}" for name in MANAGED)


def test_an_upgrade_keeps_every_object_ready_without_a_call(
    cluster: Kubectl, previous: tuple[Release, Path], helm_bin: Path, tmp_path: Path
) -> None:
    release, home = previous
    helm = Helm(helm_bin, cluster.kubeconfig, tmp_path / "helm")
    values = tmp_path / "my-values.yaml"
    values.write_text(
        yaml.safe_dump({"image": {"repository": "registry.example.com/cams"}, "watchNamespaces": [TEAM]})
    )
    simulator = simulator_in(tmp_path, {"accounts": ACCOUNTS})
    upgrade = Upgrade(cluster, helm, simulator, release, home, values, tmp_path)
    sampler = HealthSampler(
        cluster,
        {
            release.version: file_at(release, "helm/cams-webhook-operator/files/argocd-health.lua"),
            current_version(): (REPO / "helm/cams-webhook-operator/files/argocd-health.lua").read_text(),
        },
    )
    old = new = None
    try:
        _install_the_previous_release(upgrade)
        old = upgrade.operator("previous-operator.log", home / "venv" / "bin" / "cams-webhook-operator")
        before = _the_previous_release_settles(upgrade)
        sampler.start()
        wait_for(lambda: sampler.rounds >= 2, timeout=60, what="health samples under the previous release")
        rounds_before_switch = sampler.rounds
        old.stop()
        new = _upgrade_as_documented(upgrade)
        time.sleep(3)  # anything the new operator would still do, it does now
        sampler.stop()
        assert sampler.rounds >= rounds_before_switch + 3, "sampled through the switch, not only before it"
        _nothing_moved(upgrade, before)
        _health_never_failed(sampler, release)
        _the_finalizer_still_clears(upgrade)
    finally:
        sampler.halt.set()
        for operator in (old, new):
            if operator is not None:
                operator.stop()
        simulator.stop()


def _install_the_previous_release(upgrade: Upgrade) -> None:
    """The previous release's chart, as a user installed it (its crds/ with it), and objects of every kind
    it supports. No kubelet runs its pod: the previous operator runs as a process, with the same settings."""
    kubectl = upgrade.kubectl
    kubectl.run("create", "namespace", TEAM)
    chart = upgrade.home / "src" / "helm" / "cams-webhook-operator"
    upgrade.helm(
        "install",
        "cams-webhook-operator",
        str(chart),
        "-n",
        HOME,
        "--create-namespace",
        "-f",
        str(upgrade.values),
    )
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/phonewebhooks.camswebhook.io")
    upgrade.simulator.set_webhook(  # what the observed number holds, set in the console long ago
        "platform",
        OBJECTS["observer"][1],
        StatusCallbackUrl=OBSERVED_STATUS_URL,
        UpCallbackUrl=OBSERVED_UP_URL,
    )
    kubectl.apply(yaml.safe_dump_all(TEAM_OBJECTS))
    kubectl.apply(_block("kind: ClusterCamsAccount"))
    kubectl.apply(yaml.safe_dump_all([_manifest(name) for name in OBJECTS]))


def _the_previous_release_settles(upgrade: Upgrade) -> dict[str, dict[str, Any]]:
    """Every object applied once or observed; returns their status before the upgrade."""

    def settled() -> dict[str, dict[str, Any]] | None:
        found = upgrade.objects()
        return found if all(is_ready(found[n]) for n in (*MANAGED, "observer")) else None

    objects = wait_for(settled, timeout=60, what=f"{upgrade.release.version} to apply and observe")
    assert upgrade.updates() == len(MANAGED), "the previous release applied each managed object once"
    assert objects["clear"]["metadata"]["finalizers"] == ["camswebhook.io/clear-webhook"]
    return {name: obj["status"] for name, obj in objects.items()}


def _upgrade_as_documented(upgrade: Upgrade) -> OperatorProcess:
    """docs/upgrading.md, in its order: the CRDs, what the release notes ask (nothing for this release),
    then the chart and the operator; returns the operator, once it holds every claim and has re-checked
    the observer."""
    kubectl = upgrade.kubectl
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block("--force-conflicts")],
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)},
        check=True,
        timeout=120,
    )
    kubectl.run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/clustercamsaccounts.camswebhook.io"
    )
    # The chart step as pasted, with the values file this install was made with as the reader's.
    upgrade.helm.shell(_block("helm upgrade").replace("my-values.yaml", str(upgrade.values)))
    deployment = kubectl.json("get", "deployment", "cams-webhook-operator", "-n", HOME)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/cams:{current_version()}"
    new = upgrade.operator("operator.log")
    wait_for(upgrade.claimed, timeout=60, what="a claim per managed number")

    def redacted() -> bool:  # the observer re-checked: its status.live rewritten by this version
        return "upCallbackUrlMatches" in (upgrade.objects()["observer"]["status"].get("live") or {})

    wait_for(redacted, timeout=60, what="the observer re-checked by this version")
    return new


def _nothing_moved(upgrade: Upgrade, before: dict[str, dict[str, Any]]) -> None:
    """No call, every object Ready with the fingerprint it had, the finalizer kept, the observer's URL
    redacted as this version shows it, the paused object as it was."""
    after = upgrade.objects()
    assert upgrade.updates() == len(MANAGED), "no UpdatePhoneWebhook call through the upgrade"
    for name in (*MANAGED, "observer"):
        assert is_ready(after[name]), (name, after[name]["status"])
        fingerprint = after[name]["status"].get("appliedFingerprint")
        assert fingerprint == before[name].get("appliedFingerprint"), name
    assert after["clear"]["metadata"]["finalizers"] == ["camswebhook.io/clear-webhook"]
    assert after["observer"]["status"]["live"]["upCallbackUrl"] == "https://legacy.example/redacted?redacted"
    # Paused before it was ever applied: this version says so as InProgress (Reconciling), still no call.
    ready, reconciling = (condition(after["paused"], kind) or {} for kind in ("Ready", "Reconciling"))
    assert (ready.get("status"), ready.get("reason")) == ("False", "Paused")
    assert (reconciling.get("status"), reconciling.get("reason")) == ("True", "Paused")


def _health_never_failed(sampler: HealthSampler, release: Release) -> None:
    unhealthy = [s for s in sampler.samples if s[2] in UNHEALTHY]
    assert not unhealthy, unhealthy
    tools = {tool for _, tool, _ in sampler.samples}
    assert tools == {"kstatus", f"argocd {release.version}", f"argocd {current_version()}"}
    print(f"health sampled {sampler.rounds} times through the switch: {sorted(set(sampler.samples))}")


def _the_finalizer_still_clears(upgrade: Upgrade) -> None:
    """Deleting the Clear object clears CAMS, once, read back once; the claims 0.2.0 took are kept as they
    are (none swept, none proven again by a read)."""
    upgrade.kubectl.run("delete", "phonewebhook", "clear", "-n", TEAM, "--wait=false")
    wait_for(lambda: "clear" not in upgrade.objects(), timeout=60, what="the Clear object to go")
    cleared = upgrade.simulator.webhook("team", OBJECTS["clear"][1]) or {}
    assert (cleared.get("StatusCallbackUrl"), cleared.get("UpCallbackUrl")) == ("", "")
    assert upgrade.updates() == len(MANAGED) + 1
    wait_for(upgrade.claimed, timeout=5, what="the claims after the upgrade")
    reads = upgrade.simulator.reads()
    assert {c["params"]["CustSpaceId"] for c in reads} <= {"platform", "team"}
    # The team's space is read once, after the clear (its read-back): no claim was proven again.
    clear_call = upgrade.simulator.updates()[-1]
    assert [c["at"] >= clear_call["at"] for c in reads if c["params"]["CustSpaceId"] == "team"] == [True]
