"""Pure decisions: when to call CAMS, and what status says afterwards."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.api.status_models import LiveWebhook
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Answer, classify
from cams_webhook_operator.decisions import answers, plans, reconcile
from cams_webhook_operator.decisions import status as st
from cams_webhook_operator.decisions.pacing import Outage
from cams_webhook_operator.decisions.plans import Facts, Priority
from cams_webhook_operator.decisions.state import Claimant, DriftReport, ObjectState, Snapshot
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPEC = PhoneWebhookSpec.model_validate(
    {"custSpaceId": "s", "phoneNumber": "8613800001234", "statusCallbackUrl": "https://a.example/x"}
)


def _fingerprint(spec: PhoneWebhookSpec = SPEC, account: str = "ak:A") -> str:
    return plans.fingerprint(plans.webhook_update(spec), account=account)


def test_fingerprint_changes_with_spec_and_account_only() -> None:
    other_url = SPEC.model_copy(update={"status_callback_url": "https://b.example/x"})
    assert _fingerprint() == _fingerprint()
    assert _fingerprint() != _fingerprint(other_url)
    assert _fingerprint() != _fingerprint(account="ak:B")


def test_sts_credentials_are_identified_by_their_source_not_their_rotating_key() -> None:
    first = Resolved(Credentials("STS.one", "s1", "t1"), "secret:a/b")
    second = Resolved(Credentials("STS.two", "s2", "t2"), "secret:a/b")
    assert first.account == second.account == "sts:secret:a/b"
    assert Resolved(Credentials("LTAI1", "s"), "x").account == "ak:LTAI1"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (PhoneWebhookStatus(), plans.Action.APPLY),
        (PhoneWebhookStatus(applied_fingerprint="F"), plans.Action.IN_SYNC),
        (PhoneWebhookStatus(applied_fingerprint="OLD"), plans.Action.APPLY),
        (
            PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW - timedelta(minutes=5)),
            plans.Action.WAIT,
        ),
        (
            PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW - 2 * HOUR),
            plans.Action.APPLY,
        ),
        (PhoneWebhookStatus(failed_fingerprint="OTHER", last_attempt_time=NOW), plans.Action.APPLY),
    ],
    ids=["new", "in-sync", "spec-changed", "refused-recently", "refused-long-ago", "refused-other-spec"],
)
def test_whether_to_call(status: PhoneWebhookStatus, action: plans.Action) -> None:
    assert (
        plans.whether_to_call(fingerprint="F", status=status, now=NOW, permanent_retry=HOUR).action is action
    )


def test_a_changed_secret_retries_a_recent_refusal_but_not_an_in_sync_object() -> None:
    refused = PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW)
    in_sync = PhoneWebhookStatus(applied_fingerprint="F")
    whether_to_call = plans.whether_to_call
    assert whether_to_call(
        fingerprint="F", status=refused, now=NOW, permanent_retry=HOUR, secret_changed=True
    ).action is (plans.Action.APPLY)
    assert whether_to_call(
        fingerprint="F", status=in_sync, now=NOW, permanent_retry=HOUR, secret_changed=True
    ).action is (plans.Action.IN_SYNC)


def test_a_reconcile_request_applies_even_in_sync() -> None:
    in_sync = PhoneWebhookStatus(applied_fingerprint="F")
    decision = plans.whether_to_call(
        fingerprint="F", status=in_sync, now=NOW, permanent_retry=HOUR, reconcile_requested=True
    )
    assert decision.action is plans.Action.APPLY


# --- plans: every branch of the one decision, as a table -------------------------------------------------

OPERATOR = Resolved(Credentials("LTAI-op", "secret"), "operator")
SETTINGS = OperatorSettings(retry_base_seconds=1, retry_max_seconds=300, permanent_retry_seconds=3600)
OTHER = Claimant("2026-11-27T09:00:00Z", "other-team", "first")
APPLIED = plans.fingerprint(plans.webhook_update(SPEC), account=OPERATOR.account)
FINALIZER = "camswebhook.io/clear-webhook"


def _state(
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


def _summary(plan: plans.Plan) -> tuple[object, ...]:
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


def _read_here(state: ObjectState) -> ObjectState:
    """The state as after a read of the space by this process (the one READ's status reports)."""
    state.last_read = DriftReport(NOW, LiveNumber("8613800001234", "https://a.example/x", ""))
    return state


REFUSED_TOKEN = CredentialProblem("RRSAFailed", "STS refused", transient=False)
STS_DOWN = CredentialProblem("RRSAFailed", "could not reach STS", transient=True)
NO_SECRET = CredentialProblem("SecretNotFound", "Secret ns/c was not found")
PLAN_CASES: list[tuple[str, ObjectState, dict[str, object], tuple[object, ...]]] = [
    ("new", _state(), {}, (None, "call", None, None, ())),
    ("in-sync", _state(status=IN_SYNC), {}, ("in_sync", None, None, "Applied", ())),
    (
        "invalid-spec",
        _state(phoneNumber="+86 1"),
        {},
        ("stalled", None, None, "InvalidSpec", ("InvalidSpec",)),
    ),
    (
        "invalid-spec-deleting",
        _state(phoneNumber="+86 1", deleting=True, finalizers=(FINALIZER,)),
        {},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    ("deleting-retain", _state(deleting=True), {}, ("deleted", None, None, None, ())),
    (
        "deleting-clear",
        _state(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,), deletionPolicy="Clear"),
        {},
        (None, "call", None, None, ()),
    ),
    (
        "deleting-clear-released-by-annotation",
        _state(
            status=IN_SYNC,
            deleting=True,
            finalizers=(FINALIZER,),
            annotations={"camswebhook.io/release-without-clearing": "true"},
        ),
        {},
        ("released", None, "remove", None, ("Released",)),
    ),
    (
        "deleting-clear-another-owns",
        _state(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,)),
        {"owner": OTHER},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    (
        "deleting-clear-never-applied",
        _state(deleting=True, finalizers=(FINALIZER,)),
        {},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    (
        "deleting-clear-no-credentials",
        _state(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,)),
        {"credentials": NO_SECRET},
        ("stalled", None, None, "SecretNotFound", ("SecretNotFound",)),
    ),
    (
        "paused",
        _state(annotations={"camswebhook.io/paused": "true"}),
        {},
        ("paused", None, None, "Paused", ()),
    ),
    ("observe-unread", _state(managementMode="Observe"), {}, ("observing", None, None, "Observing", ())),
    (
        "observe-read",
        _read_here(_state(status=READ, managementMode="Observe")),
        {},
        ("observed", None, None, "Observed", ()),
    ),
    (
        "observe-drops-the-finalizer",
        _read_here(_state(status=READ, managementMode="Observe", finalizers=(FINALIZER,))),
        {},
        ("observed", None, "remove", "Observed", ()),
    ),
    ("conflict", _state(), {"owner": OTHER}, ("stalled", None, None, "Conflict", ("Conflict",))),
    (
        "conflict-told-once",
        _state(
            status=st.status_stalled(
                previous=PhoneWebhookStatus(), generation=2, reason="Conflict", message="m", now=NOW
            )
        ),
        {"owner": OTHER},
        ("stalled", None, None, "Conflict", ()),
    ),
    (
        "secret-missing",
        _state(),
        {"credentials": NO_SECRET},
        ("stalled", None, None, "SecretNotFound", ("SecretNotFound",)),
    ),
    (
        "sts-unreachable",
        _state(),
        {"credentials": STS_DOWN},
        ("retrying", None, None, "RRSAFailed", ("RRSAFailed",)),
    ),
    (
        "sts-refused",
        _state(),
        {"credentials": REFUSED_TOKEN},
        ("stalled", None, None, "RRSAFailed", ("RRSAFailed",)),
    ),
    ("refused-recently", _state(status=RECENTLY_REFUSED), {}, ("waiting", None, None, None, ())),
    ("clear-policy-adds-the-finalizer", _state(deletionPolicy="Clear"), {}, (None, "call", "add", None, ())),
    (
        "retain-drops-the-finalizer",
        _state(status=IN_SYNC, finalizers=(FINALIZER,)),
        {},
        ("in_sync", None, "remove", "Applied", ()),
    ),
    (
        "reconcile-request",
        _state(status=IN_SYNC, annotations={"camswebhook.io/reconcile-requested-at": "r1"}),
        {},
        (None, "call", None, None, ()),
    ),
    (
        "reconcile-request-handled",
        _state(
            status=IN_SYNC.model_copy(update={"last_handled_reconcile_at": "r1"}),
            annotations={"camswebhook.io/reconcile-requested-at": "r1"},
        ),
        {},
        ("in_sync", None, None, "Applied", ()),
    ),
]


@pytest.mark.parametrize(
    ("state", "facts", "expected"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES]
)
def test_plan(state: ObjectState, facts: dict[str, Any], expected: tuple[object, ...]) -> None:
    given = {"credentials": OPERATOR, **facts}
    plan = reconcile.plan(state, Facts(now=NOW, priority=Priority.CHANGE, **given), SETTINGS)
    assert _summary(plan) == expected


def test_a_drifted_object_is_applied_although_its_fingerprint_matches() -> None:
    state = _state(status=IN_SYNC)
    state.drifted = True
    plan = reconcile.plan(state, Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR), SETTINGS)
    assert plan.call is not None
    assert plan.call.priority is Priority.ROUTINE


def test_a_transient_credential_problem_backs_off_and_is_told_once() -> None:
    state = _state()
    facts = Facts(now=NOW, priority=Priority.CHANGE, credentials=STS_DOWN, jitter=1.0)
    first = reconcile.plan(state, facts, SETTINGS)
    assert (first.update.attempts, first.requeue_after, first.requeue_priority) == (1, 1.0, Priority.RETRY)
    state.attempts = 1
    second = reconcile.plan(state, facts, SETTINGS)
    assert (second.update.attempts, second.requeue_after, second.events) == (2, 2.0, ())


def test_a_refused_rrsa_token_is_looked_at_again_after_the_longest_retry() -> None:
    plan = reconcile.plan(
        _state(), Facts(now=NOW, priority=Priority.CHANGE, credentials=REFUSED_TOKEN), SETTINGS
    )
    assert plan.requeue_after == 300


def _call(state: ObjectState, *, clearing: bool = False) -> plans.Call:
    plan = reconcile.plan(state, Facts(now=NOW, priority=Priority.CHANGE, credentials=OPERATOR), SETTINGS)
    assert plan.call is not None
    return replace(plan.call, clearing=clearing)


AFTER_CASES = [
    ("ok", "OK", 0, ("applied", "Applied", ("Applied",), None, None)),
    (
        "throttled-first",
        "System.LimitControl",
        0,
        ("throttled", "Throttled", ("Throttled",), 1.0, Priority.RETRY),
    ),
    ("throttled-again", "System.LimitControl", 1, ("throttled", "Throttled", (), 2.0, Priority.RETRY)),
    (
        "transient",
        "ServiceUnavailable",
        0,
        ("transient", "TransientError", ("TransientError",), 1.0, Priority.RETRY),
    ),
    (
        "refused",
        "Ram.PermissionDeny",
        3,
        ("refused", "PermissionDenied", ("PermissionDenied",), 3600.0, Priority.ROUTINE),
    ),
]


@pytest.mark.parametrize(
    ("code", "attempts", "expected"), [c[1:] for c in AFTER_CASES], ids=[c[0] for c in AFTER_CASES]
)
def test_after_call(code: str, attempts: int, expected: tuple[object, ...]) -> None:
    state = _state()
    state.attempts = attempts
    outcome = classify(Answer(200 if code == "OK" else 400 if code != "ServiceUnavailable" else 503, code))
    plan = answers.after_call(
        state, _call(state), outcome, Facts(now=NOW, priority=Priority.CHANGE), SETTINGS, None
    )
    assert plan.status is not None
    ready = plan.status.conditions[0]
    assert (
        plan.result,
        ready.reason,
        tuple(e.reason for e in plan.events),
        plan.requeue_after,
        plan.requeue_priority if plan.requeue_after is not None else None,
    ) == expected
    assert plan.update.settle_forced is (code in ("OK", "Ram.PermissionDeny"))


def test_a_failure_during_an_outage_holds_the_object_and_tells_it_once_per_outage() -> None:
    state = _state()
    outage = Outage(episode=1, since=0.0, cause="ServiceUnavailable (HTTP 503)", probe_interval=2.0)
    failure = classify(Answer(503, "ServiceUnavailable"))
    facts = Facts(now=NOW, priority=Priority.CHANGE)
    plan = answers.after_call(state, _call(state), failure, facts, SETTINGS, outage)
    assert (plan.result, plan.hold, plan.requeue_after) == ("unavailable", True, None)
    assert plan.status is not None
    assert plan.status.conditions[1].reason == "CamsUnavailable"
    assert "every 2 s" in plan.status.conditions[0].message
    assert [e.reason for e in plan.events] == ["CamsUnavailable"]
    state.unavailable_episode = 1
    assert answers.unavailable(state, facts, outage).events == ()
    assert answers.unavailable(state, facts, replace(outage, episode=2)).events != ()


def test_a_cleared_object_is_released() -> None:
    state = _state(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,))
    plan = answers.after_call(
        state,
        _call(state, clearing=True),
        classify(Answer(200, "OK")),
        Facts(now=NOW, priority=Priority.CHANGE),
        SETTINGS,
        None,
    )
    assert _summary(plan) == ("released", None, "remove", None, ("Cleared",))


def test_a_newer_version_that_changes_nothing_decided_keeps_the_epoch() -> None:
    state = _state()
    newer = _state(annotations={"unrelated": "yes"})
    assert state.seen_again(newer.snapshot, PhoneWebhookStatus()) == (None, False)
    assert state.epoch == 0


def test_a_spec_change_bumps_the_epoch_and_observe_mode_lets_the_claim_go() -> None:
    state = _state()
    claim = state.snapshot.claim
    assert claim is not None
    observe = _state(generation=3, managementMode="Observe")
    assert state.seen_again(observe.snapshot, PhoneWebhookStatus()) == (claim, True)
    assert state.epoch == 1
    manage = _state(generation=4, managementMode="Manage")
    assert state.seen_again(manage.snapshot, PhoneWebhookStatus()) == (None, True)
    assert state.epoch == 2


def test_after_a_restart_an_observer_keeps_its_verdict_shows_urls_redacted_and_is_read_at_once() -> None:
    """A status from an earlier process (or version): its InSync stands until this process reads the
    space, the read comes at the next tick, and URLs written whole by an earlier version are redacted."""
    differs = st.condition([], "InSync", False, reason="Differs", message="m", now=NOW, generation=2)
    earlier = PhoneWebhookStatus(
        observed_generation=2,
        last_drift_check_time=NOW,
        live=LiveWebhook(status_callback_url="https://a.example/x?token=t0k"),
        conditions=[differs],
    )
    state = _state(status=earlier, managementMode="Observe")
    decided = reconcile.plan(state, Facts(now=NOW, priority=Priority.CHANGE, credentials=OPERATOR), SETTINGS)
    assert decided.drift is plans.DriftAction.NOW
    assert decided.status is not None
    assert decided.status.live is not None
    assert decided.status.live.status_callback_url == "https://a.example/redacted?redacted"
    assert [(c.type, c.reason) for c in decided.status.conditions] == [("InSync", "Differs")]


def test_the_plan_itself_carries_the_numbers_health() -> None:
    """Number health is decided in the plan (no later step adds it): a read that shows a RED number puts a
    NumberHealthy condition and an Event into the plan that `plan` returns."""
    green = LiveWebhook(
        status_callback_url="https://a.example/x", number_status="CONNECTED", quality_rating="GREEN"
    )
    state = _state(status=IN_SYNC.model_copy(update={"live": green}))
    state.last_read = DriftReport(
        NOW, LiveNumber("8613800001234", "https://a.example/x", "", status="CONNECTED", quality_rating="RED")
    )
    decided = reconcile.plan(state, Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR), SETTINGS)
    health = [c for c in decided.status.conditions if c.type == "NumberHealthy"] if decided.status else []
    assert [(c.status, c.reason) for c in health] == [("False", "QualityRed")], decided.status
    assert [event.reason for event in decided.events] == ["QualityDegraded"], decided.events


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        # RRSA's token is the operator's to renew: try again, nothing refused, nothing let go.
        ("rrsa:acs:ram::1:role/r", "InvalidSecurityToken", ("transient", True, False, False)),
        # A key from a Secret: read the Secret again (rotated?), and let go of the number for now.
        ("secret:ns/key", "InvalidSecurityToken", ("refused", False, True, True)),
        ("secret:ns/key", "InvalidAccessKeyId.NotFound", ("refused", False, True, True)),
        ("operator", "InvalidAccessKeyId.NotFound", ("refused", False, False, True)),
        ("secret:ns/key", "Ram.PermissionDeny", ("refused", False, False, True)),
        ("secret:ns/key", "System.LimitControl", ("throttled", False, False, False)),
    ],
)
def test_what_an_answer_asks_of_the_credentials_is_in_the_plan(
    source: str, code: str, expected: tuple[object, ...]
) -> None:
    state = _state()
    call = replace(_call(state), resolved=replace(OPERATOR, source=source))
    outcome = classify(Answer(400, code))
    plan = answers.after_call(state, call, outcome, Facts(now=NOW, priority=Priority.CHANGE), SETTINGS, None)
    assert (plan.result, plan.renew_credentials, plan.reread_secret, plan.let_go) == expected


def test_a_read_is_examined_for_drift_once_by_the_plan() -> None:
    """The drift loop only reads; the first plan to see a read decides what it means: a DriftDetected
    Warning, the metric and a call for a managed spec CAMS no longer holds. The same read never warns
    twice, and a spec changed after it makes it stale, not drifted."""
    state = _state(status=IN_SYNC)
    state.last_read = DriftReport(NOW, LiveNumber("8613800001234", "https://changed.example/z", ""))
    facts = Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR)
    first = reconcile.plan(state, facts, SETTINGS)
    assert [event.reason for event in first.events] == ["DriftDetected"]
    assert (first.drift_detected, first.call is not None) == (True, True)
    assert (first.update.drifted, first.update.read_examined) == (True, NOW)
    state.apply(first.update)
    again = reconcile.plan(state, facts, SETTINGS)
    assert (again.events, again.drift_detected, again.call is not None) == ((), False, True), "still due"

    fresh = _read_here(_state(status=IN_SYNC))  # a read that matches the spec
    seen = reconcile.plan(fresh, facts, SETTINGS)
    assert (seen.events, seen.drift_detected, seen.call) == ((), False, None)
    fresh.apply(seen.update)
    fresh.seen_again(_state(status=IN_SYNC, statusCallbackUrl="https://b.example/y").snapshot, IN_SYNC)
    changed = reconcile.plan(fresh, facts, SETTINGS)
    assert "DriftDetected" not in {event.reason for event in changed.events}, "the read is stale, not drift"
    assert changed.call is not None, "the new spec is applied as a change"


def test_an_answer_during_an_outage_tells_a_health_change_once() -> None:
    """after_call and unavailable each end with the number's health; an answer that finds CAMS out goes
    through both, and a change of rating is still one Event."""
    green = LiveWebhook(
        status_callback_url="https://a.example/x", number_status="CONNECTED", quality_rating="GREEN"
    )
    state = _state(status=IN_SYNC.model_copy(update={"live": green}))
    state.last_read = DriftReport(
        NOW, LiveNumber("8613800001234", "https://a.example/x", "", status="CONNECTED", quality_rating="RED")
    )
    outage = Outage(episode=1, since=0.0, cause="ServiceUnavailable (HTTP 503)", probe_interval=2.0)
    failure = classify(Answer(503, "ServiceUnavailable"))
    facts = Facts(now=NOW, priority=Priority.CHANGE)
    decided = answers.after_call(state, _call(_state()), failure, facts, SETTINGS, outage)
    assert [event.reason for event in decided.events] == ["CamsUnavailable", "QualityDegraded"]
