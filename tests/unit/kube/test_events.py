"""Repeated Events are counted on the one posted, within a window shorter than the Events' lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cams_webhook_operator.kube.events import EventSeries, Posted

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = ("uid-1", "Warning", "TransientError")


def test_a_repeat_within_the_window_is_counted_on_the_event_posted() -> None:
    series = EventSeries(window=timedelta(minutes=50))
    assert series.repeat_of(KEY, NOW) is None
    series.posted(KEY, Posted("pwh.abc", "ns", 1, NOW, NOW))
    repeat = series.repeat_of(KEY, NOW + timedelta(minutes=10))
    assert repeat is not None
    assert (repeat.name, repeat.count) == ("pwh.abc", 1)
    assert series.repeat_of(("uid-1", "Warning", "Throttled"), NOW) is None, "another reason: its own"
    assert series.repeat_of(KEY, NOW + timedelta(minutes=51)) is None, "the Event may have expired"


def test_a_forgotten_or_evicted_event_is_posted_anew() -> None:
    series = EventSeries(limit=2)
    for uid in ("a", "b", "c"):
        series.posted((uid, "Warning", "X"), Posted(f"{uid}.1", "ns", 1, NOW, NOW))
    assert series.repeat_of(("a", "Warning", "X"), NOW) is None, "the oldest went first"
    assert series.repeat_of(("c", "Warning", "X"), NOW) is not None
    series.forget(("c", "Warning", "X"))
    assert series.repeat_of(("c", "Warning", "X"), NOW) is None
