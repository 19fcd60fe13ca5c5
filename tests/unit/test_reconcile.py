"""Pure decisions: when to call CAMS, and what status says afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cams_webhook_operator import reconcile
from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.cams.client import LiveNumber
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Answer, classify, no_answer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPEC = PhoneWebhookSpec.model_validate(
    {"custSpaceId": "s", "phoneNumber": "8613800001234", "statusCallbackUrl": "https://a.example/x"}
)


def _fingerprint(spec: PhoneWebhookSpec = SPEC, account: str = "ak:A") -> str:
    return reconcile.fingerprint(reconcile.webhook_update(spec), account=account)


def test_fingerprint_changes_with_spec_and_account_only() -> None:
    other_url = SPEC.model_copy(update={"status_callback_url": "https://b.example/x"})
    assert _fingerprint() == _fingerprint()
    assert _fingerprint() != _fingerprint(other_url)
    assert _fingerprint() != _fingerprint(account="ak:B")


def test_sts_credentials_are_identified_by_their_source_not_their_rotating_key() -> None:
    first = Credentials("STS.one", "s1", "t1")
    second = Credentials("STS.two", "s2", "t2")
    assert reconcile.account_identity(first, source="secret:a/b") == reconcile.account_identity(
        second, source="secret:a/b"
    )
    assert reconcile.account_identity(Credentials("LTAI1", "s"), source="x") == "ak:LTAI1"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (PhoneWebhookStatus(), reconcile.Action.APPLY),
        (PhoneWebhookStatus(applied_fingerprint="F"), reconcile.Action.IN_SYNC),
        (PhoneWebhookStatus(applied_fingerprint="OLD"), reconcile.Action.APPLY),
        (
            PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW - timedelta(minutes=5)),
            reconcile.Action.WAIT,
        ),
        (
            PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW - 2 * HOUR),
            reconcile.Action.APPLY,
        ),
        (PhoneWebhookStatus(failed_fingerprint="OTHER", last_attempt_time=NOW), reconcile.Action.APPLY),
    ],
    ids=["new", "in-sync", "spec-changed", "refused-recently", "refused-long-ago", "refused-other-spec"],
)
def test_decide(status: PhoneWebhookStatus, action: reconcile.Action) -> None:
    assert reconcile.decide(fingerprint="F", status=status, now=NOW, permanent_retry=HOUR).action is action


def test_a_changed_secret_retries_a_recent_refusal_but_not_an_in_sync_object() -> None:
    refused = PhoneWebhookStatus(failed_fingerprint="F", last_attempt_time=NOW)
    in_sync = PhoneWebhookStatus(applied_fingerprint="F")
    decide = reconcile.decide
    assert decide(
        fingerprint="F", status=refused, now=NOW, permanent_retry=HOUR, secret_changed=True
    ).action is (reconcile.Action.APPLY)
    assert decide(
        fingerprint="F", status=in_sync, now=NOW, permanent_retry=HOUR, secret_changed=True
    ).action is (reconcile.Action.IN_SYNC)


def _after(answer: Answer | None, previous: PhoneWebhookStatus | None = None) -> PhoneWebhookStatus:
    outcome = classify(answer) if answer else no_answer("timed out")
    return reconcile.status_after_outcome(
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
    later = reconcile.status_after_outcome(
        previous=first,
        generation=3,
        phone_number="8613800001234",
        fingerprint="F",
        outcome=classify(Answer(400, "System.LimitControl")),
        now=NOW + HOUR,
        retry_at=None,
    )
    assert [c.last_transition_time for c in later.conditions] == [NOW, NOW, NOW]
    recovered = reconcile.status_after_outcome(
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
    status = reconcile.status_stalled(
        previous=_after(Answer(200, "OK")), generation=4, reason="SecretNotFound", message="m", now=NOW
    )
    assert _conditions(status)["Stalled"] == ("True", "SecretNotFound")
    assert (status.code, status.observed_generation) == (None, 4)
    assert {c.observed_generation for c in status.conditions} == {4}


def test_the_first_created_claimant_owns_the_number_and_ties_are_stable() -> None:
    early = reconcile.Claimant("2026-11-27T10:00:00Z", "team-b", "z")
    late = reconcile.Claimant("2026-11-27T11:00:00Z", "team-a", "a")
    same_time = reconcile.Claimant("2026-11-27T10:00:00Z", "team-a", "y")
    assert reconcile.owner([late, early]) == early
    assert reconcile.owner([early, same_time, late]) == same_time
    assert reconcile.owner([]) is None


def test_a_reconcile_request_applies_even_in_sync() -> None:
    in_sync = PhoneWebhookStatus(applied_fingerprint="F")
    decision = reconcile.decide(
        fingerprint="F", status=in_sync, now=NOW, permanent_retry=HOUR, reconcile_requested=True
    )
    assert decision.action is reconcile.Action.APPLY


def test_a_forced_call_is_echoed_only_once_cams_answered_for_good() -> None:
    throttled = reconcile.status_after_outcome(
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
    applied = reconcile.status_after_outcome(
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


@pytest.mark.parametrize(
    ("live", "drifted"),
    [
        (LiveNumber("8613800001234", "https://a.example/x", ""), []),
        (LiveNumber("8613800001234", "https://evil.example/x", ""), ["statusCallbackUrl"]),
        (None, ["phoneNumber"]),
    ],
    ids=["same", "url-changed", "number-gone"],
)
def test_drifted_fields_compare_only_what_the_spec_sets(live: LiveNumber | None, drifted: list[str]) -> None:
    # SPEC sets statusCallbackUrl only: a different upCallbackUrl in CAMS is not ours to keep.
    assert reconcile.drifted_fields(SPEC, live) == drifted


@pytest.mark.parametrize(
    ("annotation", "seconds"),
    [
        (None, 600.0),
        ("45s", 45.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("300", 300.0),
        ("off", None),
        ("0", None),
        ("soon", 600.0),
    ],
    ids=["default", "seconds", "minutes", "hours", "plain", "off", "zero", "unparsable-keeps-default"],
)
def test_drift_interval_annotation(annotation: str | None, seconds: float | None) -> None:
    assert reconcile.drift_interval(annotation, default=600) == seconds


def test_drift_checks_off_by_default_setting() -> None:
    assert reconcile.drift_interval(None, default=0) is None
