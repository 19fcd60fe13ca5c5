"""One plan of manifests: per object, the facts (planning/gather.py), the operator's planner, the verdict
(decisions/preview.py); reads only. `Cluster` is what `--cluster` adds: the cluster's accounts, namespace
labels, Secrets (as far as the caller may read them), claims and objects."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.aio import client

from cams_webhook_operator.api.models import (
    ACCOUNT_KIND,
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_KIND,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    PLURAL,
    VERSION,
)
from cams_webhook_operator.api.status_models import PhoneWebhookStatus
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.decisions import preview as pv
from cams_webhook_operator.decisions.plans import webhook_update
from cams_webhook_operator.decisions.reconcile import needs_credentials, plan
from cams_webhook_operator.decisions.state import Claimant, Snapshot, claimant_of, holder_id
from cams_webhook_operator.kube import client as kube_client
from cams_webhook_operator.kube.api import KubeApi
from cams_webhook_operator.planning import gather
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.account_ids import AccountIds, lane_label
from cams_webhook_operator.tenancy.accounts import Account
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls
from cams_webhook_operator.tenancy.claims import ClaimStore
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved
from cams_webhook_operator.tenancy.resolver import CredentialResolver
from cams_webhook_operator.tenancy.space_access import SpaceAccess


async def listed(api: client.ApiClient, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every object of one of our kinds (of one namespace), page by page (kube/client.custom_pages)."""
    listing = kube_client.custom_pages(
        client.CustomObjectsApi(api), group=GROUP, version=VERSION, plural=plural, namespace=namespace
    )
    return [item async for page in listing for item in page.get("items", [])]


@dataclass
class Cluster:
    """The cluster's side of a plan, read once: a listing per kind (objects of the manifests' namespaces
    only) and the claims in one call, not a read per object."""

    kube: KubeApi
    resolver: CredentialResolver
    claims: ClaimStore
    objects: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    async def read(
        cls,
        api: client.ApiClient,
        settings: OperatorSettings,
        operator: Resolved | None,
        namespaces: set[str],
    ) -> Cluster:
        kube = KubeApi(api, namespace=settings.operator_namespace)
        resolver = CredentialResolver(
            operator=operator.credentials if operator else None,
            read_secret=kube.read_secret,
            operator_namespace=settings.operator_namespace,
        )
        for kind, plural in ((ACCOUNT_KIND, ACCOUNT_PLURAL), (CLUSTER_ACCOUNT_KIND, CLUSTER_ACCOUNT_PLURAL)):
            for item in await listed(api, plural):
                resolver.observe_account(Account.of(item, kind))
        core = kube_client.CoreGroup(api)
        objects: dict[tuple[str, str], dict[str, Any]] = {}
        for namespace in sorted(namespaces):
            found = await kube_client.or_none(kube_client.answer(core.read_namespace(namespace)))
            labels = ((found or {}).get("metadata") or {}).get("labels") or {}
            resolver.namespace_labels(namespace, labels if found is not None else None)
            if found is not None:
                objects |= {
                    (namespace, o["metadata"]["name"]): o for o in await listed(api, PLURAL, namespace)
                }
        grace = timedelta(seconds=settings.claim_grace_seconds)
        claims = ClaimStore(kube, grace=grace, now=lambda: datetime.now(UTC))
        await claims.warm()
        return cls(kube, resolver, claims, objects)


@dataclass
class PlanRun:
    settings: OperatorSettings
    cams: CamsClient
    reader: Resolved | None  # the caller's credentials: every read uses them when given
    cluster: Cluster | None
    namespace: str = "default"  # of manifests that name none
    reads: dict[tuple[str, str], tuple[Outcome, dict[str, LiveNumber]]] = field(default_factory=dict)
    planned: dict[tuple[str, str], str] = field(default_factory=dict)  # claims taken by earlier objects
    lanes: dict[str, float] = field(default_factory=dict)  # account -> calls per second
    next_read: dict[str, float] = field(default_factory=dict)  # credentials -> loop time of their next read
    reads_made: int = 0  # QueryChatappPhoneNumbers calls, a throttled one made again included

    def __post_init__(self) -> None:
        self.access = SpaceAccess(
            read=self._read,
            renew=lambda _: False,
            now=lambda: datetime.now(UTC),
            refusal_seconds=self.settings.permanent_retry_seconds,
        )
        self.account_ids = AccountIds(ask=self.cams.caller_identity)

    async def _read(self, space: str, resolved: Resolved) -> tuple[Outcome, dict[str, LiveNumber]]:
        """One read per space and credentials (the caller's, when given, for every space), paced at the
        account's rate as the operator's reads are; a throttled read waits as CAMS asks and is made again."""
        who = self.reader or resolved
        key = (space, who.identity)
        for _ in range(5):
            if key in self.reads:
                break
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self.next_read.get(who.identity, 0.0) - loop.time()))
            self.next_read[who.identity] = loop.time() + 1 / self.settings.qps
            outcome, numbers = await self.cams.query_phone_numbers(space, who.credentials)
            self.reads_made += 1
            if outcome.verdict is Verdict.THROTTLED:
                await asyncio.sleep(
                    outcome.answer.retry_after if outcome.answer and outcome.answer.retry_after else 1.0
                )
                continue
            self.reads[key] = (outcome, numbers)
        return self.reads.get(key) or (outcome, numbers)

    def _live(self, space: str) -> tuple[bool, dict[str, LiveNumber]]:
        for (read_space, _), (outcome, numbers) in self.reads.items():
            if read_space == space and outcome.verdict is Verdict.OK:
                return True, numbers
        return False, {}

    async def object(self, body: Mapping[str, Any]) -> pv.Preview:
        obj = gather.as_object(body, default_namespace=self.namespace)
        snapshot = Snapshot.of(obj)
        existing = self.cluster.objects.get(snapshot.key) if self.cluster else None
        status, snapshot = await self._status(obj, snapshot, existing)
        spec = snapshot.spec
        credentials, urls = await self._credentials(snapshot)
        owner = await self._owner(snapshot, credentials)
        if spec is not None and isinstance(credentials, Resolved):
            await self._read(spec.cust_space_id, credentials)
        read, numbers = self._live(spec.cust_space_id) if spec else (False, {})
        live = numbers.get(spec.phone_number) if spec else None
        state = gather.object_state(snapshot, status, live, read)
        decided = plan(state, gather.facts(credentials=credentials, urls=urls, owner=owner), self.settings)
        if decided.claim == "take" and snapshot.claim is not None:
            self.planned.setdefault(snapshot.claim, holder_id(snapshot.key))
        update = webhook_update(spec, urls if isinstance(urls, CallbackUrls) else None) if spec else None
        observe = spec is not None and spec.management_mode == "Observe"
        account = await self._account(decided.call.resolved) if decided.call else ""
        verdict, reason, message, changes = pv.preview_of(decided, update, live, observe=observe)
        if verdict is pv.Verdict.CHANGE:  # why the call: a new object, a changed spec, or drift
            reason = "New" if existing is None else "DriftDetected" if decided.drift_detected else "Changed"
        raw_spec = obj.get("spec") or {}
        return pv.Preview(
            namespace=snapshot.ref.namespace,
            name=snapshot.ref.name,
            space=str(raw_spec.get("custSpaceId", "")),
            number=str(raw_spec.get("phoneNumber", "")),
            verdict=verdict,
            reason=reason,
            message=message,
            changes=changes,
            account=account,
        )

    async def _status(
        self, obj: Mapping[str, Any], snapshot: Snapshot, existing: Mapping[str, Any] | None
    ) -> tuple[PhoneWebhookStatus, Snapshot]:
        """The status the operator would start from: none for a new object; for one that exists, its own,
        with settled fingerprints re-made (gather.py), and the object as applying the manifest makes it
        (the manifest's spec and annotations; the generation moves when the spec does)."""
        if existing is None or self.cluster is None:
            return PhoneWebhookStatus(), snapshot
        current = Snapshot.of(existing)
        status = gather.status_of(existing)
        verdict = gather.settled(status, current.generation)
        as_, urls = None, None
        if current.spec is not None and verdict is not None:
            resolved = await self.cluster.resolver.resolve(current.key, current.spec)
            as_ = resolved if isinstance(resolved, Resolved) else None
            found = await self.cluster.resolver.callback_urls(current.key, current.spec)
            urls = found if isinstance(found, CallbackUrls) else None
        status = gather.rebased(status, verdict, existing=current, urls=urls, as_=as_)
        generation = current.generation if snapshot.spec == current.spec else current.generation + 1
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        metadata = {**(existing.get("metadata") or {}), "generation": generation, "annotations": annotations}
        return status, Snapshot.of({**existing, "spec": obj.get("spec"), "metadata": metadata})

    async def _credentials(
        self, snapshot: Snapshot
    ) -> tuple[Resolved | CredentialProblem | None, CallbackUrls | CredentialProblem | None]:
        """As the controller's facts: the credentials the object may use, proven on the number's space
        before they may claim it, and the URLs its Secrets hold."""
        spec = snapshot.spec
        if spec is None or not needs_credentials(snapshot):
            return None, None
        if self.cluster is None:  # no tenancy: the caller's credentials stand for the object's
            credentials: Resolved | CredentialProblem | None = self.reader
            urls: CallbackUrls | CredentialProblem | None = None
        else:
            credentials = await self.cluster.resolver.resolve(snapshot.key, spec)
            urls = await self.cluster.resolver.callback_urls(snapshot.key, spec)
        if credentials is None:
            return CredentialProblem("NoCredentials", "No credentials to read CAMS with"), urls
        claim = snapshot.claim
        if isinstance(credentials, Resolved) and claim is not None and not snapshot.deleting:
            holds = self.cluster is not None and await self.cluster.claims.holds(
                claim, holder_id(snapshot.key)
            )
            if not holds:
                credentials = await self.access.check(credentials, claim[0]) or credentials
        return credentials, urls

    async def _owner(
        self, snapshot: Snapshot, credentials: Resolved | CredentialProblem | None
    ) -> Claimant | None:
        """Who manages the number, as the controller's facts say it; a number claimed by an earlier object
        of these manifests counts as claimed. Credentials that do not work learn nothing."""
        claim = snapshot.claim
        if claim is None or not isinstance(credentials, Resolved):
            return None
        if (earlier := gather.owner_in_plan(snapshot, self.planned)) is not None:
            return earlier
        if self.cluster is None:
            return None
        holding = await self.cluster.claims.peek(claim, holder_id(snapshot.key))
        return claimant_of(holding.holder, holding.free_at)

    async def _account(self, resolved: Resolved) -> str:
        """The lane a call would wait in (the Alibaba Cloud account), and its rate."""
        lane = lane_label(await self.account_ids.lane_of(resolved))
        quota = resolved.quota
        qps = quota.qps if quota is not None and quota.shared and quota.qps else self.settings.qps
        self.lanes[lane] = min(self.lanes.get(lane, qps), qps)
        return lane
