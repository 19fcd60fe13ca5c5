"""`kubectl cams status` sums objects up per namespace and per account (planning/status.py): by REASON, by
quality, and how many wait for a call."""

from __future__ import annotations

from typing import Any

from cams_webhook_operator.planning.status import render, summary


def _object(
    namespace: str, reason: str, *, ready: bool, quality: str | None = None, **spec: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": str(ready), "reason": reason}]}
    if quality:
        status["live"] = {"qualityRating": quality}
    return {"metadata": {"namespace": namespace}, "spec": spec, "status": status}


def test_objects_are_summed_up_per_namespace_and_per_account() -> None:
    objects = [
        _object("team-a", "Applied", ready=True, quality="GREEN"),
        _object("team-a", "Throttled", ready=False),
        _object("team-b", "SpaceNotAllowed", ready=False, accountRef={"kind": "CamsAccount", "name": "own"}),
        {"metadata": {"namespace": "team-b"}, "spec": {"credentialsSecretRef": {"name": "key"}}},
    ]
    summed = summary(objects)
    assert summed["namespaces"]["team-a"] == {
        "objects": 2,
        "ready": 1,
        "waiting": 1,
        "reason:Applied": 1,
        "reason:Throttled": 1,
        "quality:GREEN": 1,
        "quality:unread": 1,
    }
    assert summed["namespaces"]["team-b"]["waiting"] == 1, "an object the operator has not decided yet waits"
    assert set(summed["accounts"]) == {"(default account)", "CamsAccount/own", "Secret/key"}
    shown = render(summed)
    assert "team-a" in shown
    assert "Applied 1, Throttled 1; GREEN 1, unread 1" in shown
