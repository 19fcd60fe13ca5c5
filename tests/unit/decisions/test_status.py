"""Status for each verdict: conditions as kstatus reads them, CAMS's answer, transition times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cams_webhook_operator.api import PhoneWebhookStatus
from cams_webhook_operator.cams.outcomes import Answer, classify, no_answer
from cams_webhook_operator.decisions import status as st

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _after(answer: Answer | None, previous: PhoneWebhookStatus | None = None) -> PhoneWebhookStatus:
    outcome = classify(answer) if answer else no_answer("timed out")
    return st.status_after_outcome(
        previous=previous or PhoneWebhookStatus(),
        generation=3,
        phone_number="8613800001234",
        fingerprint="F",
        outcome=outcome,
        now=NOW,
        retry_at=None if answer and answer.code == "OK" else NOW + timedelta(seconds=30),
    )


def _conditions(status: PhoneWebhookStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_success_is_ready_with_cams_answer() -> None:
    status = _after(Answer(200, "OK", request_id="R1"))
    assert _conditions(status) == {
        "Ready": ("True", "Applied"),
        "Reconciling": ("False", "Applied"),
        "Stalled": ("False", "Applied"),
    }
    assert (status.code, status.request_id, status.observed_generation) == ("OK", "R1", 3)
    assert status.applied_fingerprint == "F"
    assert status.last_sync_time == NOW


def test_throttled_is_reconciling_and_says_when_it_retries() -> None:
    status = _after(Answer(400, "System.LimitControl", "The system is under flow control."))
    assert _conditions(status)["Reconciling"] == ("True", "Throttled")
    assert _conditions(status)["Ready"] == ("False", "Throttled")
    assert status.next_attempt_time == NOW + timedelta(seconds=30)
    assert "retrying at 2026-11-27 12:00:30Z" in status.conditions[0].message
    assert status.applied_fingerprint is None


def test_permanent_refusal_is_stalled_with_cams_message() -> None:
    status = _after(
        Answer(
            400,
            "Ram.PermissionDeny",
            "You are not authorized to perform the operation.",
            access_denied_detail="detail",
        )
    )
    assert _conditions(status)["Stalled"] == ("True", "PermissionDenied")
    assert "You are not authorized" in status.conditions[0].message
    assert (status.code, status.access_denied_detail, status.failed_fingerprint) == (
        "Ram.PermissionDeny",
        "detail",
        "F",
    )


def test_no_answer_clears_the_previous_answer() -> None:
    previous = _after(Answer(200, "OK", request_id="R1"))
    status = _after(None, previous)
    assert (status.code, status.request_id) == (None, None)
    assert "timed out" in status.conditions[0].message


def test_transition_time_is_kept_while_a_condition_holds() -> None:
    first = _after(Answer(400, "System.LimitControl"))
    later = st.status_after_outcome(
        previous=first,
        generation=3,
        phone_number="8613800001234",
        fingerprint="F",
        outcome=classify(Answer(400, "System.LimitControl")),
        now=NOW + HOUR,
        retry_at=None,
    )
    assert [c.last_transition_time for c in later.conditions] == [NOW, NOW, NOW]
    recovered = st.status_after_outcome(
        previous=later,
        generation=3,
        phone_number="8613800001234",
        fingerprint="F",
        outcome=classify(Answer(200, "OK")),
        now=NOW + 2 * HOUR,
        retry_at=None,
    )
    assert [c.last_transition_time for c in recovered.conditions] == [NOW + 2 * HOUR, NOW + 2 * HOUR, NOW]


def test_stalled_problem_clears_cams_answer_and_follows_generation() -> None:
    status = st.status_stalled(
        previous=_after(Answer(200, "OK")), generation=4, reason="SecretNotFound", message="m", now=NOW
    )
    assert _conditions(status)["Stalled"] == ("True", "SecretNotFound")
    assert (status.code, status.observed_generation) == (None, 4)
    assert {c.observed_generation for c in status.conditions} == {4}


def test_a_forced_call_is_echoed_only_once_cams_answered_for_good() -> None:
    throttled = st.status_after_outcome(
        previous=PhoneWebhookStatus(),
        generation=1,
        phone_number="1",
        fingerprint="F",
        outcome=classify(Answer(400, "System.LimitControl")),
        now=NOW,
        retry_at=NOW,
        reconcile_request="r1",
    )
    assert throttled.last_handled_reconcile_at is None
    applied = st.status_after_outcome(
        previous=throttled,
        generation=1,
        phone_number="1",
        fingerprint="F",
        outcome=classify(Answer(200, "OK")),
        now=NOW,
        retry_at=None,
        reconcile_request="r1",
    )
    assert applied.last_handled_reconcile_at == "r1"
