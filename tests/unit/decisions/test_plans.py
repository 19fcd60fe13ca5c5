"""Whether an object needs a call: the fingerprint of what it would send, and whether_to_call."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cams_webhook_operator.api import PhoneWebhookSpec, PhoneWebhookStatus
from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.decisions import plans
from cams_webhook_operator.tenancy.credentials import Resolved
from tests.unit.decisions.objects import (
    HOUR,
    NOW,
    SPEC,
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
