"""`cams-webhook-operator import`: PhoneWebhook manifests, in Observe mode, from what a CAMS space holds.

Pure: the CLI reads the space and prints what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from cams_webhook_operator.api.models import API_VERSION, KIND
from cams_webhook_operator.cams.messages import LiveNumber

HEADER = """\
# Imported from CAMS space {space} by `cams-webhook-operator import`, in Observe mode: applying these makes
# no change in CAMS; each object reports whether CAMS still matches it (condition InSync). Set
# managementMode: Manage on an object to let the operator apply it (one UpdatePhoneWebhook call).
# The read API returns no HttpFlag or QueueFlag, so they are left unset: CAMS keeps its current values
# until you set them here.
"""


def manifests(
    *,
    space: str,
    namespace: str | None,
    numbers: Mapping[str, LiveNumber],
    credentials_secret: str | None = None,
    account: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """`account`: (kind, name) to write into spec.accountRef."""
    out = []
    for number in sorted(numbers):
        live = numbers[number]
        spec: dict[str, Any] = {"custSpaceId": space, "phoneNumber": number, "managementMode": "Observe"}
        if live.status_callback_url:
            spec["statusCallbackUrl"] = live.status_callback_url
        if live.up_callback_url:
            spec["upCallbackUrl"] = live.up_callback_url
        if credentials_secret:
            spec["credentialsSecretRef"] = {"name": credentials_secret}
        if account:
            spec["accountRef"] = {"kind": account[0], "name": account[1]}
        metadata: dict[str, Any] = {"name": f"pwh-{number}"}
        if namespace:
            metadata["namespace"] = namespace
        out.append({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec})
    return out


def render(*, space: str, objects: list[dict[str, Any]]) -> str:
    return HEADER.format(space=space) + yaml.safe_dump_all(objects, sort_keys=False)
