"""What CAMS's answer means for an object (`after_call`), and what an object is told while CAMS is out
(`unavailable`), as plans. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cams_webhook_operator.api.models import RELEASE_ANNOTATION, timestamp
from cams_webhook_operator.api.status_models import Condition
from cams_webhook_operator.cams.messages import LiveNumber
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
from cams_webhook_operator.tenancy.callback_urls import redact
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


@dataclass(frozen=True)
class ClearRead:
    """The read of the space made right after CAMS accepted a clear: did it take? (Nothing documents
    that an empty URL clears one; CAMS might take it as "not given".)"""

    outcome: Outcome
    live: LiveNumber | None  # what the space holds for the number; None: it does not list it


def after_call(
    state: ObjectState,
    call: Call,
    outcome: Outcome,
    facts: Facts,
    settings: OperatorSettings,
    outage: Outage | None,
    clear_read: ClearRead | None = None,
) -> Plan:
    """What CAMS's answer to `call` means for the object and for the call's credentials, with the number's
    health. `outage`: the account's breaker is open (CAMS is out); `clear_read`: for a clear CAMS
    accepted, the read that verifies it."""
    renew = token_to_renew(outcome, call.resolved)
    if renew:  # RRSA's token is ours to renew: exchange again and try again, no refusal to show
        outcome = Outcome(Verdict.TRANSIENT, outcome.reason, outcome.answer)
    verdict = outcome.verdict
    if call.clearing and verdict is Verdict.OK:
        decided = _cleared(state, call, clear_read, facts, settings)
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


def _cleared(
    state: ObjectState, call: Call, read: ClearRead | None, facts: Facts, settings: OperatorSettings
) -> Plan:
    """CAMS accepted the clear: the object goes once the read shows no callback URL for the number. If
    CAMS still holds one, it stays (its finalizer kept) and says what to do; if the read failed, the clear
    is tried again, with its read, after a backoff."""
    number = call.update.phone_number
    if read is not None and read.outcome.verdict is not Verdict.OK:
        # A read refused for good (the key lost cams:QueryChatappPhoneNumbers) is not asked again soon: each
        # try is another clear and another read.
        attempts = 0 if read.outcome.refused_for_good else state.attempts + 1
        delay = settings.permanent_retry_seconds if read.outcome.refused_for_good else None
        retry_at = facts.now + timedelta(
            seconds=delay or retry_delay(attempts, jitter=facts.jitter, settings=settings)
        )
        said = read.outcome.answer.code if read.outcome.answer else read.outcome.error
        message = (
            f"CAMS accepted clearing the webhook of {number}, but the read that verifies it failed ({said}); "
            f"clearing again at {timestamp(retry_at)}"
        )
        return _not_cleared(state, facts, "ClearNotVerified", message, retry_at, attempts=attempts)
    live = read.live if read is not None else None
    urls = (
        (("StatusCallbackUrl", live.status_callback_url), ("UpCallbackUrl", live.up_callback_url))
        if live
        else ()
    )
    held = {name: redact(url) for name, url in urls if url}
    if not held:
        return released(state.snapshot, "Cleared", f"Cleared the webhook of {number} in CAMS before deletion")
    retry_at = facts.now + timedelta(seconds=settings.permanent_retry_seconds)
    message = (
        f"CAMS answered OK to clearing the webhook of {number}, but still holds "
        + ", ".join(f"{name} {url}" for name, url in held.items())
        + " (it may take an empty value as not given). Remove them in the CAMS console, then annotate the "
        f"object {RELEASE_ANNOTATION}=true to let it go; clearing is tried again at {timestamp(retry_at)}"
    )
    return _not_cleared(state, facts, "ClearNotApplied", message, retry_at, attempts=0)


def _not_cleared(
    state: ObjectState, facts: Facts, reason: str, message: str, retry_at: datetime, *, attempts: int
) -> Plan:
    """The object stays, its finalizer kept: Stalled when a person must act, else Reconciling."""
    previous, generation = previous_status(state), state.snapshot.generation
    if reason == "ClearNotApplied":
        status = st.status_stalled(
            previous=previous, generation=generation, reason=reason, message=message, now=facts.now
        )
    else:
        status = st.status_retrying(
            previous=previous,
            generation=generation,
            reason=reason,
            message=message,
            now=facts.now,
            retry_at=retry_at,
        )
    return Plan(
        "refused" if reason == "ClearNotApplied" else "transient",
        status=status,
        events=(Event("Warning", reason, message),),
        update=StateUpdate(attempts=attempts),
        requeue_after=(retry_at - facts.now).total_seconds(),
        requeue_priority=Priority.ROUTINE,
    )


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
