"""Drift checks' pure parts: what counts as drift, and the interval annotation."""

from __future__ import annotations

import pytest

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Answer, classify
from cams_webhook_operator.decisions.drift import (
    drift_interval,
    drifted_fields,
    live_webhook,
    read_retry_seconds,
)
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls, literal

SPEC = PhoneWebhookSpec.model_validate(
    {"custSpaceId": "s", "phoneNumber": "8613800001234", "statusCallbackUrl": "https://a.example/x"}
)


@pytest.mark.parametrize(
    ("live", "drifted"),
    [
        (LiveNumber("8613800001234", "https://a.example/x", "https://other.example/up"), []),
        (LiveNumber("8613800001234", "https://evil.example/x", ""), ["statusCallbackUrl"]),
        (None, ["phoneNumber"]),
    ],
    ids=["same", "url-changed", "number-gone"],
)
def test_drifted_fields_compare_only_what_the_spec_sets(live: LiveNumber | None, drifted: list[str]) -> None:
    # SPEC sets statusCallbackUrl only: a different upCallbackUrl in CAMS is not ours to keep.
    assert drifted_fields(live_webhook(live, literal(SPEC))) == drifted


def test_status_shows_urls_without_their_tokens_and_whether_each_matches() -> None:
    wanted = CallbackUrls("https://hooks.example/s?token=s3cret", "https://hooks.example/up?token=other")
    live = LiveNumber(
        "8613800001234", "https://hooks.example/s?token=s3cret", "https://u:pw@hooks.example/up"
    )
    shown = live_webhook(live, wanted)
    assert (shown.status_callback_url, shown.up_callback_url) == (
        "https://hooks.example/redacted?redacted",
        "https://redacted@hooks.example/redacted",
    )
    assert (shown.status_callback_url_matches, shown.up_callback_url_matches) == (True, False)
    assert drifted_fields(shown) == ["upCallbackUrl"]
    assert "s3cret" not in shown.model_dump_json()
    assert "pw" not in shown.model_dump_json()
    unknown = live_webhook(live, None)  # the URLs come from a Secret not read yet: nothing is judged
    assert (unknown.status_callback_url_matches, unknown.up_callback_url_matches) == (None, None)
    assert drifted_fields(unknown) == []


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
        ("1", 30.0),
        ("0.5", 30.0),
        ("1e-3s", 30.0),
        ("inf", 600.0),
        ("nan", 600.0),
    ],
    ids=[
        "default",
        "seconds",
        "minutes",
        "hours",
        "plain",
        "off",
        "zero",
        "unparsable-keeps-default",
        "one-second-raised-to-the-minimum",
        "fraction-raised",
        "exponent-raised",
        "infinite-keeps-default",
        "nan-keeps-default",
    ],
)
def test_drift_interval_annotation(annotation: str | None, seconds: float | None) -> None:
    assert drift_interval(annotation, default=600) == seconds


def test_drift_checks_off_by_default_setting() -> None:
    assert drift_interval(None, default=0) is None


def test_when_a_failed_read_is_tried_again() -> None:
    refused = classify(Answer(403, "Forbidden.NoPermission"))
    down = classify(Answer(503, "ServiceUnavailable"))
    token = classify(Answer(400, "InvalidSecurityToken"))
    assert read_retry_seconds(token, renewed=True, interval=3600, permanent_retry=7200) == 0.0
    assert read_retry_seconds(refused, renewed=False, interval=3600, permanent_retry=7200) == 7200
    assert read_retry_seconds(down, renewed=False, interval=3600, permanent_retry=7200) == 60.0
    assert read_retry_seconds(down, renewed=False, interval=30, permanent_retry=7200) == 30
    assert read_retry_seconds(down, renewed=False, interval=0, permanent_retry=7200) == 60.0, "checks off"
