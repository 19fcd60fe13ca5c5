"""Drift rules: what a read of CAMS shows (as status shows it, URLs redacted), which spec fields CAMS no
longer holds, how often an object is checked, and when a failed read is tried again. Pure; the loop that
reads CAMS is engine/drift_checks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from cams_webhook_operator.api.status_models import LiveWebhook
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.cams.outcomes import Outcome
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls, redact

# A read that failed for a reason that passes is tried again after this long (or the drift interval, if
# shorter).
FAILED_READ_RETRY_SECONDS = 60.0


def _matches(wanted: str | None, held: str) -> bool | None:
    """Whether CAMS holds the wanted URL, compared as digests in constant time: how long the comparison
    took tells nothing of how much of a guessed URL (and its token) was right."""
    if wanted is None:
        return None
    return hmac.compare_digest(
        hashlib.sha256(wanted.encode()).digest(), hashlib.sha256(held.encode()).digest()
    )


def live_webhook(live: LiveNumber | None, wanted: CallbackUrls | None) -> LiveWebhook:
    """What a read showed, as status shows it: URLs redacted (they may carry tokens), and whether each is
    the one `wanted` (the spec's, or its Secret's; None: not known yet)."""
    if live is None:
        return LiveWebhook(found=False)
    wanted = wanted or CallbackUrls(None, None)
    return LiveWebhook(
        status_callback_url=redact(live.status_callback_url),
        up_callback_url=redact(live.up_callback_url),
        status_callback_url_matches=_matches(wanted.status_callback_url, live.status_callback_url),
        up_callback_url_matches=_matches(wanted.up_callback_url, live.up_callback_url),
        number_status=live.status,
        quality_rating=live.quality_rating,
        messaging_limit_tier=live.messaging_limit_tier,
        name_status=live.name_status,
        code_verification_status=live.code_verification_status,
        verified_name=live.verified_name,
        is_official=live.is_official,
    )


def redacted(live: LiveWebhook) -> LiveWebhook:
    """A status.live written by an earlier version, which showed URLs whole: redacted as now."""
    shown = {
        "status_callback_url": redact(live.status_callback_url),
        "up_callback_url": redact(live.up_callback_url),
    }
    same = (live.status_callback_url, live.up_callback_url) == tuple(shown.values())
    return live if same else live.model_copy(update=shown)


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
    if outcome.refused_for_good:
        return permanent_retry
    return min(FAILED_READ_RETRY_SECONDS, interval or math.inf)
