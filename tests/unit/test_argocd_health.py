"""The Argo CD health check on each state the operator writes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.argocd import argocd_health


def _obj(generation: int = 1, observed: int | None = 1, **conditions: tuple[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [
            {"type": kind, "status": value, "reason": reason, "message": f"{kind} says {reason}"}
            for kind, (value, reason) in conditions.items()
        ]
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"name": "x", "generation": 1}}, "Progressing"),
        (_obj(observed=-1), "Progressing"),
        (_obj(generation=2, observed=1, Ready=("True", "Applied")), "Progressing"),
        (
            _obj(Ready=("True", "Applied"), Reconciling=("False", "Applied"), Stalled=("False", "Applied")),
            "Healthy",
        ),
        (
            _obj(
                Ready=("False", "Throttled"),
                Reconciling=("True", "Throttled"),
                Stalled=("False", "Throttled"),
            ),
            "Progressing",
        ),
        (
            _obj(
                Ready=("False", "PermissionDenied"),
                Reconciling=("False", "PermissionDenied"),
                Stalled=("True", "PermissionDenied"),
            ),
            "Degraded",
        ),
        (
            _obj(Ready=("True", "Paused"), Reconciling=("False", "Paused"), Stalled=("False", "Paused")),
            "Suspended",
        ),
        (
            _obj(Ready=("False", "Paused"), Reconciling=("True", "Paused"), Stalled=("False", "Paused")),
            "Progressing",
        ),
        (
            {
                **_obj(Ready=("True", "Applied")),
                "metadata": {"name": "x", "generation": 1, "deletionTimestamp": "2026-11-27T00:00:00Z"},
            },
            "Progressing",
        ),
    ],
    ids=[
        "no-status",
        "not-seen-yet",
        "new-generation",
        "ready",
        "throttled",
        "stalled",
        "paused",
        "paused-never-applied",
        "deleting",
    ],
)
def test_health(obj: dict[str, Any], expected: str) -> None:
    status, message = argocd_health(obj)
    assert status == expected
    assert message


def test_degraded_message_carries_the_reason() -> None:
    _, message = argocd_health(_obj(Stalled=("True", "SecretNotFound"), Ready=("False", "SecretNotFound")))
    assert message.startswith("SecretNotFound: ")
