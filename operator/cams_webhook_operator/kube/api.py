"""The Kubernetes API calls the controller makes: status patches, finalizers, claims, Secret reads,
Events, through the official client's asyncio API (kube/client.py). Leases (claims) go through the client's
generic custom-object calls, which take and give plain dicts: its Lease model would re-format the
timestamps we write (a MicroTime without a fraction is refused by the API server) and cost a model per
claim.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes.aio import client

from cams_webhook_operator.api.accounts import AccountStatus
from cams_webhook_operator.api.models import GROUP, KIND, PLURAL, VERSION
from cams_webhook_operator.api.refs import Claim, ObjectRef
from cams_webhook_operator.api.status_models import PhoneWebhookStatus
from cams_webhook_operator.kube.client import (
    REQUEST_TIMEOUT,
    ApiException,
    CoreGroup,
    answer,
    as_json,
    name,
    or_none,
    pages,
    refused,
)
from cams_webhook_operator.kube.events import EventSeries, Posted
from cams_webhook_operator.tenancy.claims import ClaimRecord, lease_name
from cams_webhook_operator.tenancy.credentials import SecretData

logger = logging.getLogger(__name__)
REPORTING_COMPONENT = "cams-webhook-operator"
LEASES = ("coordination.k8s.io", "v1")
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _decode(data: Mapping[str, bytes | str] | None) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for key, value in (data or {}).items():
        try:
            decoded[key] = base64.b64decode(value).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue  # a key that is not text cannot be a credential; the caller reports it missing
    return decoded


CLAIM_LABEL = f"{GROUP}/claim"
RELEASED_ANNOTATION = f"{GROUP}/released-at"
SPACE_ANNOTATION = f"{GROUP}/space"
NUMBER_ANNOTATION = f"{GROUP}/phone-number"


def event_name(object_name: str, suffix: str) -> str:
    """`<object>.<suffix>` as client-go names Events, cut so that it stays a valid name of at most 253
    characters even for the longest object names (a cut part must still end with a letter or digit)."""
    head = object_name[: 253 - len(suffix) - 1].rstrip("-.")
    return f"{head}.{suffix}"


def _claim_record(lease: Mapping[str, Any]) -> ClaimRecord:
    meta = lease.get("metadata") or {}
    released = (meta.get("annotations") or {}).get(RELEASED_ANNOTATION)
    return ClaimRecord(
        holder=(lease.get("spec") or {}).get("holderIdentity") or "",
        released_at=datetime.fromisoformat(released) if released else None,
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class KubeApi:
    def __init__(self, api: client.ApiClient, *, namespace: str = "default") -> None:
        """`namespace`: the operator's own, where claims are kept."""
        self._custom = client.CustomObjectsApi(api)
        self._core = CoreGroup(api)
        self._namespace = namespace
        self._events = EventSeries()

    async def read_claim(self, claim: Claim) -> ClaimRecord | None:
        lease = await or_none(
            self._custom.get_namespaced_custom_object(
                *LEASES, self._namespace, "leases", lease_name(claim), _request_timeout=REQUEST_TIMEOUT
            )
        )
        return None if lease is None else _claim_record(as_json(lease))

    async def list_claims(self) -> dict[Claim, ClaimRecord]:
        claims: dict[Claim, ClaimRecord] = {}
        async for page in pages(
            self._custom.list_namespaced_custom_object_without_preload_content,
            group=LEASES[0],
            version=LEASES[1],
            namespace=self._namespace,
            plural="leases",
            label_selector=f"{CLAIM_LABEL}=true",
            started_over=claims.clear,
        ):
            for lease in page.get("items") or []:
                meta = lease.get("metadata") or {}
                annotations = meta.get("annotations") or {}
                space, number = annotations.get(SPACE_ANNOTATION), annotations.get(NUMBER_ANNOTATION)
                if space and number and meta.get("name") == lease_name((space, number)):
                    claims[(sys.intern(space), number)] = _claim_record(lease)
        return claims

    async def write_claim(
        self, claim: Claim, *, holder: str, released_at: datetime | None, resource_version: str | None
    ) -> str | None:
        annotations = {SPACE_ANNOTATION: claim[0], NUMBER_ANNOTATION: claim[1]}
        if released_at is not None:
            annotations[RELEASED_ANNOTATION] = released_at.isoformat()
        metadata: dict[str, Any] = {
            "name": lease_name(claim),
            "namespace": self._namespace,
            "labels": {CLAIM_LABEL: "true", "app.kubernetes.io/managed-by": REPORTING_COMPONENT},
            "annotations": annotations,
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {"holderIdentity": holder, "acquireTime": timestamp(datetime.now(UTC))},
        }
        leases = (*LEASES, self._namespace, "leases")
        if resource_version is None:
            write = self._custom.create_namespaced_custom_object(
                *leases, body, _request_timeout=REQUEST_TIMEOUT
            )
        else:
            write = self._custom.replace_namespaced_custom_object(
                *leases, lease_name(claim), body, _request_timeout=REQUEST_TIMEOUT
            )
        written = await or_none(write, 409)  # 409: created or changed by another writer since it was read
        if written is None:
            return None
        version: str = as_json(written)["metadata"]["resourceVersion"]
        return version

    async def delete_claim(self, claim: Claim, *, resource_version: str) -> bool:
        delete = self._custom.delete_namespaced_custom_object(
            *LEASES,
            self._namespace,
            "leases",
            lease_name(claim),
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(resource_version=resource_version)
            ),
            _request_timeout=REQUEST_TIMEOUT,
        )
        # 404: gone already; 409: changed by another writer since it was read, and kept.
        return await refused(delete, 404, 409) != 409

    async def patch_status(self, ref: ObjectRef, status: PhoneWebhookStatus) -> bool:
        """Write the whole status through the status subresource; False when the object is gone."""
        # A merge patch with explicit nulls, so fields that no longer apply are removed.
        body = {"status": status.model_dump(mode="json", by_alias=True)}
        return await self._merge_status(PLURAL, ref.namespace, ref.name, body)

    async def patch_account_status(
        self, kind: str, namespace: str, name_: str, status: AccountStatus
    ) -> None:
        """Write a CamsAccount's or ClusterCamsAccount's status; nothing when it is gone."""
        body = {"status": status.model_dump(mode="json", by_alias=True)}
        await self._merge_status(f"{kind.lower()}s", namespace, name_, body)

    async def _merge_status(self, plural: str, namespace: str, name_: str, body: dict[str, Any]) -> bool:
        """Merge-patch a status subresource ("" namespace: a cluster-scoped object); False when it is gone."""
        if namespace:
            patch = self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                name(namespace),
                plural,
                name(name_),
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        else:
            patch = self._custom.patch_cluster_custom_object_status(
                GROUP,
                VERSION,
                plural,
                name(name_),
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return await refused(patch, 404) is None

    async def add_finalizer(
        self, ref: ObjectRef, *, finalizer: str, current: list[str], resource_version: str
    ) -> None:
        """Add `finalizer`; the resourceVersion test makes a concurrent change fail instead of being lost."""
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}
        ]
        if current:
            ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer})
        else:
            ops.append({"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})
        await self._json_patch(ref, ops)

    async def remove_finalizer(self, ref: ObjectRef, *, finalizer: str, current: list[str]) -> None:
        """Remove `finalizer`, testing first that it is still where we saw it."""
        index = current.index(finalizer)
        path = f"/metadata/finalizers/{index}"
        await self._json_patch(
            ref, [{"op": "test", "path": path, "value": finalizer}, {"op": "remove", "path": path}]
        )

    async def _json_patch(self, ref: ObjectRef, ops: list[dict[str, Any]]) -> None:
        patch = self._custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            name(ref.namespace),
            PLURAL,
            name(ref.name),
            ops,
            _content_type=JSON_PATCH,
            _request_timeout=REQUEST_TIMEOUT,
        )
        await refused(patch, 404)  # gone: no finalizer to change

    async def read_secret(self, namespace: str, name_: str) -> SecretData | None:
        """The Secret's data, decoded, and its resourceVersion; None when it does not exist."""
        secret = await or_none(answer(self._core.read_secret(namespace, name_)))
        if secret is None:
            return None
        version = (secret.get("metadata") or {}).get("resourceVersion")
        return SecretData(resource_version=version, data=_decode(secret.get("data")))

    async def post_event(
        self, ref: ObjectRef, *, type_: Literal["Normal", "Warning"], reason: str, message: str
    ) -> None:
        """Post a core/v1 Event about a PhoneWebhook, or count it on the same Event posted lately (see
        kube/events.py). Failures are logged, never raised: an Event is a courtesy, and losing one must not
        stop a reconcile."""
        now = datetime.now(UTC)
        key = (ref.uid, type_, reason)
        try:
            repeat = self._events.repeat_of(key, now)
            if repeat is not None:
                if await refused(self._count_again(repeat, message=message, now=now), 404) is None:
                    self._events.posted(key, replace(repeat, count=repeat.count + 1, last=now))
                    return
                self._events.forget(key)  # expired: post a new one
            event_name_ = event_name(ref.name, secrets.token_hex(8))
            await answer(
                self._core.create_event(
                    ref.namespace, self._event(ref, event_name_, type_, reason, message, now)
                )
            )
            self._events.posted(key, Posted(event_name_, ref.namespace, 1, now, now))
        except ApiException as exc:
            if exc.status == 403 and "NamespaceTerminating" in str(exc.body):
                # Nothing may be created in a namespace being deleted: the Event has no reader left.
                logger.debug(
                    "No Event %s for %s/%s: its namespace is being deleted", reason, ref.namespace, ref.name
                )
                return
            logger.warning(
                "Could not post Event %s for %s/%s: HTTP %s", reason, ref.namespace, ref.name, exc.status
            )

    async def _count_again(self, posted: Posted, *, message: str, now: datetime) -> None:
        body = {"count": posted.count + 1, "lastTimestamp": _seconds(now), "message": message[:1024]}
        await answer(self._core.patch_event(posted.namespace, posted.name, body))

    @staticmethod
    def _event(
        ref: ObjectRef, name: str, type_: str, reason: str, message: str, now: datetime
    ) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "firstTimestamp": _seconds(now),
            "lastTimestamp": _seconds(now),
            "count": 1,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": REPORTING_COMPONENT,
        }


def _seconds(moment: datetime) -> str:
    """Events' timestamps are whole seconds (metav1.Time)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
