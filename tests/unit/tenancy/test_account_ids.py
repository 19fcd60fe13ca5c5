"""Which Alibaba Cloud account credentials belong to (STS GetCallerIdentity), learned once per credentials:
the key CAMS's quota, and so the operator's lanes, are counted by (issue 28, part 3)."""

from __future__ import annotations

import asyncio

import pytest

from cams_webhook_operator.cams.credentials import Credentials
from cams_webhook_operator.cams.outcomes import Answer, Outcome, classify
from cams_webhook_operator.tenancy.account_ids import RETRY_SECONDS, UNIDENTIFIED, AccountIds, lane_label
from cams_webhook_operator.tenancy.credentials import Resolved

ACCOUNTS = {("LTAI-one", "s1"): "1111", ("LTAI-two", "s2"): "1111", ("LTAI-other", "s3"): "2222"}


class FakeSts:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.down = False

    async def caller_identity(self, credentials: Credentials) -> tuple[Outcome, str | None]:
        self.asked.append(credentials.access_key_id)
        await asyncio.sleep(0)  # others may ask meanwhile
        if self.down:
            return classify(Answer(503, "ServiceUnavailable")), None
        account = ACCOUNTS.get((credentials.access_key_id, credentials.access_key_secret))
        if account is None:
            return classify(Answer(400, "SignatureDoesNotMatch", "wrong")), None
        return classify(Answer(200, "OK")), account


def _resolved(key_id: str, secret: str) -> Resolved:
    return Resolved(Credentials(key_id, secret), f"secret:ns/{key_id}")


async def test_keys_of_one_account_share_its_lane_and_each_is_asked_about_once() -> None:
    sts = FakeSts()
    ids = AccountIds(ask=sts.caller_identity, clock=lambda: 0.0)
    lanes = await asyncio.gather(
        *(ids.lane_of(_resolved(k, s)) for k, s in [("LTAI-one", "s1")] * 3 + [("LTAI-two", "s2")])
    )
    assert set(lanes) == {"account:1111"}
    assert await ids.lane_of(_resolved("LTAI-other", "s3")) == "account:2222"
    assert sts.asked == ["LTAI-one", "LTAI-two", "LTAI-other"], "once per credentials, asked together or not"
    assert lane_label("account:1111") == "account:1111"


async def test_a_known_key_id_with_a_wrong_secret_joins_no_ones_lane(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sts = FakeSts()
    ids = AccountIds(ask=sts.caller_identity, clock=lambda: 0.0)
    assert await ids.lane_of(_resolved("LTAI-one", "s1")) == "account:1111"
    lane = await ids.lane_of(_resolved("LTAI-one", "made-up"))
    assert lane.startswith("key:")
    assert "LTAI" not in lane
    assert lane_label(lane) == UNIDENTIFIED, "no part of a key in metrics, one series for all unknown"
    assert "paced on their own" in caplog.text
    assert "made-up" not in caplog.text


async def test_an_account_sts_could_not_tell_is_asked_again_later() -> None:
    sts = FakeSts()
    now = [0.0]
    ids = AccountIds(ask=sts.caller_identity, clock=lambda: now[0])
    sts.down = True
    first = await ids.lane_of(_resolved("LTAI-one", "s1"))
    assert first.startswith("key:")
    sts.down = False
    assert await ids.lane_of(_resolved("LTAI-one", "s1")) == first, "not asked again at once"
    now[0] = RETRY_SECONDS + 1
    assert await ids.lane_of(_resolved("LTAI-one", "s1")) == "account:1111"
    assert sts.asked == ["LTAI-one", "LTAI-one"]
