"""The plan: every branch, drift seen in a read, number health, and the claim, decided purely."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cams_webhook_operator.api import PhoneWebhookStatus
from cams_webhook_operator.api.status_models import LiveWebhook
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.decisions import plans, reconcile
from cams_webhook_operator.decisions import status as st
from cams_webhook_operator.decisions.plans import Facts, Priority
from cams_webhook_operator.decisions.state import DriftReport, ObjectState
from tests.unit.decisions.objects import (
    FINALIZER,
    IN_SYNC,
    NO_SECRET,
    NOW,
    OPERATOR,
    OTHER,
    READ,
    RECENTLY_REFUSED,
    REFUSED_TOKEN,
    SETTINGS,
    STS_DOWN,
    read_here,
    state_of,
    summary_of,
)

PLAN_CASES: list[tuple[str, ObjectState, dict[str, object], tuple[object, ...]]] = [
    ("new", state_of(), {}, (None, "call", None, None, ())),
    ("in-sync", state_of(status=IN_SYNC), {}, ("in_sync", None, None, "Applied", ())),
    (
        "invalid-spec",
        state_of(phoneNumber="+86 1"),
        {},
        ("stalled", None, None, "InvalidSpec", ("InvalidSpec",)),
    ),
    (
        "invalid-spec-deleting",
        state_of(phoneNumber="+86 1", deleting=True, finalizers=(FINALIZER,)),
        {},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    ("deleting-retain", state_of(deleting=True), {}, ("deleted", None, None, None, ())),
    (
        "deleting-clear",
        state_of(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,), deletionPolicy="Clear"),
        {},
        (None, "call", None, None, ()),
    ),
    (
        "deleting-clear-released-by-annotation",
        state_of(
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
        state_of(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,)),
        {"owner": OTHER},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    (
        "deleting-clear-never-applied",
        state_of(deleting=True, finalizers=(FINALIZER,)),
        {},
        ("released", None, "remove", None, ("NotCleared",)),
    ),
    (
        "deleting-clear-no-credentials",
        state_of(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,)),
        {"credentials": NO_SECRET},
        ("stalled", None, None, "SecretNotFound", ("SecretNotFound",)),
    ),
    (
        "paused",
        state_of(annotations={"camswebhook.io/paused": "true"}),
        {},
        ("paused", None, None, "Paused", ()),
    ),
    ("observe-unread", state_of(managementMode="Observe"), {}, ("observing", None, None, "Observing", ())),
    (
        "observe-read",
        read_here(state_of(status=READ, managementMode="Observe")),
        {},
        ("observed", None, None, "Observed", ()),
    ),
    (
        "observe-drops-the-finalizer",
        read_here(state_of(status=READ, managementMode="Observe", finalizers=(FINALIZER,))),
        {},
        ("observed", None, "remove", "Observed", ()),
    ),
    ("conflict", state_of(), {"owner": OTHER}, ("stalled", None, None, "Conflict", ("Conflict",))),
    (
        "conflict-told-once",
        state_of(
            status=st.status_stalled(
                previous=PhoneWebhookStatus(), generation=2, reason="Conflict", message="m", now=NOW
            )
        ),
        {"owner": OTHER},
        ("stalled", None, None, "Conflict", ()),
    ),
    (
        "secret-missing",
        state_of(),
        {"credentials": NO_SECRET},
        ("stalled", None, None, "SecretNotFound", ("SecretNotFound",)),
    ),
    (
        "sts-unreachable",
        state_of(),
        {"credentials": STS_DOWN},
        ("retrying", None, None, "RRSAFailed", ("RRSAFailed",)),
    ),
    (
        "sts-refused",
        state_of(),
        {"credentials": REFUSED_TOKEN},
        ("stalled", None, None, "RRSAFailed", ("RRSAFailed",)),
    ),
    ("refused-recently", state_of(status=RECENTLY_REFUSED), {}, ("waiting", None, None, None, ())),
    (
        "clear-policy-adds-the-finalizer",
        state_of(deletionPolicy="Clear"),
        {},
        (None, "call", "add", None, ()),
    ),
    (
        "retain-drops-the-finalizer",
        state_of(status=IN_SYNC, finalizers=(FINALIZER,)),
        {},
        ("in_sync", None, "remove", "Applied", ()),
    ),
    (
        "reconcile-request",
        state_of(status=IN_SYNC, annotations={"camswebhook.io/reconcile-requested-at": "r1"}),
        {},
        (None, "call", None, None, ()),
    ),
    (
        "reconcile-request-handled",
        state_of(
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
    assert summary_of(plan) == expected


def test_a_drifted_object_is_applied_although_its_fingerprint_matches() -> None:
    state = state_of(status=IN_SYNC)
    state.drifted = True
    plan = reconcile.plan(state, Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR), SETTINGS)
    assert plan.call is not None
    assert plan.call.priority is Priority.ROUTINE


def test_a_transient_credential_problem_backs_off_and_is_told_once() -> None:
    state = state_of()
    facts = Facts(now=NOW, priority=Priority.CHANGE, credentials=STS_DOWN, jitter=1.0)
    first = reconcile.plan(state, facts, SETTINGS)
    assert (first.update.attempts, first.requeue_after, first.requeue_priority) == (1, 1.0, Priority.RETRY)
    state.attempts = 1
    second = reconcile.plan(state, facts, SETTINGS)
    assert (second.update.attempts, second.requeue_after, second.events) == (2, 2.0, ())


def test_a_refused_rrsa_token_is_looked_at_again_after_the_longest_retry() -> None:
    plan = reconcile.plan(
        state_of(), Facts(now=NOW, priority=Priority.CHANGE, credentials=REFUSED_TOKEN), SETTINGS
    )
    assert plan.requeue_after == 300


def test_a_newer_version_that_changes_nothing_decided_keeps_the_epoch() -> None:
    state = state_of()
    newer = state_of(annotations={"unrelated": "yes"})
    assert state.seen_again(newer.snapshot, PhoneWebhookStatus()) == (None, False)
    assert state.epoch == 0


def test_a_spec_change_bumps_the_epoch_and_observe_mode_lets_the_claim_go() -> None:
    state = state_of()
    claim = state.snapshot.claim
    assert claim is not None
    observe = state_of(generation=3, managementMode="Observe")
    assert state.seen_again(observe.snapshot, PhoneWebhookStatus()) == (claim, True)
    assert state.epoch == 1
    manage = state_of(generation=4, managementMode="Manage")
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
    state = state_of(status=earlier, managementMode="Observe")
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
    state = state_of(status=IN_SYNC.model_copy(update={"live": green}))
    state.last_read = DriftReport(
        NOW, LiveNumber("8613800001234", "https://a.example/x", "", status="CONNECTED", quality_rating="RED")
    )
    decided = reconcile.plan(state, Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR), SETTINGS)
    health = [c for c in decided.status.conditions if c.type == "NumberHealthy"] if decided.status else []
    assert [(c.status, c.reason) for c in health] == [("False", "QualityRed")], decided.status
    assert [event.reason for event in decided.events] == ["QualityDegraded"], decided.events


def test_a_read_is_examined_for_drift_once_by_the_plan() -> None:
    """The drift loop only reads; the first plan to see a read decides what it means: a DriftDetected
    Warning, the metric and a call for a managed spec CAMS no longer holds. The same read never warns
    twice, and a spec changed after it makes it stale, not drifted."""
    state = state_of(status=IN_SYNC)
    state.last_read = DriftReport(NOW, LiveNumber("8613800001234", "https://changed.example/z", ""))
    facts = Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR)
    first = reconcile.plan(state, facts, SETTINGS)
    assert [event.reason for event in first.events] == ["DriftDetected"]
    assert (first.drift_detected, first.call is not None) == (True, True)
    assert (first.update.drifted, first.update.read_examined) == (True, NOW)
    state.apply(first.update)
    again = reconcile.plan(state, facts, SETTINGS)
    assert (again.events, again.drift_detected, again.call is not None) == ((), False, True), "still due"

    fresh = read_here(state_of(status=IN_SYNC))  # a read that matches the spec
    seen = reconcile.plan(fresh, facts, SETTINGS)
    assert (seen.events, seen.drift_detected, seen.call) == ((), False, None)
    fresh.apply(seen.update)
    fresh.seen_again(state_of(status=IN_SYNC, statusCallbackUrl="https://b.example/y").snapshot, IN_SYNC)
    changed = reconcile.plan(fresh, facts, SETTINGS)
    assert "DriftDetected" not in {event.reason for event in changed.events}, "the read is stale, not drift"
    assert changed.call is not None, "the new spec is applied as a change"


def test_a_read_sent_before_cams_accepted_the_last_apply_is_stale_not_drifted() -> None:
    """A read in flight while an update is answered may show what the update replaced (a rotated URL's old
    value): judged as drift, it would re-apply for nothing."""
    moved = LiveNumber("8613800001234", "https://old.example/before-the-apply", "")
    facts = Facts(now=NOW, priority=Priority.ROUTINE, credentials=OPERATOR)
    applied_at = NOW - timedelta(seconds=5)
    for sent, drifted in (
        (applied_at - timedelta(seconds=1), False),
        (applied_at + timedelta(seconds=1), True),
    ):
        state = state_of(status=IN_SYNC.model_copy(update={"last_sync_time": applied_at}))
        state.last_read = DriftReport(sent, moved)
        decided = reconcile.plan(state, facts, SETTINGS)
        assert (decided.drift_detected, decided.call is not None) == (drifted, drifted), sent
        assert decided.update.read_examined == sent, "looked at either way, once"
