"""The few Kubernetes API calls the controller makes outside kopf: status patches, finalizers, claims,
Secret reads, Events. They go over aiohttp (kube_http.py); the official client is used, in a worker thread,
only where a call is rare (the leader's Lease) and for loading the connection settings.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import kubernetes
from kubernetes.client.exceptions import ApiException

from cams_webhook_operator.api.accounts import AccountStatus
from cams_webhook_operator.api.models import GROUP, KIND, PLURAL, VERSION, PhoneWebhookStatus
from cams_webhook_operator.claims import Claim, ClaimRecord, lease_name
from cams_webhook_operator.credential_sources import SecretData
from cams_webhook_operator.events import EventSeries, Posted
from cams_webhook_operator.kube_http import JSON_PATCH, MERGE_PATCH, KubeHttp, api_path, listing
from cams_webhook_operator.state import ObjectRef

logger = logging.getLogger(__name__)
REPORTING_COMPONENT = "cams-webhook-operator"
CORE_API = "/api/v1"
API = f"/apis/{GROUP}/{VERSION}"
LEASES_API = "/apis/coordination.k8s.io/v1"
# (connect, read) seconds for every call: without them a connection the API server never answers would
# hold a reconcile forever, silently; with them it fails, is logged, and is retried with backoff.
REQUEST_TIMEOUT = (5.0, 20.0)


async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One call of the (synchronous) official client, in a worker thread, with REQUEST_TIMEOUT."""
    return await asyncio.to_thread(method, *args, _request_timeout=REQUEST_TIMEOUT, **kwargs)


def load_api_client() -> Any:
    """In-cluster config when running in a pod, else KUBECONFIG / the current context."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient(configuration)


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


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class KubeApi:
    def __init__(self, http: KubeHttp, *, namespace: str = "default") -> None:
        """`namespace`: the operator's own, where claims are kept."""
        self._http = http
        self._namespace = namespace
        self._leases = api_path(LEASES_API, "namespaces", namespace, "leases")
        self._events = EventSeries()

    @staticmethod
    def _object(namespace: str, name: str, plural: str = PLURAL) -> str:
        return api_path(API, "namespaces", namespace, plural, name)

    async def read_claim(self, claim: Claim) -> ClaimRecord | None:
        try:
            lease = await self._http.request("GET", api_path(self._leases, lease_name(claim)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _claim_record(lease)

    async def list_claims(self) -> dict[Claim, ClaimRecord]:
        claims: dict[Claim, ClaimRecord] = {}
        selector = {"labelSelector": f"{CLAIM_LABEL}=true"}
        async for page in listing(self._http, self._leases, selector, started_over=claims.clear):
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
            "spec": {"holderIdentity": holder, "acquireTime": _timestamp(datetime.now(UTC))},
        }
        try:
            if resource_version is None:
                written = await self._http.request("POST", self._leases, body=body)
            else:
                path = api_path(self._leases, lease_name(claim))
                written = await self._http.request("PUT", path, body=body)
        except ApiException as exc:
            if exc.status == 409:  # created or changed by another writer since it was read
                return None
            raise
        version: str = written["metadata"]["resourceVersion"]
        return version

    async def delete_claim(self, claim: Claim, *, resource_version: str) -> bool:
        body = {"preconditions": {"resourceVersion": resource_version}}
        try:
            await self._http.request("DELETE", api_path(self._leases, lease_name(claim)), body=body)
        except ApiException as exc:
            if exc.status == 404:
                return True
            if exc.status == 409:  # changed by another writer since it was read
                return False
            raise
        return True

    async def patch_status(self, ref: ObjectRef, status: PhoneWebhookStatus) -> bool:
        """Write the whole status through the status subresource; False when the object is gone."""
        # A merge patch with explicit nulls, so fields that no longer apply are removed.
        body = {"status": status.model_dump(mode="json", by_alias=True)}
        try:
            path = api_path(self._object(ref.namespace, ref.name), "status")
            await self._http.request("PATCH", path, body=body, content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_account_status(self, kind: str, namespace: str, name: str, status: AccountStatus) -> None:
        """Write a CamsAccount's or ClusterCamsAccount's status; nothing when it is gone."""
        body = {"status": status.model_dump(mode="json", by_alias=True)}
        plural = f"{kind.lower()}s"
        path = self._object(namespace, name, plural) if namespace else api_path(API, plural, name)
        try:
            await self._http.request("PATCH", api_path(path, "status"), body=body, content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise

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
        try:
            path = self._object(ref.namespace, ref.name)
            await self._http.request("PATCH", path, body=ops, content_type=JSON_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def read_secret(self, namespace: str, name: str) -> SecretData | None:
        """The Secret's data, decoded, and its resourceVersion; None when it does not exist."""
        try:
            secret = await self._http.request(
                "GET", api_path(CORE_API, "namespaces", namespace, "secrets", name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        version = (secret.get("metadata") or {}).get("resourceVersion")
        return SecretData(resource_version=version, data=_decode(secret.get("data")))

    async def post_event(
        self, ref: ObjectRef, *, type_: Literal["Normal", "Warning"], reason: str, message: str
    ) -> None:
        """Post a core/v1 Event about a PhoneWebhook, or count it on the same Event posted lately (see
        events.py). Failures are logged, never raised: an Event is a courtesy, and losing one must not
        stop a reconcile."""
        now = datetime.now(UTC)
        key = (ref.uid, type_, reason)
        try:
            repeat = self._events.repeat_of(key, now)
            if repeat is not None:
                try:
                    await self._count_again(repeat, message=message, now=now)
                    self._events.posted(key, replace(repeat, count=repeat.count + 1, last=now))
                    return
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    self._events.forget(key)  # expired: post a new one
            name = event_name(ref.name, secrets.token_hex(8))
            await self._http.request(
                "POST",
                api_path(CORE_API, "namespaces", ref.namespace, "events"),
                body=self._event(ref, name, type_, reason, message, now),
            )
            self._events.posted(key, Posted(name, ref.namespace, 1, now, now))
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
        path = api_path(CORE_API, "namespaces", posted.namespace, "events", posted.name)
        await self._http.request("PATCH", path, body=body, content_type=MERGE_PATCH)

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
