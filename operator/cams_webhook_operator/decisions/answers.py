"""What CAMS's answer means for an object (`after_call`), and what an object is told while CAMS is out
(`unavailable`), as plans. Pure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from cams_webhook_operator.api.status_models import Condition
from cams_webhook_operator.cams.outcomes import CREDENTIALS_REFUSED, Outcome, Verdict
from cams_webhook_operator.decisions import number_health as nh
from cams_webhook_operator.decisions import status as st
from cams_webhook_operator.decisions.pacing import Outage
from cams_webhook_operator.decisions.plans import (
    Call,
    DriftAction,
    Facts,
    Plan,
    Priority,
    retry_delay,
    retry_priority,
)
from cams_webhook_operator.decisions.reconcile import (
    previous_status,
    released,
)
from cams_webhook_operator.decisions.state import (
    Event,
    ObjectState,
    StateUpdate,
)
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import (
    key_to_reread,
    token_to_renew,
)

_RESULTS = {
    Verdict.OK: "applied",
    Verdict.THROTTLED: "throttled",
    Verdict.TRANSIENT: "transient",
    Verdict.PERMANENT: "refused",
    Verdict.UNRECOGNIZED: "unrecognized",
}


def after_call(
    state: ObjectState,
    call: Call,
    outcome: Outcome,
    facts: Facts,
    settings: OperatorSettings,
    outage: Outage | None,
) -> Plan:
    """What CAMS's answer to `call` means for the object and for the call's credentials, with the number's
    health. `outage`: the account's breaker is open (CAMS is out)."""
    renew = token_to_renew(outcome, call.resolved)
    if renew:  # RRSA's token is ours to renew: exchange again and try again, no refusal to show
        outcome = Outcome(Verdict.TRANSIENT, outcome.reason, outcome.answer)
    verdict = outcome.verdict
    if call.clearing and verdict is Verdict.OK:
        phone_number = call.update.phone_number
        decided = released(
            state.snapshot, "Cleared", f"Cleared the webhook of {phone_number} in CAMS before deletion"
        )
    elif verdict is Verdict.TRANSIENT and outage is not None:
        decided = _unavailable(state, facts, outage)
    else:
        decided = _answered(state, call, outcome, facts, settings)
    decided = replace(
        decided,
        renew_credentials=renew,
        reread_secret=key_to_reread(outcome, call.resolved),
        claim="drop" if verdict is Verdict.PERMANENT and outcome.reason in CREDENTIALS_REFUSED else None,
    )
    return nh.with_number_health(state, decided, facts.now)


def _answered(
    state: ObjectState, call: Call, outcome: Outcome, facts: Facts, settings: OperatorSettings
) -> Plan:
    verdict = outcome.verdict
    attempts, retry_at = _next_try(state, outcome, facts, settings)
    status = st.status_after_outcome(
        previous=previous_status(state),
        generation=call.generation,
        phone_number=call.update.phone_number,
        fingerprint=call.fingerprint,
        outcome=outcome,
        now=facts.now,
        retry_at=retry_at,
        reconcile_request=call.reconcile_request,
        clearing=call.clearing,
    )
    return Plan(
        _RESULTS[verdict],
        status=status,
        events=_told(verdict, status.conditions[0], attempts),
        # Only an answer for good settles why the call was forced; a throttled one must try again.
        update=StateUpdate(attempts=attempts, settle_forced=verdict in (Verdict.OK, Verdict.PERMANENT)),
        requeue_after=(retry_at - facts.now).total_seconds() if retry_at else None,
        requeue_priority=Priority.ROUTINE
        if verdict in (Verdict.PERMANENT, Verdict.UNRECOGNIZED)
        else retry_priority(call.priority),
        drift=DriftAction.SCHEDULE if verdict is Verdict.OK and not call.clearing else DriftAction.KEEP,
    )


def _next_try(
    state: ObjectState, outcome: Outcome, facts: Facts, settings: OperatorSettings
) -> tuple[int, datetime | None]:
    """Failed tries in a row after this answer, and when to try again (None: no need). A refusal for good
    waits the permanent interval; a code this operator does not know backs off up to it; anything else
    (throttled, transient, a refusal fixed outside the object such as the clock) backs off up to the
    longest retry delay, and never retries sooner than CAMS asked."""
    if outcome.verdict is Verdict.OK:
        return 0, None
    if outcome.refused_for_good:
        return 0, facts.now + timedelta(seconds=settings.permanent_retry_seconds)
    attempts = state.attempts + 1
    cap = settings.permanent_retry_seconds if outcome.verdict is Verdict.UNRECOGNIZED else None
    delay = retry_delay(attempts, jitter=facts.jitter, settings=settings, cap=cap)
    # Never before CAMS said it would accept a call again (x-acs-retry-after).
    asked = outcome.answer.retry_after if outcome.answer else None
    return attempts, facts.now + timedelta(seconds=max(delay, asked or 0.0))


def _told(verdict: Verdict, ready: Condition, attempts: int) -> tuple[Event, ...]:
    if verdict is Verdict.OK:
        return (Event("Normal", "Applied", ready.message),)
    if verdict is Verdict.THROTTLED and attempts > 1:
        return ()  # throttling is told once per episode: one Event per retry would flood the API
    return (Event("Warning", ready.reason, ready.message),)


def unavailable(state: ObjectState, facts: Facts, outage: Outage) -> Plan:
    """CAMS fails every call of the object's account: wait for it in the lane, told once per outage; with
    the number's health."""
    return nh.with_number_health(state, _unavailable(state, facts, outage), facts.now)


def _unavailable(state: ObjectState, facts: Facts, outage: Outage) -> Plan:
    status = st.status_unavailable(
        previous=previous_status(state),
        generation=state.snapshot.generation,
        now=facts.now,
        cause=outage.cause,
        probe_interval=outage.probe_interval,
    )
    told = state.unavailable_episode == outage.episode
    events = () if told else (Event("Warning", "CamsUnavailable", status.conditions[0].message),)
    update = StateUpdate(attempts=0, unavailable_episode=outage.episode)
    return Plan("unavailable", status=status, events=events, update=update, hold=True)
