"""Gates and snapshots: rules judged against a real metric store, three-valued, with reasons."""

from __future__ import annotations

from pathlib import Path

from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.gates import GateKind, evaluate_gates, gate_blockers
from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.plan import AutoRollback, Phase, Plan, RollbackMethod, SourceSpec
from cockpit.core.rollout_model import Baseline, RolloutState, Status
from cockpit.core.rules import parse_rule
from cockpit.core.snapshot import build_snapshot, exit_status, snapshot_to_json
from cockpit.core.verdict import Verdict

NOW = 1_800_000_000.0


def make_plan() -> Plan:
    sources = {
        "farms": SourceSpec("farms", "http", 1.0, 5.0),
        "cache": SourceSpec("cache", "redis", 2.0, 5.0),
    }
    catalog = Catalog({n: source_fields(s.kind) for n, s in sources.items()})
    return Plan(
        name="Phase 3",
        config_path=Path("cockpit.toml"),
        state_path=Path("state.toml"),
        audit_path=Path("audit.jsonl"),
        sources=sources,
        catalog=catalog,
        phases=(
            Phase(
                "Shadow",
                10,
                0.0,
                success=(
                    parse_rule("http.error_rate <= 0.1%"),
                    parse_rule("improvement(farms.p95) >= 40%"),
                ),
                failure=(parse_rule("http.error_rate > 1%"), parse_rule("cache.up == 0")),
            ),
            Phase("Full", 100, 0.0),
        ),
        preflight_rules=(parse_rule("cache.up == 1"),),
        rollbacks=(RollbackMethod("flag", "Flag", 120.0, "app ok", traffic=0),),
        auto_rollback=AutoRollback(
            when=(parse_rule("http.error_rate > 2% for 5m"),), method="flag"
        ),
        baseline={"farms.p95": 800.0},
    )


RUNNING = RolloutState(status=Status.RUNNING, phase=1, phase_entered_at=NOW - 10)


def store_with(series: dict[str, list[tuple[float, float]]]) -> MetricStore:
    store = MetricStore(stale_after={"farms": 3.0, "cache": 6.0, "http": 3.0})
    for name, points in series.items():
        for t, value in points:
            store.record(name, t, value)
    return store


def by_rule(results: list, text: str):  # type: ignore[no-untyped-def]
    return next(r for r in results if r.rule.text == text)


def test_healthy_phase_passes_every_gate() -> None:
    store = store_with(
        {
            "http.error_rate": [(NOW - 1, 0.0004)],
            "farms.p95": [(NOW - 1, 200.0)],
            "cache.up": [(NOW - 1, 1.0)],
        }
    )
    results = evaluate_gates(make_plan(), RUNNING, store, NOW)
    assert {r.verdict for r in results if r.kind is not GateKind.AUTO_ROLLBACK} == {Verdict.PASS}
    improvement = by_rule(results, "improvement(farms.p95) >= 40%")
    assert improvement.value == 0.75  # (800 - 200) / 800
    assert improvement.value_text == "75%"


def test_failure_rule_holding_is_fail_and_blocks() -> None:
    store = store_with({"http.error_rate": [(NOW - 1, 0.015)], "cache.up": [(NOW - 1, 0.0)]})
    results = evaluate_gates(make_plan(), RUNNING, store, NOW)
    assert by_rule(results, "http.error_rate > 1%").verdict is Verdict.FAIL
    assert by_rule(results, "cache.up == 0").verdict is Verdict.FAIL
    assert by_rule(results, "http.error_rate <= 0.1%").verdict is Verdict.FAIL
    blockers = gate_blockers(results)
    assert any(b.startswith("failure criterion (fail): http.error_rate > 1%") for b in blockers)


def test_missing_data_is_unknown_never_pass() -> None:
    results = evaluate_gates(make_plan(), RUNNING, store_with({}), NOW)
    assert {r.verdict for r in results} == {Verdict.UNKNOWN}
    assert {r.reason for r in results if not r.rule.improvement} == {"no data"}
    assert len(gate_blockers(results)) == len(results)


def test_captured_baseline_wins_over_configured() -> None:
    captured = Baseline(values={"farms.p95": 400.0}, captured_at=NOW - 100, window_s=900, by="al")
    state = RolloutState(status=Status.RUNNING, phase=1, phase_entered_at=NOW, baseline=captured)
    store = store_with({"farms.p95": [(NOW - 1, 200.0)]})
    results = evaluate_gates(make_plan(), state, store, NOW)
    assert by_rule(results, "improvement(farms.p95) >= 40%").value == 0.5


def test_auto_rollback_fires_only_when_sustained() -> None:
    plan = make_plan()
    rule = "http.error_rate > 2% for 5m"
    short = store_with({"http.error_rate": [(NOW - s, 0.03) for s in range(180, -1, -1)]})
    gate = by_rule(evaluate_gates(plan, RUNNING, short, NOW), rule)
    assert gate.verdict is Verdict.PASS
    assert "breaching 3m of 5m" in gate.reason
    long = store_with({"http.error_rate": [(NOW - s, 0.03) for s in range(400, -1, -1)]})
    assert by_rule(evaluate_gates(plan, RUNNING, long, NOW), rule).verdict is Verdict.FAIL


def test_pending_judges_preflight_rules_and_auto_triggers() -> None:
    store = store_with({"cache.up": [(NOW - 1, 1.0)]})
    results = evaluate_gates(make_plan(), RolloutState(), store, NOW)
    assert [(r.phase, r.rule.text) for r in results if r.kind is GateKind.SUCCESS] == [
        (0, "cache.up == 1")
    ]
    assert by_rule(results, "cache.up == 1").verdict is Verdict.PASS


def test_exit_status_fail_beats_unknown() -> None:
    plan = make_plan()
    unknown = build_snapshot(plan, RUNNING, 3, store_with({}), NOW)
    assert exit_status(unknown) == 3
    failing = build_snapshot(
        plan, RUNNING, 3, store_with({"http.error_rate": [(NOW - 1, 0.5)]}), NOW
    )
    assert exit_status(failing) == 1
    healthy = store_with(
        {
            "http.error_rate": [(NOW - s, 0.0) for s in range(400, -1, -1)],
            "farms.p95": [(NOW - 1, 100.0)],
            "cache.up": [(NOW - 1, 1.0)],
        }
    )
    assert exit_status(build_snapshot(plan, RUNNING, 3, healthy, NOW)) == 0


def test_snapshot_json_shape_and_staleness() -> None:
    store = store_with({"farms.p95": [(NOW - 10, 120.0)]})
    store.set_source("cache", SourceStatus(up=False, error="connection refused", last_ok=NOW - 30))
    doc = snapshot_to_json(build_snapshot(make_plan(), RUNNING, 7, store, NOW))
    assert set(doc) == {"rollout", "metrics", "gates", "sources"}
    assert doc["rollout"]["status"] == "running"
    assert doc["rollout"]["phase_name"] == "Shadow"
    assert doc["rollout"]["traffic"] == 10
    assert doc["rollout"]["version"] == 7
    assert doc["metrics"]["farms.p95"] == {
        "value": 120.0,
        "unit": "ms",
        "age_s": 10.0,
        "status": "stale",
    }
    assert doc["metrics"]["cache.hit_rate"]["status"] == "no data"
    assert doc["sources"]["cache"] == {
        "up": False,
        "error": "connection refused",
        "last_ok_s": 30.0,
    }
    assert doc["sources"]["farms"] == {"up": None, "error": None, "last_ok_s": None}
    gate = doc["gates"][0]
    assert set(gate) == {"phase", "kind", "rule", "verdict", "value", "reason"}
