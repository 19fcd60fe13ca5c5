"""The status of a PhoneWebhook (and the conditions every kind shares): what the operator writes, and how
it reads back a status an earlier version wrote.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Literal, get_args

from pydantic import Field, field_validator

from cams_webhook_operator.api.models import RECONCILE_REQUEST_ANNOTATION, CamelModel

ConditionType = Literal["Ready", "Reconciling", "Stalled", "InSync", "NumberHealthy"]
CONDITION_TYPES: tuple[ConditionType, ...] = get_args(ConditionType)


class Condition(CamelModel):
    """A condition in the Kubernetes convention (metav1.Condition)."""

    type: ConditionType = Field(
        description="Ready, Reconciling or Stalled; InSync on observed objects (does CAMS hold this spec?); "
        "NumberHealthy once the space was read (the number's rating and status, never Ready's business)."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Why the condition has this status, in CamelCase.")
    message: str = Field(description="What happened, for a person.")
    last_transition_time: datetime = Field(description="When the status of this condition last changed.")
    observed_generation: int = Field(description="The metadata.generation this condition was computed for.")


# Equal conditions, one instance each. Bounded: emptied when full, which only ends sharing for the
# conditions made after (those already shared stay valid: they are frozen).
_CONDITIONS: dict[Condition, Condition] = {}
SHARED_CONDITIONS_LIMIT = 10_000


def shared(condition: Condition) -> Condition:
    """One instance for equal conditions. Objects decided in the same second for the same generation
    have equal Ready, Reconciling and Stalled conditions (their messages name no number): sharing them
    saves about 1 KB per object, a quarter of what the operator keeps of a settled object."""
    if len(_CONDITIONS) >= SHARED_CONDITIONS_LIMIT:
        _CONDITIONS.clear()
    return _CONDITIONS.setdefault(condition, condition)


class LiveWebhook(CamelModel):
    """The number as CAMS reported it at the last read: its webhook (QueryChatappPhoneNumbers has no HttpFlag
    or QueueFlag) and its health as WhatsApp rates it (observed state: never copied into a spec)."""

    status_callback_url: str = Field(
        default="",
        description="StatusCallbackUrl that CAMS holds, as scheme, host and port: user-info, path, query "
        "string and fragment (where tokens travel) read 'redacted'.",
    )
    up_callback_url: str = Field(
        default="", description="UpCallbackUrl that CAMS holds, redacted as statusCallbackUrl is."
    )
    status_callback_url_matches: bool | None = Field(
        default=None,
        description="Whether CAMS holds exactly the StatusCallbackUrl of the spec (or of its Secret); unset "
        "when the spec sets none.",
    )
    up_callback_url_matches: bool | None = Field(
        default=None,
        description="Whether CAMS holds exactly the UpCallbackUrl of the spec (or of its Secret); unset when "
        "the spec sets none.",
    )
    number_status: str = Field(
        default="", description="The number's Status in CAMS: CONNECTED, FLAGGED, RATE_LIMITED, OFFLINE ..."
    )
    quality_rating: str = Field(
        default="", description="WhatsApp's quality rating of the number: GREEN, YELLOW, RED (or UNKNOWN)."
    )
    messaging_limit_tier: str = Field(
        default="", description="How many business-initiated conversations the number may open a day."
    )
    name_status: str = Field(
        default="", description="Review of the verified name: Approval, Pending_Review ..."
    )
    code_verification_status: str = Field(default="", description="Two-step verification: VERIFIED or not.")
    verified_name: str = Field(default="", description="The business name WhatsApp shows.")
    is_official: str = Field(default="", description="Whether the number is an Official Business Account.")
    found: bool = Field(default=True, description="False when the space does not list the number.")


class PlannedChange(CamelModel):
    """One field the call that Manage would make sets, which CAMS does not hold (or, for the flags, may not
    hold: the read API does not return them)."""

    spec_field: str = Field(
        description="The spec field (statusCallbackUrl, upCallbackUrl, httpFlag, queueFlag)."
    )
    held: str = Field(
        description="What CAMS holds, redacted as in live; '?' where the read API does not say."
    )
    wanted: str = Field(description="What the spec would send, redacted as in live.")


class PhoneWebhookStatus(CamelModel):
    """What the operator observed and did; written only by the operator."""

    observed_generation: int = Field(
        default=-1,
        description="The metadata.generation the operator last processed. -1 until it has seen the object, "
        "so GitOps tools never judge a new object healthy too early.",
    )
    code: str | None = Field(
        default=None, description="Code of CAMS's answer to the last call (OK means success)."
    )
    message: str | None = Field(default=None, description="Message of CAMS's answer to the last call.")
    request_id: str | None = Field(default=None, description="RequestId of the last CAMS call.")
    access_denied_detail: str | None = Field(
        default=None,
        description="AccessDeniedDetail of CAMS's answer, when it refused for lack of permission.",
    )
    last_sync_time: datetime | None = Field(default=None, description="When CAMS last accepted this spec.")
    last_attempt_time: datetime | None = Field(
        default=None, description="When the operator last called CAMS for this object."
    )
    next_attempt_time: datetime | None = Field(
        default=None, description="When the operator will try again, while it is retrying."
    )
    live: LiveWebhook | None = Field(
        default=None,
        description="What CAMS held for this number at the last read (Observe mode and drift checks).",
    )
    manage_would_change: list[PlannedChange] | None = Field(
        default=None,
        description="Observe mode, while CAMS does not hold the spec: what switching to Manage would change "
        "with its one call, field by field, redacted (the plan command shows the same). Unset in sync.",
    )
    last_drift_check_time: datetime | None = Field(
        default=None,
        description="When the operator last compared the webhook that CAMS holds with this spec.",
    )
    last_handled_reconcile_at: str | None = Field(
        default=None,
        description=f"The value of the {RECONCILE_REQUEST_ANNOTATION} annotation that the operator last "
        "handled (CAMS answered the forced call).",
    )
    applied_fingerprint: str | None = Field(
        default=None,
        description="Digest of the spec and account that CAMS last accepted; the operator calls CAMS only "
        "when the current one differs.",
    )
    failed_fingerprint: str | None = Field(
        default=None,
        description="Digest of the spec and account that CAMS last refused for good; not retried hot.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling and Stalled, as kstatus, Flux and Argo CD read them; InSync on "
        "observed objects; NumberHealthy once the space was read.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    @field_validator("conditions")
    @classmethod
    def _shared_conditions(cls, conditions: list[Condition]) -> list[Condition]:
        return [shared(c) for c in conditions]

    @field_validator("code", "message")
    @classmethod
    def _one_string_per_answer(cls, value: str | None) -> str | None:
        return None if value is None else sys.intern(value)  # "OK" and a few refusals, many times over
