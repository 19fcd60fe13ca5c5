"""The one place where an API server's refusal becomes a value: or_none and refused (kube/client.py)."""

from __future__ import annotations

import pytest

from cams_webhook_operator.kube.client import ApiException, or_none, refused


async def _answer(value: str) -> str:
    return value


async def _refusal(status: int) -> str:
    raise ApiException(status=status, reason="refused")


async def test_or_none_gives_the_answer_or_none_for_not_found() -> None:
    assert await or_none(_answer("lease")) == "lease"
    assert await or_none(_refusal(404)) is None
    assert await or_none(_refusal(409), 409) is None


@pytest.mark.parametrize("status", [403, 409, 500])
async def test_or_none_raises_every_other_refusal(status: int) -> None:
    with pytest.raises(ApiException) as raised:
        await or_none(_refusal(status))
    assert raised.value.status == status


async def test_refused_tells_the_statuses_apart() -> None:
    assert await refused(_answer("done"), 404, 409) is None
    assert await refused(_refusal(404), 404, 409) == 404
    assert await refused(_refusal(409), 404, 409) == 409
    with pytest.raises(ApiException):
        await refused(_refusal(422), 404, 409)
