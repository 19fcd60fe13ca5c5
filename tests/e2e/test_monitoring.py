"""The alerts and the dashboard the chart ships, checked by Prometheus's own tools: promtool parses every
rule and every dashboard query, runs the alerts' unit tests (tests/prometheus/alerts-test.yaml), and every
metric they name is one the operator exports. No cluster needed; promtool is built from the Go module
proxy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cams_webhook_operator.engine.metrics import Metrics, StateViews

from .harness import REPO

FILES = REPO / "helm" / "cams-webhook-operator" / "files"
ALERTS = FILES / "alerts.yaml"
DASHBOARD = FILES / "dashboard.json"
ALERT_TESTS = REPO / "tests" / "prometheus" / "alerts-test.yaml"
OPERATIONS = REPO / "docs" / "operations.md"
METRIC = re.compile(r"\bcams_webhook_operator_[a-z_]+")
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$account": ".*"}


def _promtool(promtool: Path, *args: str | Path) -> str:
    result = subprocess.run(
        [str(promtool), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, f"promtool {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def _exported() -> set[str]:
    """Every series name the operator's registry can expose (a labelled metric shows no sample until it
    is used, so the names come from the families and their types)."""
    metrics = Metrics()
    metrics.watch_state(
        StateViews(
            objects_by_condition=dict,
            queue_depth=lambda: 0,
            calls_waiting=dict,
            accounts_unavailable=lambda: 0,
            leading=lambda: True,
            rrsa_failing=lambda: False,
            numbers=dict,
        )
    )
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {family.name + suffix for family in metrics.registry.collect() for suffix in suffixes[family.type]}


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(<series selector>, label): the selector is PromQL
            match = re.fullmatch(r"label_values\((.*), *[a-z_]+\)", variable["definition"])
            assert match, variable["definition"]
            queries.append(match.group(1))
    return queries


def test_alert_rules_pass_promtool_and_their_unit_tests(promtool_bin: Path) -> None:
    assert "SUCCESS: 8 rules found" in _promtool(promtool_bin, "check", "rules", ALERTS)
    assert "SUCCESS" in _promtool(promtool_bin, "test", "rules", ALERT_TESTS)


def test_every_alert_fires_and_stays_silent_in_a_test_and_has_a_runbook() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    checks = [check for test in tests for check in test["alert_rule_test"]]
    runbook = OPERATIONS.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    for rule in _rules():
        name = rule["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in checks), f"{name} never shown firing"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in checks), (
            f"{name} never shown silent"
        )
        assert name.lower() in anchors, f"docs/operations.md has no section {name}"
        assert rule["annotations"]["runbook_url"].endswith(f"docs/operations.md#{name.lower()}")


def test_dashboard_queries_parse_as_promql(promtool_bin: Path, tmp_path: Path) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 20
    rules = []
    for i, query in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"a Grafana variable the test does not know: {query}"
        rules.append({"record": f"dashboard:query_{i}", "expr": query})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _promtool(promtool_bin, "check", "rules", path)


def test_alerts_and_dashboard_use_only_metrics_the_operator_exports() -> None:
    exported = _exported()
    assert "cams_webhook_operator_cams_calls_total" in exported
    assert "cams_webhook_operator_leader" in exported
    for source, queries in (("alerts", [r["expr"] for r in _rules()]), ("dashboard", _dashboard_queries())):
        for query in queries:
            used = set(METRIC.findall(query))
            assert used, f"{source}: a query on no operator metric: {query}"
            assert used <= exported, f"{source}: {sorted(used - exported)} are not exported"
