"""Prometheus metrics, all prefixed `cams_webhook_operator_`, on a registry of their own.

The `account` label names the Alibaba Cloud account a call is made as: `account:<AccountId>` as STS tells
it (account_ids.py), or `unidentified` for all the credentials whose account is not known. Never a part of
an AccessKey ID or a role ARN, and bounded by the Alibaba accounts in use (a tenant rotating made-up keys
adds no series), not by objects, numbers or keys.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cams_webhook_operator.api.status_models import CONDITION_TYPES, LiveWebhook, PhoneWebhookStatus
from cams_webhook_operator.cams.outcomes import Outcome, Verdict
from cams_webhook_operator.tenancy.account_ids import lane_label

PREFIX = "cams_webhook_operator"
# CAMS answers in tens to hundreds of milliseconds; waits for a slot range up to minutes in a big rollout.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WAIT_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def objects_by_condition(statuses: Iterable[PhoneWebhookStatus]) -> dict[str, int]:
    """How many objects have each condition True; every condition type is shown, at 0 when none has it."""
    counts: collections.Counter[str] = collections.Counter(dict.fromkeys(CONDITION_TYPES, 0))
    for status in statuses:
        counts.update(c.type for c in status.conditions if c.status == "True")
    return dict(counts)


@dataclass(frozen=True)
class StateViews:
    """How the gauges read the controller's state, at scrape time, from the metrics server's thread."""

    objects_by_condition: Callable[[], dict[str, int]]
    queue_depth: Callable[[], int]
    calls_waiting: Callable[[], dict[str, int]]
    accounts_unavailable: Callable[[], int]
    leading: Callable[[], bool]
    rrsa_failing: Callable[[], bool]
    numbers: Callable[[], dict[tuple[str, str], LiveWebhook]]


class _StateCollector(Collector):
    """Gauges computed at scrape time from the controller's own state: nothing to keep in step."""

    def __init__(self, views: StateViews) -> None:
        self._numbers = views.numbers
        self._objects_by_condition = views.objects_by_condition
        self._queue_depth = views.queue_depth
        self._calls_waiting = views.calls_waiting
        self._accounts_unavailable = views.accounts_unavailable
        self._leading = views.leading
        self._rrsa_failing = views.rrsa_failing

    def collect(self) -> Iterable[Any]:
        objects = GaugeMetricFamily(
            f"{PREFIX}_objects", "PhoneWebhooks whose condition is True, by condition.", labels=["condition"]
        )
        for condition, count in sorted(self._objects_by_condition().items()):
            objects.add_metric([condition], count)
        yield objects
        yield GaugeMetricFamily(
            f"{PREFIX}_workqueue_depth", "Objects waiting for a worker.", value=self._queue_depth()
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_calls_waiting",
            "CAMS calls waiting in their account's lane for a slot.",
            labels=["account"],
        )
        for account, count in sorted(self._calls_waiting().items()):
            waiting.add_metric([account], count)
        yield waiting
        yield GaugeMetricFamily(
            f"{PREFIX}_accounts_unavailable",
            "Accounts whose calls CAMS fails one and all (breaker open: objects held, one probe every 2 s).",
            value=self._accounts_unavailable(),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_leader",
            "1 while this replica holds the leader Lease and acts (always 1 without leader election).",
            value=int(self._leading()),
        )
        # Counts by rating and by status, not one series per number: the label values are CAMS's few enum
        # values, whatever the number of numbers; Events and `kubectl get pwh -o wide` name the numbers.
        numbers = self._numbers().values()
        for label, field in (("quality", "quality_rating"), ("status", "number_status")):
            family = GaugeMetricFamily(
                f"{PREFIX}_numbers_by_{label}",
                f"Numbers by their {label} as the last read of CAMS showed it (each number once).",
                labels=[label],
            )
            for value, count in sorted(
                collections.Counter(getattr(n, field) or "UNKNOWN" for n in numbers).items()
            ):
                family.add_metric([value], count)
            yield family
        yield GaugeMetricFamily(
            f"{PREFIX}_rrsa_failing",
            "1 while the last exchange of the RRSA token for credentials failed (0 without RRSA).",
            value=int(self._rrsa_failing()),
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cams_calls = Counter(
            f"{PREFIX}_cams_calls",
            "CAMS calls by action, answer code and account.",
            ["action", "code", "account"],
            registry=self.registry,
        )
        self.cams_call_duration = Histogram(
            f"{PREFIX}_cams_call_duration_seconds",
            "Duration of CAMS calls.",
            ["action"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.cams_throttled = Counter(
            f"{PREFIX}_cams_throttled",
            "CAMS answers that said flow control (System.LimitControl, Throttling*), by account.",
            ["account"],
            registry=self.registry,
        )
        self.limiter_wait = Histogram(
            f"{PREFIX}_limiter_wait_seconds",
            "Time an object waited for a CAMS call slot.",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.drift_detected = Counter(
            f"{PREFIX}_drift_detected",
            "Objects whose webhook CAMS no longer held as specified (changed outside Kubernetes).",
            registry=self.registry,
        )
        self.reconciles = Counter(
            f"{PREFIX}_reconciles",
            "Reconciles by result: in_sync (no call needed), applied, throttled, transient, refused, "
            "unavailable, waiting, retrying, stalled, paused, observing, observed, released, deleted.",
            ["result"],
            registry=self.registry,
        )

    def watch_state(self, views: StateViews) -> None:
        self.registry.register(_StateCollector(views))

    def count_call(self, action: str, outcome: Outcome, seconds: float, *, lane: str) -> None:
        """One CAMS call in `lane` and its answer (`NoAnswer` for timeouts and connection errors)."""
        code = outcome.answer.code if outcome.answer and outcome.answer.code else "NoAnswer"
        label = lane_label(lane)
        self.cams_calls.labels(action, code, label).inc()
        self.cams_call_duration.labels(action).observe(seconds)
        if outcome.verdict is Verdict.THROTTLED:
            self.cams_throttled.labels(label).inc()

    def serve(self, *, host: str, port: int) -> None:
        """Serve /metrics in a background thread."""
        start_http_server(port, addr=host, registry=self.registry)
