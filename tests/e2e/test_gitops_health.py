"""GitOps health read from live objects by the real tools' logic: kstatus (Flux, Helm) through the Go
helper built from sigs.k8s.io/cli-utils, and the shipped Argo CD Lua check, on the same objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.argocd import argocd_health

from .harness import Kubectl, kstatus, simulator_in, start_operator, wait_for
from .manifests import condition, key_secret, phone_webhook

ACCOUNTS = [
    {
        "accessKeyId": "gitops-key",
        "accessKeySecret": "gitops-secret",
        "uid": "1",
        "spaces": [{"id": "gitops"}],
    },
    {"accessKeyId": "slow-key", "accessKeySecret": "slow-secret", "uid": "2", "spaces": [{"id": "slow"}]},
    {
        "accessKeyId": "denied-key",
        "accessKeySecret": "denied-secret",
        "uid": "3",
        "permitted": False,
        "spaces": [{"id": "denied"}],
    },
]


def _object(name: str, namespace: str, space: str, number: str, secret: str | None = None) -> dict[str, Any]:
    credentials = {"credentialsSecretRef": {"name": secret}} if secret else {}
    return phone_webhook(
        name,
        namespace,
        custSpaceId=space,
        phoneNumber=number,
        upCallbackUrl="https://g.example/up",
        **credentials,
    )


def test_kstatus_and_argocd_read_every_state_right(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply_objects(
        *(key_secret(key, namespace, f"{key}-key", f"{key}-secret") for key in ("slow", "denied"))
    )
    objects = [
        _object("ok", namespace, "gitops", "8613800003001"),
        _object("slow-1", namespace, "slow", "8613800003002", "slow"),
        _object("slow-2", namespace, "slow", "8613800003003", "slow"),
        _object("refused", namespace, "denied", "8613800003004", "denied"),
        phone_webhook(
            "paused-new",
            namespace,
            annotations={"camswebhook.io/paused": "true"},
            custSpaceId="gitops",
            phoneNumber="8613800003005",
            upCallbackUrl="https://g.example/up",
        ),
    ]
    kubectl.apply_objects(*objects)

    def health(name: str) -> tuple[str, str]:
        live = kubectl.json("get", "phonewebhook", name, "-n", namespace)
        return kstatus(kubectl, namespace, name), argocd_health(live)[0]

    # Right after creation, before any operator has seen them: never healthy.
    assert {health(o["metadata"]["name"]) for o in objects} == {("InProgress", "Progressing")}

    simulator = simulator_in(tmp_path, {"qps": 0.05, "accounts": ACCOUNTS})
    operator = None
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=simulator.endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "gitops-key",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "gitops-secret",
                "CAMS_ADAPTIVE": "false",
            },
        )
        _every_state_is_judged_right(kubectl, namespace, health)
        operator.scrape()  # /metrics still served with objects Ready, Stalled, throttled and paused
    finally:
        if operator is not None:
            operator.stop()
        simulator.stop()


def _every_state_is_judged_right(
    kubectl: Kubectl, namespace: str, health: Callable[[str], tuple[str, str]]
) -> None:
    """Applied: Current/Healthy; refused: Failed/Degraded; waiting for the quota: InProgress/Progressing;
    paused with CAMS holding its spec: Current, and Suspended in Argo CD."""
    wait_for(lambda: health("ok") == ("Current", "Healthy"), what="ok to be Current/Healthy")

    def paused_reason() -> str | None:
        paused = kubectl.json("get", "phonewebhook", "paused-new", "-n", namespace)
        return (condition(paused, "Ready") or {}).get("reason")

    wait_for(lambda: paused_reason() == "Paused", what="paused-new decided")
    # Paused before CAMS ever held it: not Current, so a GitOps wait does not pass on it.
    assert health("paused-new") == ("InProgress", "Progressing")
    wait_for(lambda: health("refused") == ("Failed", "Degraded"), what="refused to be Failed/Degraded")

    def slow_pair() -> list[tuple[str, str]] | None:
        pair = sorted([health("slow-1"), health("slow-2")])
        return pair if pair == [("Current", "Healthy"), ("InProgress", "Progressing")] else None

    wait_for(slow_pair, what="one slow object Current, the throttled one InProgress")
    reasons = {
        kubectl.json("get", "phonewebhook", n, "-n", namespace)["status"]["conditions"][1]["reason"]
        for n in ("slow-1", "slow-2")
    }
    assert "Throttled" in reasons

    kubectl.run("annotate", "pwh", "ok", "-n", namespace, "camswebhook.io/paused=true")
    wait_for(lambda: health("ok")[1] == "Suspended", what="paused to be Suspended in Argo CD")
    assert health("ok")[0] == "Current", "CAMS still holds its spec"
