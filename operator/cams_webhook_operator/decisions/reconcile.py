"""Decisions: what one PhoneWebhook needs, as a plan. Pure.

`plan` decides every branch (invalid spec, deleting, paused, observe, conflict, credentials, in sync,
apply) from the object's state and the facts gathered for it; answers.py decides what CAMS's answer
means and what an object is told while CAMS is out; plans.py holds what a plan may say. A plan says
everything that is to happen: the call to make (if any), the status, the Events, the finalizer change,
when to look again and how urgently, and the bookkeeping. The controller carries it out and decides
nothing itself.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Literal

from cams_webhook_operator.api.models import (
    CLEAR_FINALIZER,
    PAUSED_ANNOTATION,
    RELEASE_ANNOTATION,
    PhoneWebhookSpec,
    userinfo_message,
)
from cams_webhook_operator.api.names import INVALID_SPEC_MESSAGES
from cams_webhook_operator.api.status_models import PhoneWebhookStatus, PlannedChange
from cams_webhook_operator.cams.outcomes import Answer
from cams_webhook_operator.decisions import number_health as nh
from cams_webhook_operator.decisions import preview
from cams_webhook_operator.decisions import status as st
from cams_webhook_operator.decisions.drift import drifted_fields, live_webhook, redacted
from cams_webhook_operator.decisions.plans import (
    Action,
    Call,
    DriftAction,
    Facts,
    Plan,
    Priority,
    clearing_update,
    fingerprint,
    retry_delay,
    retry_priority,
    webhook_update,
    whether_to_call,
)
from cams_webhook_operator.decisions.state import (
    Claimant,
    Event,
    ObjectState,
    Snapshot,
    StateUpdate,
    wanted_urls,
)
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.accounts import REFUSALS
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls
from cams_webhook_operator.tenancy.credentials import (
    CredentialProblem,
    Resolved,
)


def previous_status(state: ObjectState) -> PhoneWebhookStatus:
    """The status decided so far, with what the last read of CAMS showed."""
    read, status = state.last_read, state.status
    if read is None:  # not read by this process yet: what an earlier one wrote, redacted as now
        if status.live is not None and (shown := redacted(status.live)) is not status.live:
            return status.model_copy(update={"live": shown})
        return status
    live = live_webhook(read.live, wanted_urls(state))
    if status.last_drift_check_time == read.checked_at and status.live in (None, live):
        # Merged already (or taken out after a refusal); otherwise the wanted URLs changed since.
        return status
    return status.model_copy(update={"last_drift_check_time": read.checked_at, "live": live})


def needs_credentials(snapshot: Snapshot) -> bool:
    """Whether a plan for this object may call CAMS (the controller resolves credentials only then). An
    observer reads CAMS: it needs an account that allows it as much as a manager does."""
    spec = snapshot.spec
    if spec is None or snapshot.paused:
        return False
    if snapshot.deleting:
        return CLEAR_FINALIZER in snapshot.finalizers and not snapshot.released
    return True


def plan(state: ObjectState, facts: Facts, settings: OperatorSettings) -> Plan:
    """What the object needs now, with the number's health; and, the first time a plan sees a read of
    CAMS, whether it shows drift (a DriftDetected Warning and a call, for a managed spec)."""
    drift = _unexamined_drift(state)
    decided = _plan(state, facts, settings, drifted=state.drifted or bool(drift))
    if drift is not None:
        decided = _examined(state, decided, drift)
    return nh.with_number_health(state, decided, facts.now)


def _unexamined_drift(state: ObjectState) -> list[str] | None:
    """The fields a read no plan has looked at yet shows drifted (only a managed spec drifts); None when
    every read has been looked at. Once per read: a later spec change makes a read stale, not drifted, and
    so does an update CAMS accepted after the read was sent (the read may show what it replaced)."""
    read, snapshot = state.last_read, state.snapshot
    if read is None or read.checked_at == state.read_examined:
        return None
    applied = previous_status(state).last_sync_time
    if (
        snapshot.spec is None
        or snapshot.spec.management_mode != "Manage"
        or snapshot.paused
        or snapshot.deleting
        or (applied is not None and read.checked_at <= applied)
    ):
        return []  # nothing to re-apply, or a read older than the last apply: looked at, not judged
    return drifted_fields(live_webhook(read.live, wanted_urls(state)))


def _examined(state: ObjectState, decided: Plan, drift: list[str]) -> Plan:
    assert state.last_read is not None
    update = replace(decided.update, read_examined=state.last_read.checked_at, drifted=bool(drift))
    if not drift:
        return replace(decided, update=update)
    message = f"CAMS no longer holds this spec ({', '.join(drift)} changed outside Kubernetes); re-applying"
    event = Event("Warning", "DriftDetected", message)
    return replace(decided, update=update, events=(event, *decided.events), drift_detected=True)


def _plan(state: ObjectState, facts: Facts, settings: OperatorSettings, *, drifted: bool) -> Plan:
    snapshot, spec = state.snapshot, state.snapshot.spec
    if spec is None:
        reason, problem = snapshot.spec_problem or ("InvalidSpec", "")
        if snapshot.deleting:
            return released(
                snapshot, "NotCleared", f"Deleted without clearing CAMS: invalid spec ({problem})"
            )
        return _stall(state, facts, reason, f"{INVALID_SPEC_MESSAGES[reason]}: {problem}")
    if snapshot.deleting:
        return _finalize(state, spec, facts)
    if snapshot.paused:
        status = st.status_paused(
            previous=previous_status(state),
            generation=snapshot.generation,
            now=facts.now,
            annotation=PAUSED_ANNOTATION,
        )
        return Plan("paused", status=status, drift=DriftAction.STOP)
    if spec.management_mode == "Observe":
        if isinstance(facts.credentials, CredentialProblem):
            observed = _without_credentials(state, facts, facts.credentials, settings)
        elif isinstance(facts.urls, CredentialProblem):  # nothing to compare CAMS with
            observed = _stall(state, facts, facts.urls.reason, facts.urls.message)
        else:
            observed = _observe(state, spec, facts)
        return _warn_of_credentials_in_urls(
            state, replace(observed, finalizer=_finalizer(snapshot, wanted=False))
        )
    decided = _manage(state, spec, facts, settings, drifted=drifted)
    # Held exactly while deletionPolicy is Clear: a Retain object never waits on the operator.
    decided = replace(decided, finalizer=_finalizer(snapshot, wanted=spec.deletion_policy == "Clear"))
    return _warn_of_credentials_in_urls(state, decided)


def _manage(
    state: ObjectState, spec: PhoneWebhookSpec, facts: Facts, settings: OperatorSettings, *, drifted: bool
) -> Plan:
    """A managed object: another manages its number, its credentials or URLs are refused, or it is
    applied; and what becomes of its claim on the number, decided here like everything else."""
    snapshot, credentials = state.snapshot, facts.credentials
    if _another_owns(snapshot, facts.owner) and isinstance(credentials, Resolved):
        # Only an object whose credentials work (proven on the space) learns who manages the number:
        # one refused its account, its Secret or by CAMS is told that, and nothing about claims.
        assert facts.owner is not None
        return _conflict(state, spec, facts, facts.owner)
    if isinstance(credentials, CredentialProblem):
        # Refused for good, it holds no claim (it never blocks the rightful owner); failing for now
        # (STS, a throttled check), it keeps the one it has.
        decided = _without_credentials(state, facts, credentials, settings)
        return decided if credentials.transient else replace(decided, claim="drop")
    if isinstance(facts.urls, CredentialProblem):  # stalled before any call: it claims nothing
        return _stall(state, facts, facts.urls.reason, facts.urls.message)
    assert credentials is not None
    # Taken before any call (and kept while in sync): the plan can go on.
    return replace(_apply_or_not(state, spec, facts, credentials, settings, drifted=drifted), claim="take")


def _conflict(state: ObjectState, spec: PhoneWebhookSpec, facts: Facts, winner: Claimant) -> Plan:
    message = st.conflict_message(
        winner=winner,
        space=spec.cust_space_id,
        phone_number=spec.phone_number,
        namespace=state.snapshot.ref.namespace,
    )
    decided = _stall(state, facts, "Conflict", message)
    if winner.free_at is None:
        return decided
    # A released claim: decided again once its grace period is over.
    wait = max((winner.free_at - facts.now).total_seconds(), 0.0) + 1.0
    return replace(decided, requeue_after=wait, requeue_priority=Priority.ROUTINE)


def _warn_of_credentials_in_urls(state: ObjectState, decided: Plan) -> Plan:
    """A literal URL with a user name or password, stored when 0.1.0 allowed it: still applied (refusing it
    now would stall a number that worked), with one Warning per generation saying how to move it."""
    spec, generation = state.snapshot.spec, state.snapshot.generation
    fields = spec.urls_with_credentials() if spec is not None else ()
    if not fields or state.warned_generation == generation:
        return decided
    warnings = tuple(
        Event(
            "Warning",
            "CredentialsInUrl",
            f"{userinfo_message(field)} (the API server refuses such a URL unless stored before 0.2.0)",
        )
        for field in fields
    )
    return replace(decided, events=(*decided.events, *warnings), update=replace(decided.update, warned=True))


def _finalizer(snapshot: Snapshot, *, wanted: bool) -> Literal["add", "remove"] | None:
    held = CLEAR_FINALIZER in snapshot.finalizers
    return "add" if wanted and not held else "remove" if held and not wanted else None


def _another_owns(snapshot: Snapshot, owner: Claimant | None) -> bool:
    return owner is not None and (owner.namespace, owner.name) != snapshot.key


def _stall(state: ObjectState, facts: Facts, reason: str, message: str, answer: Answer | None = None) -> Plan:
    """Something only a person can fix stands before any call. One Event per reason and generation."""
    previous, generation = previous_status(state), state.snapshot.generation
    already = previous.observed_generation == generation and any(
        c.type == "Stalled" and c.status == "True" and c.reason == reason for c in previous.conditions
    )
    status = st.status_stalled(
        previous=previous, generation=generation, reason=reason, message=message, now=facts.now, answer=answer
    )
    return Plan("stalled", status=status, events=() if already else (Event("Warning", reason, message),))


def released(snapshot: Snapshot, reason: str, message: str) -> Plan:
    """Let a deleted object go: drop the finalizer, if held, and say why."""
    if CLEAR_FINALIZER not in snapshot.finalizers:
        return Plan("deleted")
    return Plan("released", finalizer="remove", events=(Event("Normal", reason, message),))


def _finalize(state: ObjectState, spec: PhoneWebhookSpec, facts: Facts) -> Plan:
    """deletionPolicy Clear: clear the webhook in CAMS, then let the object go."""
    snapshot = state.snapshot
    if CLEAR_FINALIZER not in snapshot.finalizers:
        return Plan("deleted")  # Retain, or released already: Kubernetes deletes it without us
    if snapshot.released:
        return released(
            snapshot,
            "Released",
            f"Deleted without clearing CAMS, as the annotation {RELEASE_ANNOTATION} asks",
        )
    if _another_owns(snapshot, facts.owner):
        return released(
            snapshot, "NotCleared", "Deleted without clearing CAMS: another object manages the number"
        )
    if previous_status(state).applied_fingerprint is None:
        return released(snapshot, "NotCleared", "Deleted without clearing CAMS: it never held this spec")
    credentials = facts.credentials
    if isinstance(credentials, CredentialProblem) or credentials is None:
        problem = credentials.message if credentials else "no credentials"
        reason = credentials.reason if credentials else "NoCredentials"
        return _stall(
            state, facts, reason, f"Cannot clear the webhook before deletion: {problem}; {st.RELEASE_HINT}"
        )
    update = clearing_update(spec)
    digest = fingerprint(update, account=credentials.account)
    call = Call(update, credentials, digest, snapshot.generation, facts.priority, clearing=True)
    return Plan(None, call=call)


def _observe(state: ObjectState, spec: PhoneWebhookSpec, facts: Facts) -> Plan:
    """Observe mode: never UpdatePhoneWebhook; report what the space's shared reads show."""
    previous, generation = previous_status(state), state.snapshot.generation
    if (refusal := state.read_refusal) is not None:
        status = st.status_read_refused(
            previous=previous,
            generation=generation,
            now=facts.now,
            outcome=refusal.outcome,
            retry_at=refusal.retry_at,
        )
        already = previous.observed_generation == generation and any(
            c.type == "Stalled" and c.status == "True" and c.reason == refusal.outcome.reason
            for c in previous.conditions
        )
        message = status.conditions[0].message if status.conditions else refusal.outcome.reason
        events = () if already else (Event("Warning", refusal.outcome.reason, message),)
        return Plan("refused", status=status, events=events, drift=DriftAction.KEEP)
    if previous.last_drift_check_time is None:
        status = st.status_observing(previous=previous, generation=generation, now=facts.now)
        return Plan("observing", status=status, drift=DriftAction.NOW)
    if state.last_read is None:
        # Read by an earlier process (a restart): its verdict stands until this one reads, at once. The
        # status it wrote cannot be compared again: it holds URLs redacted, or from an earlier version.
        return Plan("observed", status=st.with_generation(previous, generation), drift=DriftAction.NOW)
    drifted = drifted_fields(previous.live)
    status = st.status_observed(
        previous=previous,
        generation=generation,
        now=facts.now,
        phone_number=spec.phone_number,
        drifted=drifted,
    )
    # What switching to Manage would change, so that the switch is a reviewed decision.
    urls = facts.urls if isinstance(facts.urls, CallbackUrls) else None
    planned = preview.changes(webhook_update(spec, urls), state.last_read.live) if drifted else ()
    would = [PlannedChange(spec_field=c.field, held=c.held, wanted=c.wanted) for c in planned] or None
    return Plan(
        "observed",
        status=status.model_copy(update={"manage_would_change": would}),
        drift=_keep_checking(state),
    )


def _keep_checking(state: ObjectState) -> DriftAction:
    """Checked one interval from now unless a check is scheduled already (re-plans must not push it out)."""
    return DriftAction.SCHEDULE if state.drift_due is None else DriftAction.KEEP


def _without_credentials(
    state: ObjectState, facts: Facts, problem: CredentialProblem, settings: OperatorSettings
) -> Plan:
    if problem.transient:  # e.g. STS unreachable: back off and try again, told once per episode
        attempts = state.attempts + 1
        delay = retry_delay(attempts, jitter=facts.jitter, settings=settings)
        status = st.status_retrying(
            previous=previous_status(state),
            generation=state.snapshot.generation,
            reason=problem.reason,
            message=problem.message,
            now=facts.now,
            retry_at=facts.now + timedelta(seconds=delay),
        )
        events = (Event("Warning", problem.reason, problem.message),) if attempts == 1 else ()
        return Plan(
            "retrying",
            status=status,
            events=events,
            update=StateUpdate(attempts=attempts),
            requeue_after=delay,
            requeue_priority=retry_priority(facts.priority),
        )
    stalled = _stall(state, facts, problem.reason, problem.message, problem.answer)
    if problem.reason in REFUSALS and stalled.status is not None and stalled.status.live is not None:
        # What an earlier read showed is of a space this object may no longer see: it goes.
        stalled = replace(stalled, status=stalled.status.model_copy(update={"live": None}))
    if problem.reason == "RRSAFailed":
        # Fixed outside Kubernetes (a trust policy, a new token): no event tells us, so look again.
        return replace(stalled, requeue_after=settings.retry_max_seconds)
    if problem.retry_after is not None:
        return replace(stalled, requeue_after=problem.retry_after)
    return stalled


def _apply_or_not(
    state: ObjectState,
    spec: PhoneWebhookSpec,
    facts: Facts,
    credentials: Resolved,
    settings: OperatorSettings,
    *,
    drifted: bool,
) -> Plan:
    snapshot, previous = state.snapshot, previous_status(state)
    request = snapshot.reconcile_request
    if request == previous.last_handled_reconcile_at:
        request = None  # handled already
    update = webhook_update(spec, facts.urls if isinstance(facts.urls, CallbackUrls) else None)
    digest = fingerprint(update, account=credentials.account)
    decision = whether_to_call(
        fingerprint=digest,
        status=previous,
        now=facts.now,
        permanent_retry=timedelta(seconds=settings.permanent_retry_seconds),
        secret_changed=state.secret_changed,
        reconcile_requested=request is not None or drifted,
    )
    if decision.action is Action.IN_SYNC:
        status = st.status_in_sync(previous=previous, generation=snapshot.generation, now=facts.now)
        # A changed Secret that resolves to the same account changes nothing CAMS holds.
        return Plan(
            "in_sync",
            status=status,
            update=StateUpdate(attempts=0, settle_forced=True),
            drift=_keep_checking(state),
        )
    if decision.action is Action.WAIT:
        assert decision.not_before is not None
        return Plan(
            "waiting",
            status=st.with_generation(previous, snapshot.generation),
            requeue_after=(decision.not_before - facts.now).total_seconds(),
        )
    call = Call(update, credentials, digest, snapshot.generation, facts.priority, reconcile_request=request)
    return Plan(None, call=call)
