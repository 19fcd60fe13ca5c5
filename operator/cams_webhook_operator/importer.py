"""`cams-webhook-operator import`: PhoneWebhook manifests, in Observe mode, from what a CAMS space holds.

Pure: the CLI reads the space and prints what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from cams_webhook_operator.api.models import API_VERSION, KIND
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.tenancy.callback_urls import carries_token

HEADER = """\
# Imported from CAMS space {space} by `cams-webhook-operator import`, in Observe mode: applying these makes
# no change in CAMS; each object reports whether CAMS still matches it (condition InSync). Set
# managementMode: Manage on an object to let the operator apply it (one UpdatePhoneWebhook call).
# The read API returns no HttpFlag or QueueFlag, so they are left unset: CAMS keeps its current values
# until you set them here.
"""
SECRETS_NOTE = """\
# URLs that carry a query string or user-info (tokens, usually) are in Secrets, not in the PhoneWebhooks:
# seal or encrypt those Secrets (kubeseal, sops ...) before they go to Git.
"""


def manifests(
    *,
    space: str,
    namespace: str | None,
    numbers: Mapping[str, LiveNumber],
    credentials_secret: str | None = None,
    account: tuple[str, str] | None = None,
    urls_to_secrets: bool = False,
) -> list[dict[str, Any]]:
    """`account`: (kind, name) to write into spec.accountRef. `urls_to_secrets`: a URL that carries a
    query string or user-info goes into a Secret (printed before its object) that the spec names."""
    out = []
    for number in sorted(numbers):
        live = numbers[number]
        spec: dict[str, Any] = {"custSpaceId": space, "phoneNumber": number, "managementMode": "Observe"}
        metadata: dict[str, Any] = {"name": f"pwh-{number}"}
        if namespace:
            metadata["namespace"] = namespace
        secret_name = f"pwh-{number}-callback-urls"
        in_secret: dict[str, str] = {}
        for field, url in (
            ("statusCallbackUrl", live.status_callback_url),
            ("upCallbackUrl", live.up_callback_url),
        ):
            if not url:
                continue
            if urls_to_secrets and carries_token(url):
                in_secret[field] = url
                spec[f"{field}From"] = {"secretKeyRef": {"name": secret_name, "key": field}}
            else:
                spec[field] = url
        if in_secret:
            secret_meta = {**metadata, "name": secret_name}
            out.append(
                {"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta, "stringData": in_secret}
            )
        if credentials_secret:
            spec["credentialsSecretRef"] = {"name": credentials_secret}
        if account:
            spec["accountRef"] = {"kind": account[0], "name": account[1]}
        out.append({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec})
    return out


def render(*, space: str, objects: list[dict[str, Any]]) -> str:
    note = SECRETS_NOTE if any(o["kind"] == "Secret" for o in objects) else ""
    return HEADER.format(space=space) + note + yaml.safe_dump_all(objects, sort_keys=False)
