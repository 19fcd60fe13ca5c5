"""Status of a PhoneWebhook for each verdict: conditions as kstatus, Flux and Argo CD read them. Pure."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from cams_webhook_operator.api.accounts import AccountStatus
from cams_webhook_operator.api.models import RELEASE_ANNOTATION, timestamp
from cams_webhook_operator.api.status_models import Condition, ConditionType, PhoneWebhookStatus, shared
from cams_webhook_operator.cams.outcomes import Answer, Outcome, Verdict
from cams_webhook_operator.decisions.state import Claimant
from cams_webhook_operator.tenancy.credentials import AccountVerdict

RELEASE_HINT = f"to delete it without clearing CAMS, annotate it {RELEASE_ANNOTATION}=true"


class Phase(enum.Enum):
    """Which of Ready, Reconciling and Stalled is True (kstatus reads them in that spirit)."""

    READY = (True, False, False)
    RECONCILING = (False, True, False)
    STALLED = (False, False, True)


def condition(
    previous: list[Condition],
    kind: ConditionType,
    value: bool,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> Condition:
    """Condition `kind`, keeping the lastTransitionTime it had in `previous` if its status did not change."""
    status = "True" if value else "False"
    old = next((c for c in previous if c.type == kind), None)
    return shared(
        Condition(
            type=kind,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=old.last_transition_time if old and old.status == status else now,
            observed_generation=generation,
        )
    )


def _conditions(
    previous: list[Condition], *, generation: int, now: datetime, phase: Phase, reason: str, message: str
) -> list[Condition]:
    """All three conditions. A False Reconciling/Stalled says nothing on its own; the shared reason still
    tells the story."""
    kinds: tuple[ConditionType, ...] = ("Ready", "Reconciling", "Stalled")
    return [
        condition(previous, kind, value, reason=reason, message=message, now=now, generation=generation)
        for kind, value in zip(kinds, phase.value, strict=True)
    ]


def _verdict(
    previous: PhoneWebhookStatus,
    *,
    generation: int,
    now: datetime,
    phase: Phase,
    reason: str,
    message: str,
    fields: dict[str, Any] | None = None,
) -> PhoneWebhookStatus:
    """The previous status with a new verdict for `generation` (conditions' reason and message), and the
    other status `fields` given."""
    conditions = _conditions(
        previous.conditions, generation=generation, now=now, phase=phase, reason=reason, message=message
    )
    update = {"observed_generation": generation, **(fields or {}), "conditions": conditions}
    if all(getattr(previous, name) == value for name, value in update.items()):
        # Nothing changed (an in-sync re-check): no copy. A restart re-checks every object; copies of
        # statuses that are the same would only leave the allocator holes in place of the old ones.
        return previous
    return previous.model_copy(update=update)


def _cams_said(outcome: Outcome) -> str:
    if outcome.answer is None:
        return outcome.error or "no answer"
    answer = outcome.answer
    said = f"{answer.code or f'HTTP {answer.http_status}'}"
    if answer.message and answer.message not in ("null", "None"):
        said += f": {answer.message}"
    return said


def _outcome_message(
    outcome: Outcome, *, phone_number: str, retry_at: datetime | None, clearing: bool
) -> str:
    if outcome.verdict is Verdict.OK:
        return "CAMS accepted the webhook configuration"  # no number: equal conditions are shared
    retry_note = f"; retrying at {timestamp(retry_at)}" if retry_at else ""
    said = _cams_said(outcome)
    if outcome.verdict is Verdict.PERMANENT:  # a refusal this operator knows, with what to do about it
        advice = f": {outcome.refusal.advice}" if outcome.refusal else ""
        if clearing:
            return (
                f"CAMS refused to clear the webhook of {phone_number} before deletion ({said}){advice}. "
                f"The object stays until CAMS accepts{retry_note}; {RELEASE_HINT}"
            )
        refused = f"CAMS refused the webhook configuration of {phone_number} ({said}){advice}"
        if not outcome.refused_for_good:  # fixed outside the object (the node's clock): tried again soon
            return refused + retry_note
        return f"{refused}. The operator tries again when the spec or its Secret changes{retry_note}"
    if outcome.verdict is Verdict.THROTTLED:
        message = f"CAMS is under flow control ({said}){retry_note}"
    elif outcome.verdict is Verdict.UNRECOGNIZED:
        message = (
            f"CAMS refused with a code this operator does not know ({said}){retry_note}, "
            "then less and less often while the answer stays the same"
        )
    else:
        message = f"The call to CAMS failed temporarily ({said}){retry_note}"
    return f"Clearing the webhook of {phone_number} before deletion: {message}" if clearing else message


_PHASES = {Verdict.OK: Phase.READY, Verdict.PERMANENT: Phase.STALLED}


def status_after_outcome(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    phone_number: str,
    fingerprint: str,
    outcome: Outcome,
    now: datetime,
    retry_at: datetime | None,
    reconcile_request: str | None = None,
    clearing: bool = False,
) -> PhoneWebhookStatus:
    """The status after one UpdatePhoneWebhook call. `retry_at` is when the controller tries again;
    `reconcile_request` the annotation value that forced the call, handled once CAMS answered for good."""
    answer, verdict = outcome.answer, outcome.verdict
    handled = verdict in (Verdict.OK, Verdict.PERMANENT) and reconcile_request is not None
    fields: dict[str, Any] = {
        "last_handled_reconcile_at": reconcile_request if handled else previous.last_handled_reconcile_at,
        **_answer_fields(answer),
        "last_attempt_time": now,
        "next_attempt_time": retry_at,
        # Only a refusal of this very request decides when to try it again; a newer attempt clears it.
        "failed_fingerprint": fingerprint if outcome.refused_for_good else None,
    }
    if verdict is Verdict.OK:
        fields.update(next_attempt_time=None, last_sync_time=now, applied_fingerprint=fingerprint)
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=_PHASES.get(verdict, Phase.RECONCILING),
        reason=outcome.reason,
        message=_outcome_message(outcome, phone_number=phone_number, retry_at=retry_at, clearing=clearing),
        fields=fields,
    )


def status_in_sync(*, previous: PhoneWebhookStatus, generation: int, now: datetime) -> PhoneWebhookStatus:
    """CAMS already holds this spec (e.g. only the Secret's name changed, same account)."""
    ready = next((c for c in previous.conditions if c.type == "Ready"), None)
    message = (
        ready.message if ready and ready.status == "True" else "CAMS already holds the webhook configuration"
    )
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.READY,
        reason="Applied",
        message=message,
        fields={"next_attempt_time": None},
    )


def status_stalled(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    reason: str,
    message: str,
    now: datetime,
    answer: Answer | None = None,
) -> PhoneWebhookStatus:
    """Something only a person can fix before any call can be made (a missing Secret, no credentials,
    credentials CAMS refused when the operator checked them: then `answer` is CAMS's, shown as an update's
    is). Otherwise CAMS's last answer is cleared: it belongs to an attempt that is no longer current."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.STALLED,
        reason=reason,
        message=message,
        fields={**_answer_fields(answer), "next_attempt_time": None},
    )


def _answer_fields(answer: Answer | None) -> dict[str, Any]:
    """The status fields that show CAMS's answer (all None: no answer)."""
    return {
        "code": answer.code if answer else None,
        "message": answer.message if answer else None,
        "request_id": answer.request_id if answer else None,
        "access_denied_detail": answer.access_denied_detail if answer else None,
    }


def with_generation(status: PhoneWebhookStatus, generation: int) -> PhoneWebhookStatus:
    """The same verdict, now known to hold for `generation` too."""
    return status.model_copy(
        update={
            "observed_generation": generation,
            "conditions": [
                c.model_copy(update={"observed_generation": generation}) for c in status.conditions
            ],
        }
    )


def status_paused(
    *, previous: PhoneWebhookStatus, generation: int, now: datetime, annotation: str
) -> PhoneWebhookStatus:
    """No CAMS call while paused. Ready stays True only if CAMS already held this generation."""
    ready = next((c for c in previous.conditions if c.type == "Ready"), None)
    in_sync = ready is not None and ready.status == "True" and previous.observed_generation == generation
    message = f"Paused by the annotation {annotation}: no CAMS call is made until it is removed" + (
        "; CAMS holds this spec" if in_sync else "; this spec is not applied"
    )
    return _verdict(
        previous,
        generation=generation,
        now=now,
        # Never applied: InProgress for kstatus and Argo CD, not Current (a GitOps wait must not pass on an
        # object CAMS never saw).
        phase=Phase.READY if in_sync else Phase.RECONCILING,
        reason="Paused",
        message=message,
        fields={"next_attempt_time": None},
    )


def status_retrying(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    reason: str,
    message: str,
    now: datetime,
    retry_at: datetime,
) -> PhoneWebhookStatus:
    """Something that may pass on its own stands in the way (STS unreachable): Reconciling, with a retry."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason=reason,
        message=f"{message}; retrying at {timestamp(retry_at)}",
        fields={"next_attempt_time": retry_at},
    )


def status_read_refused(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    now: datetime,
    outcome: Outcome,
    retry_at: datetime,
) -> PhoneWebhookStatus:
    """Observe mode: CAMS refused to show the space (QueryChatappPhoneNumbers). Its answer is shown as an
    update's is; what an earlier read showed is kept, with the time of that read."""
    answer = outcome.answer
    said = f"{answer.code}: {answer.message}" if answer else outcome.error
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.STALLED,
        reason=outcome.reason,
        message=f"CAMS refused to show this number's space (QueryChatappPhoneNumbers: {said}); reading "
        f"it again at {timestamp(retry_at)}, or when the spec or its account changes",
        fields={**_answer_fields(answer), "next_attempt_time": retry_at},
    )


def status_observing(*, previous: PhoneWebhookStatus, generation: int, now: datetime) -> PhoneWebhookStatus:
    """Observe mode, before the first read of the space."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason="Observing",
        message="Reading the live configuration from CAMS (Observe mode: no change is made)",
    )


def status_observed(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    now: datetime,
    phone_number: str,
    drifted: list[str],
) -> PhoneWebhookStatus:
    """Observe mode: what CAMS holds (status.live, from the last read), and whether it matches the spec
    (the InSync condition). Ready is True (observing works); its reason says what `kubectl get` should
    show of InSync: Observed while CAMS holds the spec, else Differs or NotFound."""
    if previous.live is None or not previous.live.found:
        in_sync, reason, message = False, "NotFound", f"The space does not list {phone_number}"
    elif drifted:
        in_sync, reason, message = False, "Differs", f"CAMS holds other values for {', '.join(drifted)}"
    else:
        in_sync, reason, message = True, "Matches", "CAMS holds the callback URLs of this spec"
    observed = _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.READY,
        reason="Observed" if in_sync else reason,
        message=f"Observing {phone_number}: CAMS is never changed in Observe mode; {message[0].lower()}"
        f"{message[1:]} (status.live)",
    )
    in_sync_condition = condition(
        previous.conditions, "InSync", in_sync, reason=reason, message=message, now=now, generation=generation
    )
    return observed.model_copy(update={"conditions": [*observed.conditions, in_sync_condition]})


def status_unavailable(
    *,
    previous: PhoneWebhookStatus,
    generation: int,
    now: datetime,
    cause: str,
    probe_interval: float,
) -> PhoneWebhookStatus:
    """CAMS fails every call of the account (an outage): the object waits for CAMS, not for a backoff."""
    return _verdict(
        previous,
        generation=generation,
        now=now,
        phase=Phase.RECONCILING,
        reason="CamsUnavailable",
        message=f"CAMS fails every call of this account (last: {cause}); the operator tries one call "
        f"every {probe_interval:g} s and applies this object as soon as CAMS answers",
        fields={"next_attempt_time": None},
    )


def account_status(
    *, previous: AccountStatus, generation: int, now: datetime, verdict: AccountVerdict
) -> AccountStatus:
    """A CamsAccount's or ClusterCamsAccount's status: Ready when its credentials can be used, Stalled
    when a person must act, Reconciling while something that may pass stands in the way (STS unreachable)."""
    phase = Phase.READY if verdict.ready else Phase.RECONCILING if verdict.transient else Phase.STALLED
    conditions = _conditions(
        previous.conditions,
        generation=generation,
        now=now,
        phase=phase,
        reason=verdict.reason,
        message=verdict.message,
    )
    update = {"observed_generation": generation, "credentials": verdict.credentials, "conditions": conditions}
    return previous.model_copy(update=update)


def conflict_message(*, winner: Claimant, space: str, phone_number: str, namespace: str) -> str:
    """Names the object that manages the number only when it is in the same namespace: another team's
    objects are not this team's business (nor are their names). A number held only by a released claim
    (its object was deleted, the grace period runs) is reserved, not managed: the message says until when."""
    same = winner.namespace == namespace
    if winner.free_at is not None:
        who = f"PhoneWebhook {winner.name}" if same else "a deleted PhoneWebhook of another namespace"
        return (
            f"The webhook of {phone_number} in space {space} is reserved for {who}, which managed it until "
            "it was deleted, in case it is created again; this one takes the number at "
            f"{timestamp(winner.free_at)} unless that happens"
        )
    who = f"PhoneWebhook {winner.name}" if same else "A PhoneWebhook of another namespace"
    return (
        f"{who} already manages the webhook of {phone_number} in space {space}; this one is not applied "
        "while that one exists (delete it, or this one, to settle which object manages the number; once that "
        "one is deleted, this one takes the number after CAMS_CLAIM_GRACE_SECONDS, 5 minutes by default)"
    )
