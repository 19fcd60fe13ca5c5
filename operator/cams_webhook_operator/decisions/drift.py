"""Drift rules: which spec fields CAMS no longer holds, and how often an object is checked. Pure; the
loop that reads CAMS and applies them is engine/drift_checks.py.
"""

from __future__ import annotations

import math

from cams_webhook_operator.api.models import LiveWebhook
from cams_webhook_operator.cams.outcomes import Outcome, Verdict

# A read that failed for a reason that passes is tried again after this long (or the drift interval, if
# shorter).
FAILED_READ_RETRY_SECONDS = 60.0


def drifted_fields(live: LiveWebhook | None) -> list[str]:
    """The spec fields CAMS no longer holds, from a read compared with what is wanted (live_webhook). Only
    URLs can be compared: the read API returns no flags. An unset field in the spec is not ours to keep,
    so it never drifts."""
    if live is None or not live.found:
        return ["phoneNumber"]  # the number is no longer in the space
    compared = (
        ("statusCallbackUrl", live.status_callback_url_matches),
        ("upCallbackUrl", live.up_callback_url_matches),
    )
    return [field for field, matches in compared if matches is False]


_UNITS = {"s": 1, "m": 60, "h": 3600}
_OFF = {"0", "off", "false", "no", "disabled", "never"}


def drift_interval(annotation: str | None, *, default: float, minimum: float = 30.0) -> float | None:
    """Seconds between drift checks for one object: the annotation's value ("45s", "10m", "2h", "300",
    "off") or the operator default; None means never. A value that does not parse keeps the default; one
    under `minimum` (CAMS_MIN_DRIFT_INTERVAL_SECONDS: a platform's floor for what a namespace may ask)
    is raised to it."""
    if annotation is None:
        return default or None
    value = annotation.strip().lower()
    if value in _OFF:
        return None
    try:
        seconds = float(value[:-1]) * _UNITS[value[-1]] if value[-1:] in _UNITS else float(value)
    except ValueError:
        return default or None
    if not math.isfinite(seconds):
        return default or None
    return max(seconds, minimum) if seconds > 0 else None


def read_retry_seconds(outcome: Outcome, *, renewed: bool, interval: float, permanent_retry: float) -> float:
    """When to read a space again after a failed read: at once when its RRSA token was renewed, after the
    long retry of a refused update when CAMS refused the read for good, else within a minute (or the
    drift interval, if shorter)."""
    if renewed:
        return 0.0
    if outcome.verdict is Verdict.PERMANENT:
        return permanent_retry
    return min(FAILED_READ_RETRY_SECONDS, interval or math.inf)
