"""What CAMS's answer means: after_call and unavailable, for the object and for its credentials."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cams_webhook_operator.api.status_models import LiveWebhook
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Answer, classify
from cams_webhook_operator.decisions import answers
from cams_webhook_operator.decisions.pacing import Outage
from cams_webhook_operator.decisions.plans import Facts, Plan, Priority
from cams_webhook_operator.decisions.state import DriftReport
from tests.unit.decisions.objects import (
    FINALIZER,
    IN_SYNC,
    NOW,
    OPERATOR,
    SETTINGS,
    call_of,
    state_of,
    summary_of,
)

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
    # A code this operator does not know is not final: the backoff grows past the longest retry delay
    # (300 s) up to the permanent interval (3600 s): 1 s x 2**11 on the 12th failure in a row.
    (
        "unrecognized",
        "Some.NewBusinessError",
        11,
        ("unrecognized", "UnrecognizedCode", ("UnrecognizedCode",), 2048.0, Priority.ROUTINE),
    ),
    # The clock is off: a person fixes it (Stalled), and it is tried again within minutes, not an hour.
    (
        "clock-skew",
        "InvalidTimeStamp.Expired",
        11,
        ("refused", "ClockSkew", ("ClockSkew",), 300.0, Priority.ROUTINE),
    ),
]


@pytest.mark.parametrize(
    ("code", "attempts", "expected"), [c[1:] for c in AFTER_CASES], ids=[c[0] for c in AFTER_CASES]
)
def test_after_call(code: str, attempts: int, expected: tuple[object, ...]) -> None:
    state = state_of()
    state.attempts = attempts
    outcome = classify(Answer(200 if code == "OK" else 400 if code != "ServiceUnavailable" else 503, code))
    plan = answers.after_call(
        state, call_of(state), outcome, Facts(now=NOW, priority=Priority.CHANGE), SETTINGS, None
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
    assert plan.update.settle_forced is (code in ("OK", "Ram.PermissionDeny", "InvalidTimeStamp.Expired"))


def _answered(code: str, http_status: int = 400) -> tuple[str, str, str | None, str | None]:
    """After CAMS answered `code` to an update: the Ready condition's reason and message, the request kept
    as refused for good (failed_fingerprint), and what the plan does with the claim."""
    state = state_of()
    plan = answers.after_call(
        state,
        call_of(state),
        classify(Answer(http_status, code)),
        Facts(now=NOW, priority=Priority.CHANGE),
        SETTINGS,
        None,
    )
    assert plan.status is not None
    ready = plan.status.conditions[0]
    return ready.reason, ready.message, plan.status.failed_fingerprint, plan.claim


def test_an_object_is_not_tried_again_before_cams_said_it_may() -> None:
    state = state_of()
    throttled = classify(Answer(429, "Throttling.User", retry_after=7.0))
    plan = answers.after_call(
        state, call_of(state), throttled, Facts(now=NOW, priority=Priority.CHANGE), SETTINGS, None
    )
    assert plan.requeue_after == 7.0, "x-acs-retry-after, not the first backoff of 1 s"


def test_a_clock_that_is_off_says_so_and_is_not_kept_as_a_refusal_of_the_request() -> None:
    reason, message, failed, claim = _answered("InvalidTimeStamp.Expired")
    assert reason == "ClockSkew"
    assert "correct the node's time (NTP)" in message
    assert "retrying at 2026-11-27 12:00:01Z" in message, "the first retry after a second, as a transient one"
    assert (failed, claim) == (None, None), "a restart after the fix tries at once; the claim is kept"


def test_an_incomplete_signature_is_our_defect_not_the_users_credentials() -> None:
    reason, message, failed, claim = _answered("IncompleteSignature")
    assert reason == "SignatureDefect"
    assert "a defect of this operator, not of the credentials" in message
    assert failed is not None
    assert claim is None, "the credentials are not blamed: the number stays claimed"


def test_a_permission_refusal_names_the_ram_action_to_grant() -> None:
    for code in ("NoPermission", "Forbidden.NoPermission", "Ram.PermissionDeny"):
        reason, message, _, claim = _answered(code, 403)
        assert reason == "PermissionDenied"
        assert "the action cams:UpdatePhoneWebhook" in message
        assert "camswebhook.io/reconcile-requested-at" in message, "how to retry at once after the grant"
        assert claim == "drop"


def test_an_unknown_code_is_shown_and_retried_not_taken_as_final() -> None:
    reason, message, failed, claim = _answered("Some.NewBusinessError")
    assert reason == "UnrecognizedCode"
    assert "a code this operator does not know (Some.NewBusinessError)" in message
    assert (failed, claim) == (None, None)


def test_a_failure_during_an_outage_holds_the_object_and_tells_it_once_per_outage() -> None:
    state = state_of()
    outage = Outage(episode=1, since=0.0, cause="ServiceUnavailable (HTTP 503)", probe_interval=2.0)
    failure = classify(Answer(503, "ServiceUnavailable"))
    facts = Facts(now=NOW, priority=Priority.CHANGE)
    plan = answers.after_call(state, call_of(state), failure, facts, SETTINGS, outage)
    assert (plan.result, plan.hold, plan.requeue_after) == ("unavailable", True, None)
    assert plan.status is not None
    assert plan.status.conditions[1].reason == "CamsUnavailable"
    assert "every 2 s" in plan.status.conditions[0].message
    assert [e.reason for e in plan.events] == ["CamsUnavailable"]
    state.unavailable_episode = 1
    assert answers.unavailable(state, facts, outage).events == ()
    assert answers.unavailable(state, facts, replace(outage, episode=2)).events != ()


def test_a_cleared_object_is_released() -> None:
    state = state_of(status=IN_SYNC, deleting=True, finalizers=(FINALIZER,))
    plan = answers.after_call(
        state,
        call_of(state, clearing=True),
        classify(Answer(200, "OK")),
        Facts(now=NOW, priority=Priority.CHANGE),
        SETTINGS,
        None,
    )
    assert summary_of(plan) == ("released", None, "remove", None, ("Cleared",))


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
    state = state_of()
    resolved = replace(OPERATOR, source=source, renewable=source.startswith("rrsa:"))
    call = replace(call_of(state), resolved=resolved)
    outcome = classify(Answer(400, code))
    plan = answers.after_call(state, call, outcome, Facts(now=NOW, priority=Priority.CHANGE), SETTINGS, None)
    assert (plan.result, plan.renew_credentials, plan.reread_secret, plan.claim == "drop") == expected


def test_an_answer_during_an_outage_tells_a_health_change_once() -> None:
    """after_call and unavailable each end with the number's health; an answer that finds CAMS out goes
    through both, and a change of rating is still one Event."""
    green = LiveWebhook(
        status_callback_url="https://a.example/x", number_status="CONNECTED", quality_rating="GREEN"
    )
    state = state_of(status=IN_SYNC.model_copy(update={"live": green}))
    state.last_read = DriftReport(
        NOW, LiveNumber("8613800001234", "https://a.example/x", "", status="CONNECTED", quality_rating="RED")
    )
    outage = Outage(episode=1, since=0.0, cause="ServiceUnavailable (HTTP 503)", probe_interval=2.0)
    failure = classify(Answer(503, "ServiceUnavailable"))
    facts = Facts(now=NOW, priority=Priority.CHANGE)
    decided = answers.after_call(state, call_of(state_of()), failure, facts, SETTINGS, outage)
    assert [event.reason for event in decided.events] == ["CamsUnavailable", "QualityDegraded"]


def _after_clear(read: answers.ClearRead | None) -> Plan:
    state = state_of(finalizers=(FINALIZER,), deleting=True)
    return answers.after_call(
        state,
        call_of(state_of(), clearing=True),
        classify(Answer(200, "OK")),
        Facts(now=NOW, priority=Priority.CHANGE),
        SETTINGS,
        None,
        clear_read=read,
    )


def test_a_clear_lets_the_object_go_only_once_the_read_shows_no_url() -> None:
    number = "8613800001234"
    cleared = _after_clear(answers.ClearRead(classify(Answer(200, "OK")), LiveNumber(number, "", "")))
    assert (cleared.finalizer, [e.reason for e in cleared.events]) == ("remove", ["Cleared"])
    unlisted = _after_clear(answers.ClearRead(classify(Answer(200, "OK")), None))
    assert unlisted.finalizer == "remove", "a space that no longer lists the number holds nothing for it"

    kept = _after_clear(
        answers.ClearRead(classify(Answer(200, "OK")), LiveNumber(number, "", "https://in.example/x?k=s"))
    )
    assert kept.finalizer is None
    assert kept.status is not None
    stalled = kept.status.conditions[2]
    assert (stalled.status, stalled.reason) == ("True", "ClearNotApplied")
    assert "UpCallbackUrl https://in.example/redacted?redacted" in stalled.message
    assert kept.requeue_after == 3600.0

    unverified = _after_clear(answers.ClearRead(classify(Answer(503, "ServiceUnavailable")), None))
    assert unverified.finalizer is None
    assert unverified.status is not None
    assert unverified.status.conditions[1].reason == "ClearNotVerified"
    assert unverified.requeue_after == 1.0, "cleared again, with its read, after a backoff"
    refused = _after_clear(answers.ClearRead(classify(Answer(403, "Ram.PermissionDeny")), None))
    assert refused.finalizer is None
    assert refused.requeue_after == 3600.0, "a read refused for good is not tried again every few seconds"
