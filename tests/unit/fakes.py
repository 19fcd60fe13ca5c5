"""Fakes shared by the unit tests: the Kubernetes API and CAMS as the controller sees them, the claims'
Leases, and the helpers that build a controller, an object and a settled loop."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from cams_webhook_operator.api import PhoneWebhookStatus
from cams_webhook_operator.api.accounts import AccountStatus
from cams_webhook_operator.api.refs import ObjectRef
from cams_webhook_operator.cams.credentials import Credentials, TemporaryIdentity
from cams_webhook_operator.cams.messages import LiveNumber, WebhookUpdate
from cams_webhook_operator.cams.outcomes import Answer, Outcome, classify
from cams_webhook_operator.engine.controller import Controller
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.claims import ClaimRecord
from cams_webhook_operator.tenancy.credentials import SecretData
from cams_webhook_operator.wiring import build_controller


class FakeClaimApi:
    """The claims' Leases as the API server keeps them: a write against a stale version is refused (409)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], ClaimRecord] = {}
        self.versions = 0
        self.claim_reads = 0
        self.sneak: ClaimRecord | None = None  # written by "someone else" right before our next write

    async def read_claim(self, claim: tuple[str, str]) -> ClaimRecord | None:
        self.claim_reads += 1
        return self.records.get(claim)

    async def list_claims(self) -> dict[tuple[str, str], ClaimRecord]:
        return dict(self.records)

    async def write_claim(
        self,
        claim: tuple[str, str],
        *,
        holder: str,
        released_at: datetime | None,
        resource_version: str | None,
    ) -> str | None:
        if self.sneak is not None:
            self.records[claim], self.sneak = self.sneak, None
        current = self.records.get(claim)
        if (current.resource_version if current else None) != resource_version:
            return None  # 409: created or changed since it was read
        self.versions += 1
        self.records[claim] = ClaimRecord(holder, released_at, str(self.versions))
        return str(self.versions)

    async def delete_claim(self, claim: tuple[str, str], *, resource_version: str) -> bool:
        current = self.records.get(claim)
        if current is not None and current.resource_version != resource_version:
            return False  # 409: changed since it was read
        self.records.pop(claim, None)
        return True


SECRET_VALUE = "very-secret-value-123"


TOKEN_VALUE = "sts-token-value-456"


class FakeKube(FakeClaimApi):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, PhoneWebhookStatus] = {}
        self.patches = 0
        self.events: list[tuple[str, str, str]] = []
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.secret_reads = 0
        self.finalizers: dict[str, list[str]] = {}
        self.account_statuses: dict[tuple[str, str, str], AccountStatus] = {}

    fail_patches = 0  # how many of the next status patches fail, as an API server that is restarting

    async def patch_status(self, ref: ObjectRef, status: PhoneWebhookStatus) -> bool:
        if self.fail_patches:
            self.fail_patches -= 1
            raise ConnectionError("the API server is restarting")
        self.statuses[ref.name] = status
        self.patches += 1
        return True

    async def read_secret(self, namespace: str, name: str) -> SecretData | None:
        self.secret_reads += 1
        data = self.secrets.get((namespace, name))
        # A version that changes with the content, as the API server's does with every write.
        version = str(abs(hash(frozenset(data.items())))) if data is not None else None
        return None if data is None else SecretData(resource_version=version, data=data)

    async def post_event(self, ref: ObjectRef, *, type_: Any, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    async def add_finalizer(
        self, ref: ObjectRef, *, finalizer: str, current: list[str], resource_version: str
    ) -> None:
        self.finalizers[ref.name] = [*current, finalizer]

    async def remove_finalizer(self, ref: ObjectRef, *, finalizer: str, current: list[str]) -> None:
        self.finalizers[ref.name] = [f for f in current if f != finalizer]

    async def patch_account_status(self, kind: str, namespace: str, name: str, status: AccountStatus) -> None:
        self.account_statuses[(kind, namespace, name)] = status


class FakeCams:
    """Answers updates with the scripted codes (then OK), and reads with what the updates set."""

    down = False  # an outage: every call is answered 503
    empty_means_not_given = (
        False  # an empty callback URL leaves the one CAMS holds (a clear that does not take)
    )

    def __init__(self, *codes: str) -> None:
        self.codes = list(codes)
        self.calls: list[tuple[WebhookUpdate, Credentials]] = []
        self.call_times: list[float] = []
        self.queries: list[str] = []
        self.query_codes = []
        self.query_credentials: list[Credentials] = []
        self.reads_before_call: list[int] = []  # how many space reads had happened at each update
        self.live: dict[str, LiveNumber] = {}
        # AccessKey ID -> the code CAMS refuses every call with it (a made-up key, another account's).
        self.refused_keys: dict[str, str] = {}
        # AccessKey ID -> the Alibaba Cloud account STS says it belongs to (by default, one of its own).
        self.account_of: dict[str, str] = {}
        self.identity_asked: list[str] = []

    async def caller_identity(self, credentials: Credentials) -> tuple[Outcome, str | None]:
        self.identity_asked.append(credentials.access_key_id)
        if credentials.access_key_id in self.refused_keys:
            return classify(Answer(404, "InvalidAccessKeyId.NotFound", "not found", "sts")), None
        account = self.account_of.get(credentials.access_key_id, f"uid-of-{credentials.access_key_id}")
        return classify(Answer(200, "OK", None, "sts")), account

    async def update_phone_webhook(self, update: WebhookUpdate, credentials: Credentials) -> Outcome:
        self.calls.append((update, credentials))
        self.call_times.append(asyncio.get_running_loop().time())
        self.reads_before_call.append(len(self.queries))
        if self.down:
            return classify(Answer(503, "ServiceUnavailable", "The request has failed", "req"))
        if (refusal := self.refused_keys.get(credentials.access_key_id)) is not None:
            return classify(Answer(400, refusal, f"message for {refusal}", "req"))
        code = self.codes.pop(0) if self.codes else "OK"
        if code == "OK":
            old = self.live.get(update.phone_number, LiveNumber(update.phone_number, "", ""))
            self.live[update.phone_number] = dataclasses.replace(  # the number's health stays as it is
                old,
                status_callback_url=self._given(update.status_callback_url, old.status_callback_url),
                up_callback_url=self._given(update.up_callback_url, old.up_callback_url),
            )
        return classify(Answer(200 if code == "OK" else 400, code, f"message for {code}", "req"))

    def _given(self, sent: str | None, held: str) -> str:
        return held if sent is None or (sent == "" and self.empty_means_not_given) else sent

    query_codes: list[str]  # the answers to the next reads (then OK)

    async def query_phone_numbers(
        self, cust_space_id: str, credentials: Credentials
    ) -> tuple[Outcome, dict[str, LiveNumber]]:
        self.queries.append(cust_space_id)
        self.query_credentials.append(credentials)
        code = self.query_codes.pop(0) if self.query_codes else "OK"
        code = self.refused_keys.get(credentials.access_key_id, code)
        if code != "OK":
            return classify(Answer(400 if code != "Ram.PermissionDeny" else 403, code, "refused", "rq")), {}
        return classify(Answer(200, "OK")), dict(self.live)


def make_settings(**overrides: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-operator",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET_VALUE,
        "qps": 1000.0,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
    }
    return OperatorSettings(**{**values, **overrides})


DEFAULT_ACCOUNT = {
    "metadata": {
        "name": "platform",
        "uid": "uid-platform",
        "generation": 1,
        "annotations": {"camswebhook.io/default-account": "true"},
    },
    "spec": {"credentials": {"operatorIdentity": {}}, "namespaceSelector": {}},
}


EPOCH = datetime(2026, 11, 28, tzinfo=UTC)


NAMESPACES = ("ns", "other-ns", "team-a", "team-b")


def loop_clock() -> datetime:
    """Wall-clock time that follows the fake loop time, so that waits on timestamps (a claim's grace
    period, a refusal's long retry) pass as fast as the loop's."""
    return (EPOCH + timedelta(seconds=asyncio.get_running_loop().time())).replace(microsecond=0)


def make_controller(*, listed: bool = True, **kwargs: Any) -> Controller:
    """A controller that knows the default ClusterCamsAccount of these tests: the operator's identity, for
    every namespace (objects that name no account use it); `listed`: as if the initial listing were over."""
    controller = build_controller(**{"wall_clock": loop_clock, **kwargs})
    if listed:
        controller.listed.set()
    controller.intake.observe_account(DEFAULT_ACCOUNT, "ClusterCamsAccount")
    for namespace in NAMESPACES:  # as the namespaces' watch shows them before any decision
        controller.intake.namespace_changed(namespace, {})
    return controller


def pwh_body(
    name: str = "pwh",
    generation: int = 1,
    status: PhoneWebhookStatus | None = None,
    created: str = "2026-11-27T10:00:00Z",
    annotations: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
    deleting: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": annotations or {},
            "finalizers": finalizers or [],
            **({"deletionTimestamp": "2026-11-27T12:00:00Z"} if deleting else {}),
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "generation": generation,
            "creationTimestamp": created,
        },
        "spec": {"custSpaceId": "space", "phoneNumber": "8613800001234", **spec},
        "status": status.model_dump(mode="json", by_alias=True) if status else {"observedGeneration": -1},
    }


async def settle(controller: Controller, until: Any, limit: float = 600.0) -> None:
    """Run the workers until `until()` holds, then ten more (fake) seconds for any extra, wrong call to
    show itself."""
    task = asyncio.create_task(controller.run())
    try:
        async with asyncio.timeout(limit):
            while not until():  # noqa: ASYNC110 -- polling fakes that have no events to wait on
                await asyncio.sleep(0.1)
        await asyncio.sleep(10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def ready_reason(kube: FakeKube, name: str = "pwh") -> str | None:
    status = kube.statuses.get(name)
    return (
        next((c.reason for c in status.conditions if c.type == "Ready" and c.status == "True"), None)
        if status
        else None
    )


TEAM_ACCOUNT: dict[str, Any] = {
    "metadata": {"name": "team", "namespace": "ns", "uid": "uid-team", "generation": 1},
    "spec": {"credentials": {"secretRef": {"name": "team-key"}}, "spaces": ["space"]},
}


PAUSED = {"camswebhook.io/paused": "true"}


class FakeRrsa:
    def __init__(self) -> None:
        self.identity = TemporaryIdentity(
            "rrsa:acs:ram::1:role/r", "the operator's RRSA role acs:ram::1:role/r"
        )
        self.issued = 0

    async def credentials(self) -> Credentials:
        if self.issued == 0 or self.stale:
            self.issued += 1
            self.stale = False
        return Credentials(f"STS.{self.issued}", SECRET_VALUE, TOKEN_VALUE)

    def invalidate(self) -> None:
        self.stale = True

    stale = False
    on_recovered = None
    failing = False


async def until(check: Any, limit: float = 600.0) -> None:
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 -- polling fakes that have no events to wait on
            await asyncio.sleep(0.1)


def reason_of(kube: FakeKube, name: str) -> str | None:
    status = kube.statuses.get(name)
    return status.conditions[1].reason if status and status.conditions else None
