"""`kubectl cams status`: the PhoneWebhooks of the cluster summed up per namespace and per account: objects by
REASON, numbers by health (WhatsApp's quality rating), and how many wait for a call. Read from the objects'
status (the operator's last word on each), with one listing."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

# The reasons of objects waiting for a call that will come by itself (retried, or held through an outage).
WAITING = {"Throttled", "TransientError", "CamsUnavailable", "UnrecognizedCode"}


def account_of(spec: Mapping[str, Any]) -> str:
    """The account an object names, as a person reads it: the default when it names none."""
    if ref := spec.get("accountRef"):
        return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    if secret := spec.get("credentialsSecretRef"):
        return f"Secret/{secret.get('name', '')}"
    return "(default account)"


def _ready(body: Mapping[str, Any]) -> tuple[str, str]:
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    return (ready.get("status", ""), ready.get("reason", "")) if ready else ("", "New")


def summary(objects: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """{"namespaces" | "accounts": {name: {"objects", "ready", "waiting", "reason:<R>", "quality:<Q>"}}}."""
    out: dict[str, dict[str, Counter[str]]] = {
        "namespaces": defaultdict(Counter),
        "accounts": defaultdict(Counter),
    }
    for body in objects:
        namespace = (body.get("metadata") or {}).get("namespace", "")
        spec = body.get("spec") or {}
        status, reason = _ready(body)
        quality = ((body.get("status") or {}).get("live") or {}).get("qualityRating") or "unread"
        for group, key in (("namespaces", namespace), ("accounts", account_of(spec))):
            counts = out[group][key]
            counts["objects"] += 1
            counts["ready"] += status == "True"
            counts["waiting"] += reason in WAITING or reason == "New"
            counts[f"reason:{reason}"] += 1
            counts[f"quality:{quality}"] += 1
    return {group: {k: dict(v) for k, v in sorted(rows.items())} for group, rows in out.items()}


def render(summed: Mapping[str, Mapping[str, Mapping[str, int]]]) -> str:
    lines: list[str] = []
    for group, title in (("namespaces", "NAMESPACE"), ("accounts", "ACCOUNT")):
        rows = summed[group]
        width = max([len(title), *(len(k) for k in rows)])
        lines.append(f"{title.ljust(width)}   OBJECTS   READY   WAITING   BY REASON; BY QUALITY")
        for key, counts in rows.items():
            reasons = ", ".join(f"{k[7:]} {n}" for k, n in sorted(counts.items()) if k.startswith("reason:"))
            qualities = ", ".join(
                f"{k[8:]} {n}" for k, n in sorted(counts.items()) if k.startswith("quality:")
            )
            numbers = f"{counts['objects']:>7}   {counts['ready']:>5}   {counts['waiting']:>7}"
            lines.append(f"{key.ljust(width)}   {numbers}   {reasons}; {qualities}")
        lines.append("")
    return "\n".join(lines)


async def _list(namespace: str | None) -> list[dict[str, Any]]:
    from cams_webhook_operator.api.models import PLURAL
    from cams_webhook_operator.kube import client as kube_client
    from cams_webhook_operator.planning.run import listed

    async with await kube_client.connect() as api:
        return await listed(api, PLURAL, namespace)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kubectl cams status", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (the default)")
    where.add_argument("-n", "--namespace", help="one namespace")
    args = parser.parse_args(argv)
    objects = asyncio.run(_list(args.namespace))
    print(render(summary(objects)), end="")
    return 0
