"""The number's health from what a space read returned: the NumberHealthy condition and its Events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cams_webhook_operator.api.status_models import LiveWebhook, PhoneWebhookStatus
from cams_webhook_operator.decisions.number_health import changes, judge, with_health_condition

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
GOOD = LiveWebhook(number_status="CONNECTED", quality_rating="GREEN", messaging_limit_tier="TIER_1000")


@pytest.mark.parametrize(
    ("live", "verdict"),
    [
        (GOOD, (True, "Healthy", "quality GREEN, status CONNECTED, tier TIER_1000")),
        (
            GOOD.model_copy(update={"quality_rating": "YELLOW"}),
            (True, "Healthy", "quality YELLOW, status CONNECTED, tier TIER_1000"),
        ),
        (
            GOOD.model_copy(update={"quality_rating": "RED"}),
            (False, "QualityRed", "quality rating RED: WhatsApp may lower the number's messaging limit"),
        ),
        (
            GOOD.model_copy(update={"number_status": "FLAGGED"}),
            (False, "NumberLimited", "number status FLAGGED: sending is limited for now; it recovers"),
        ),
        (
            GOOD.model_copy(update={"number_status": "BANNED"}),
            (False, "NumberOutOfService", "number status BANNED: the number cannot send messages"),
        ),
        (
            GOOD.model_copy(update={"quality_rating": "UNKNOWN"}),
            (True, "Healthy", "quality UNKNOWN, status CONNECTED, tier TIER_1000"),
        ),
        (
            GOOD.model_copy(update={"name_status": "Rejected"}),
            (False, "NameRejected", "the verified name was rejected"),
        ),
        # VERIFIED is not a number status (the API page's example shows it): like UNKNOWN, not judged.
        (LiveWebhook(number_status="VERIFIED"), None),
        (LiveWebhook(number_status="UNKNOWN", quality_rating="UNKNOWN"), None),
        (LiveWebhook(), None),
        (LiveWebhook(found=False), None),
    ],
    ids=[
        "good",
        "yellow",
        "red",
        "flagged-is-limited",
        "banned-is-out-of-service",
        "unknown-quality-not-judged",
        "name-rejected",
        "verified-is-not-a-status",
        "all-unknown",
        "nothing-said",
        "not-listed",
    ],
)
def test_judge(live: LiveWebhook, verdict: tuple[bool, str, str] | None) -> None:
    assert judge(live) == verdict


def test_red_and_offline_together_name_both_out_of_service_first() -> None:
    verdict = judge(GOOD.model_copy(update={"quality_rating": "RED", "number_status": "OFFLINE"}))
    assert verdict is not None
    assert verdict[:2] == (False, "NumberOutOfService")
    assert "quality rating RED" in verdict[2]


@pytest.mark.parametrize(
    "status",
    ["CONNECTED", "MIGRATED", "FLAGGED", "DISCONNECTED", "UNVERIFIED", "BANNED", "RATE_LIMITED", "PENDING",
     "UNKNOWN", "DELETED", "RESTRICTED", "OFFLINE", "PAUSED"],
)  # fmt: skip
def test_every_documented_status_is_in_service_limited_out_of_service_or_not_judged(status: str) -> None:
    verdict = judge(LiveWebhook(number_status=status))
    expected = {
        "CONNECTED": "Healthy",
        "RESTRICTED": "NumberLimited",
        "RATE_LIMITED": "NumberLimited",
        "FLAGGED": "NumberLimited",
        "UNKNOWN": None,
    }.get(status, "NumberOutOfService")
    assert (verdict[1] if verdict else None) == expected


def test_unknown_is_not_judged_so_a_rating_that_turns_unknown_raises_no_warning() -> None:
    unknown = GOOD.model_copy(update={"quality_rating": "UNKNOWN", "number_status": "UNKNOWN"})
    assert changes(GOOD, unknown, "861") == ()
    assert changes(unknown, GOOD, "861") == (), "nothing had gone wrong, so nothing recovered"
    (red,) = changes(unknown, GOOD.model_copy(update={"quality_rating": "RED"}), "861")
    assert (red.type, red.reason) == ("Warning", "QualityDegraded")


def test_changes_are_told_once_worse_as_warning_better_as_normal() -> None:
    red = GOOD.model_copy(update={"quality_rating": "RED"})
    assert changes(None, red, "861") == (), "the first read changes nothing"
    assert changes(GOOD, GOOD, "861") == (), "a read that repeats what was known says nothing"
    (worse,) = changes(GOOD, red, "861")
    assert (worse.type, worse.reason, worse.message) == (
        "Warning",
        "QualityDegraded",
        "The quality rating of 861 changed from GREEN to RED",
    )
    (better,) = changes(red, GOOD, "861")
    assert (better.type, better.reason) == ("Normal", "QualityRecovered")
    offline = GOOD.model_copy(update={"number_status": "OFFLINE"})
    (left,) = changes(GOOD, offline, "861")
    assert (left.type, left.reason) == ("Warning", "NumberStatusChanged")
    (back,) = changes(offline, GOOD, "861")
    assert back.type == "Normal"


def test_the_condition_keeps_its_transition_time_while_the_verdict_holds_and_never_touches_ready() -> None:
    first = with_health_condition(PhoneWebhookStatus(), PhoneWebhookStatus(live=GOOD), now=T0, generation=1)
    (healthy,) = first.conditions
    assert (healthy.type, healthy.status, healthy.last_transition_time) == ("NumberHealthy", "True", T0)
    again = with_health_condition(first, PhoneWebhookStatus(live=GOOD), now=T1, generation=1)
    assert again.conditions[0].last_transition_time == T0
    red = with_health_condition(
        again,
        PhoneWebhookStatus(live=GOOD.model_copy(update={"quality_rating": "RED"})),
        now=T1,
        generation=1,
    )
    assert (red.conditions[0].status, red.conditions[0].last_transition_time) == ("False", T1)
    assert [c.type for c in red.conditions] == ["NumberHealthy"]
    gone = with_health_condition(red, PhoneWebhookStatus(live=LiveWebhook(found=False)), now=T1, generation=1)
    assert gone.conditions == [], "a number the space no longer lists has no health to judge"
