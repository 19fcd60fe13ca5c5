"""The objects the end-to-end scenarios apply and the status they read back, written once: a scenario
says what differs (a name, a number, an annotation), not the shape of a PhoneWebhook."""

from __future__ import annotations

from typing import Any

API_VERSION = "camswebhook.io/v1alpha1"


def phone_webhook(
    name: str, namespace: str, *, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "PhoneWebhook", "metadata": metadata, "spec": spec}


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def key_secret(name: str, namespace: str, key_id: str, key_secret: str) -> dict[str, Any]:
    """A Secret holding an AccessKey, in the keys an account's or an object's secretRef reads."""
    return secret(name, namespace, accessKeyId=key_id, accessKeySecret=key_secret)


def cams_account(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CamsAccount",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def cluster_account(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ClusterCamsAccount", "metadata": {"name": name}, "spec": spec}


def one_account(key_id: str, key_secret: str, space: str, **config: Any) -> dict[str, Any]:
    """A simulator that knows one Alibaba account (uid 1) with one key and one space; `config` adds the
    rest (qps, faults)."""
    account = {"accessKeyId": key_id, "accessKeySecret": key_secret, "uid": "1", "spaces": [{"id": space}]}
    return {"accounts": [account], **config}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The object's condition of type `kind`, None before any is written."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def is_ready(obj: dict[str, Any], generation: int | None = None) -> bool:
    """Ready=True, for `generation` when one is given."""
    ready = condition(obj, "Ready")
    if ready is None or ready["status"] != "True":
        return False
    return generation is None or obj["status"].get("observedGeneration") == generation
