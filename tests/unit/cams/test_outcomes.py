"""The one classification of CAMS answers."""

from __future__ import annotations

import pytest

from cams_webhook_operator.cams.outcomes import REFUSALS, Answer, Verdict, classify, no_answer


@pytest.mark.parametrize(
    ("http_status", "code", "verdict", "reason"),
    [
        (200, "OK", Verdict.OK, "Applied"),
        (400, "System.LimitControl", Verdict.THROTTLED, "Throttled"),
        (200, "System.LimitControl", Verdict.THROTTLED, "Throttled"),
        (400, "Throttling.User", Verdict.THROTTLED, "Throttled"),
        (503, "Throttling", Verdict.THROTTLED, "Throttled"),
        (429, None, Verdict.THROTTLED, "Throttled"),
        (500, "InternalError", Verdict.TRANSIENT, "TransientError"),
        (503, "ServiceUnavailable", Verdict.TRANSIENT, "TransientError"),
        (502, None, Verdict.TRANSIENT, "TransientError"),
        (400, "SignatureNonceUsed", Verdict.TRANSIENT, "TransientError"),
        (400, "Ram.PermissionDeny", Verdict.PERMANENT, "PermissionDenied"),
        (200, "Ram.PermissionDeny", Verdict.PERMANENT, "PermissionDenied"),
        (400, "Product.Unsubscript", Verdict.PERMANENT, "ProductNotSubscribed"),
        (400, "Unknown.ResourceOwnerId", Verdict.PERMANENT, "ResourceNotOwned"),
        (400, "SignatureDoesNotMatch", Verdict.PERMANENT, "InvalidCredentials"),
        (404, "InvalidAccessKeyId.NotFound", Verdict.PERMANENT, "InvalidCredentials"),
        (400, "InvalidSecurityToken.Expired", Verdict.PERMANENT, "InvalidSecurityToken"),
        (400, "InvalidTimeStamp.Expired", Verdict.PERMANENT, "ClockSkew"),
        (400, "MissingPhoneNumber", Verdict.PERMANENT, "InvalidParameter"),
        (400, "InvalidParameter", Verdict.PERMANENT, "InvalidParameter"),
        (400, "InvalidParameter.PhoneNumber", Verdict.PERMANENT, "InvalidParameter"),
        (403, "NoPermission", Verdict.PERMANENT, "PermissionDenied"),
        (403, "Forbidden.NoPermission", Verdict.PERMANENT, "PermissionDenied"),
        (400, "IncompleteSignature", Verdict.PERMANENT, "SignatureDefect"),
        (400, "Some.NewBusinessError", Verdict.UNRECOGNIZED, "UnrecognizedCode"),
        (200, "Some.NewBusinessError", Verdict.UNRECOGNIZED, "UnrecognizedCode"),
    ],
    ids=lambda value: str(value),
)
def test_answer_is_classified(http_status: int, code: str | None, verdict: Verdict, reason: str) -> None:
    outcome = classify(Answer(http_status=http_status, code=code))
    assert (outcome.verdict, outcome.reason) == (verdict, reason)


def test_ok_code_with_error_status_is_not_success() -> None:
    assert classify(Answer(http_status=500, code="OK")).verdict is Verdict.TRANSIENT


def test_no_answer_is_transient() -> None:
    outcome = no_answer("timed out")
    assert outcome.verdict is Verdict.TRANSIENT
    assert outcome.answer is None


def test_a_refusal_says_what_to_do_naming_the_action_that_was_refused() -> None:
    refused = classify(Answer(403, "NoPermission"), "QueryChatappPhoneNumbers")
    assert refused.refusal is not None
    assert "cams:QueryChatappPhoneNumbers" in refused.refusal.advice
    assert refused.refused_for_good


def test_only_a_clock_refusal_is_tried_again_soon() -> None:
    soon = [code for code, refusal in REFUSALS.items() if refusal.soon]
    assert soon == ["InvalidTimeStamp.Expired"]
    assert not classify(Answer(400, "InvalidTimeStamp.Expired")).refused_for_good
    assert not classify(Answer(400, "Some.NewBusinessError")).refused_for_good
