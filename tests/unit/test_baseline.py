"""Capturing a baseline: medians over the window, only for metrics that need one."""

from __future__ import annotations

from pathlib import Path

from cockpit.core.baseline import baseline_metrics, capture_values
from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Phase, Plan
from cockpit.core.rules import parse_rule


def plan() -> Plan:
    return Plan(
        name="t",
        config_path=Path("c"),
        state_path=Path("s"),
        audit_path=Path("a"),
        sources={},
        catalog=Catalog({"farms": source_fields("http"), "db": source_fields("postgres")}),
        phases=(
            Phase(
                "one",
                10,
                0.0,
                success=(
                    parse_rule("improvement(farms.p95) >= 40%"),
                    parse_rule("farms.p99 < 1s"),
                ),
            ),
        ),
        baseline={"db.queries_per_min": 500.0},
    )


def test_metrics_needing_a_baseline() -> None:
    assert baseline_metrics(plan()) == ["db.queries_per_min", "farms.p95"]


def test_capture_takes_the_median_of_known_values_in_the_window() -> None:
    store = MetricStore()
    for t, value in [(90.0, 9999.0), (100.0, 200.0), (101.0, None), (102.0, 900.0), (103.0, 210.0)]:
        store.record("farms.p95", t, value)
    store.record("farms.p99", 100.0, 5.0)  # not a baseline metric
    values = capture_values(plan(), store, since=100.0, now=103.0)
    assert values == {"farms.p95": 210.0}  # median of 200, 900, 210; db had no data


def test_capture_of_nothing_is_empty_never_zero() -> None:
    assert capture_values(plan(), MetricStore(), since=0.0, now=10.0) == {}
