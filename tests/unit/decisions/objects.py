"""The objects, credentials and settings the decision tests plan for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.api.status_models import LiveWebhook
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.decisions import plans, reconcile
from cams_webhook_operator.decisions.plans import Facts, Priority
from cams_webhook_operator.decisions.state import Claimant, DriftReport, ObjectState, Snapshot
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


HOUR = timedelta(hours=1)


SPEC = PhoneWebhookSpec.model_validate(
    {"custSpaceId": "s", "phoneNumber": "8613800001234", "statusCallbackUrl": "https://a.example/x"}
)


OPERATOR = Resolved(Credentials("LTAI-op", "secret"), "operator")


SETTINGS = OperatorSettings(retry_base_seconds=1, retry_max_seconds=300, permanent_retry_seconds=3600)


OTHER = Claimant("2026-11-27T09:00:00Z", "other-team", "first")


APPLIED = plans.fingerprint(plans.webhook_update(SPEC), account=OPERATOR.account)


FINALIZER = "camswebhook.io/clear-webhook"


def state_of(
    *,
    status: PhoneWebhookStatus | None = None,
    annotations: dict[str, str] | None = None,
    finalizers: tuple[str, ...] = (),
    deleting: bool = False,
    generation: int = 2,
    **spec: object,
) -> ObjectState:
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "pwh",
            "uid": "u",
            "generation": generation,
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "annotations": annotations or {},
            "finalizers": list(finalizers),
            **({"deletionTimestamp": "2026-11-27T12:00:00Z"} if deleting else {}),
        },
        "spec": {**SPEC.model_dump(by_alias=True, exclude_none=True), **spec},
    }
    return ObjectState(Snapshot.of(body), status or PhoneWebhookStatus())


def summary_of(plan: plans.Plan) -> tuple[object, ...]:
    ready = plan.status.conditions[0] if plan.status and plan.status.conditions else None
    return (
        plan.result,
        "call" if plan.call else None,
        plan.finalizer,
        ready.reason if ready else None,
        tuple(event.reason for event in plan.events),
    )


IN_SYNC = PhoneWebhookStatus(applied_fingerprint=APPLIED, observed_generation=2)


RECENTLY_REFUSED = PhoneWebhookStatus(failed_fingerprint=APPLIED, last_attempt_time=NOW)


READ = PhoneWebhookStatus(
    last_drift_check_time=NOW, live=LiveWebhook(status_callback_url="https://a.example/x")
)


def read_here(state: ObjectState) -> ObjectState:
    """The state as after a read of the space by this process (the one READ's status reports)."""
    state.last_read = DriftReport(NOW, LiveNumber("8613800001234", "https://a.example/x", ""))
    return state


REFUSED_TOKEN = CredentialProblem("RRSAFailed", "STS refused", transient=False)


STS_DOWN = CredentialProblem("RRSAFailed", "could not reach STS", transient=True)


NO_SECRET = CredentialProblem("SecretNotFound", "Secret ns/c was not found")


def call_of(state: ObjectState, *, clearing: bool = False) -> plans.Call:
    plan = reconcile.plan(state, Facts(now=NOW, priority=Priority.CHANGE, credentials=OPERATOR), SETTINGS)
    assert plan.call is not None
    return replace(plan.call, clearing=clearing)
