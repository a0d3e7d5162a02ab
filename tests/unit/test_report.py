"""The rollout report from a hand-built rollout: audit lines, a state and a metric history."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.audit import AuditLog
from cockpit.core.catalog import Unit
from cockpit.core.config import load_plan
from cockpit.core.history import HistoryReader, Row, connect, write_rows
from cockpit.core.history import Summary as HistorySummary
from cockpit.core.plan import Plan
from cockpit.core.report_data import gather, judge_target
from cockpit.core.report_html import chart, render_html
from cockpit.core.report_markdown import code, md, render_markdown
from cockpit.core.report_model import SPARK, Report, sparkline
from cockpit.core.rollout_model import HistoryEntry, RollbackRecord, RolloutState, Status
from cockpit.core.rules import parse_rule

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000
EVIL = "<script>alert(1)</script>"
AUTO_REASON = "http.error_rate > 2% for 5m: 4.1% > 2%"


class Clock:
    now = float(T0)

    def __call__(self) -> float:
        return self.now


def gate(kind: str, rule: str, verdict: str, value: float | None, reason: str) -> dict[str, Any]:
    return {"kind": kind, "rule": rule, "verdict": verdict, "value": value, "reason": reason}


def summary(status: str, phase: int) -> dict[str, object]:
    return {"status": status, "phase": phase}


def write_audit(path: Path) -> None:
    """Pre-flight tick, three forced/gated advances with traffic steps, a hold, a phase tick,
    an automatic rollback with a long output, and an after-rollback tick."""
    clock = Clock()
    log = AuditLog(path, clock=clock)

    def at(offset: float, event: str, **fields: Any) -> None:
        clock.now = T0 + offset
        log.append(event, operator=fields.pop("operator", "alice"), **fields)

    at(0, "check", before=summary("pending", 0), after=summary("pending", 0), item="Tests pass")
    preflight = [gate("success", "cache.up == 1", "unknown", None, "no data")]
    at(
        60,
        "advance",
        before=summary("pending", 0),
        after=summary("running", 1),
        gates=preflight,
        force=True,
        reason="staging signed off",
    )
    at(61, "action.start", step="vercel env add PHASE_3_ROLLOUT_PERCENTAGE (stdin '10')")
    at(
        62,
        "action.end",
        step="vercel env add PHASE_3_ROLLOUT_PERCENTAGE (stdin '10')",
        ok=True,
        error=None,
        output="Added PHASE_3_ROLLOUT_PERCENTAGE\n",
    )
    at(
        600,
        "hold",
        operator="bob",
        before=summary("running", 1),
        after=summary("holding", 1),
        reason="p99 spike | on /api/farms <b>",
    )
    at(900, "resume", operator="bob", before=summary("holding", 1), after=summary("running", 1))
    at(
        1200,
        "check",
        before=summary("running", 1),
        after=summary("running", 1),
        item="No critical errors in logs",
    )
    phase1 = [
        gate("success", "improvement(farms.p95) >= 40%", "pass", 0.62, "62% >= 40%"),
        gate("failure", "http.error_rate > 1%", "pass", 0.0005, "0.05% <= 1%"),
    ]
    at(
        3600,
        "advance",
        operator="bob",
        before=summary("running", 1),
        after=summary("running", 2),
        gates=phase1,
        force=False,
    )
    at(
        7200,
        "advance",
        operator="bob",
        before=summary("running", 2),
        after=summary("running", 3),
        gates=[],
        force=False,
    )
    fired = [gate("auto_rollback", "http.error_rate > 2% for 5m", "fail", 0.041, AUTO_REASON)]
    at(
        9000,
        "auto_rollback",
        before=summary("running", 3),
        after=summary("rolling_back", 3),
        method="flag",
        reason=AUTO_REASON,
        gates=fired,
    )
    at(9001, "action.start", step="vercel env add PHASE_3_ROLLOUT_PERCENTAGE (stdin '0')")
    output = "".join(f"line {n}\n" for n in range(10)) + f"redeploying {EVIL}\n"
    at(
        9030,
        "action.end",
        step="vercel env add PHASE_3_ROLLOUT_PERCENTAGE (stdin '0')",
        ok=True,
        error=None,
        output=output,
    )
    at(
        9031,
        "rollback_finished",
        before=summary("rolling_back", 3),
        after=summary("rolled_back", 3),
        ok=True,
        detail="",
    )
    at(
        9100,
        "check",
        before=summary("rolled_back", 3),
        after=summary("rolled_back", 3),
        item="Verify application is stable",
    )


def phase_values(t: int) -> dict[str, float]:
    """farms.p95 falls phase by phase; the error rate spikes before the rollback."""
    p95 = 300.0 if t < T0 + 3600 else 150.0 if t < T0 + 7200 else 120.0
    errors = 0.04 if T0 + 8700 <= t < T0 + 9031 else 0.0005
    hit = 0.35 if t < T0 + 3600 else 0.55 if t < T0 + 7200 else 0.65
    return {"farms.p95": p95, "http.error_rate": errors, "cache.hit_rate": hit}


def write_history(path: Path) -> None:
    rows: list[Row] = []
    for bucket in range(T0 + 60, T0 + 9100, 10):
        for name, value in phase_values(bucket).items():
            rows.append((name, bucket, 10, value, value * 0.9, value * 1.1, 0))
    conn = connect(path)
    try:
        write_rows(conn, rows, prune_before=None)
    finally:
        conn.close()


def rolled_back() -> RolloutState:
    record = RollbackRecord(
        "flag", T0 + 9000, "cockpit (automatic)", AUTO_REASON, True, T0 + 9031, True
    )
    return RolloutState(status=Status.ROLLED_BACK, phase=3, started_at=T0 + 60, rollback=record)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    shutil.copy(REPO / "cockpit.toml", tmp_path / "cockpit.toml")
    return load_plan(tmp_path / "cockpit.toml", environ={})


@pytest.fixture
def report(plan: Plan, tmp_path: Path) -> Iterator[Report]:
    write_audit(tmp_path / "audit.jsonl")
    write_history(tmp_path / "history.sqlite")
    entries = AuditLog(tmp_path / "audit.jsonl").read()
    with HistoryReader(tmp_path / "history.sqlite") as history:
        yield gather(plan, rolled_back(), entries, history, T0 + 9200.0)


def test_every_phase_with_start_end_who_and_gates(report: Report) -> None:
    assert [(p.number, p.name, p.traffic) for p in report.phases] == [
        (1, "Shadow", 10),
        (2, "Partial", 50),
        (3, "Full", 100),
    ]
    first, second, third = report.phases
    assert (first.started, first.entered_by, first.forced) == (T0 + 60, "alice", True)
    assert first.gates_of == "pre-flight"
    assert first.gates[0].verdict == "unknown"
    assert (first.ended, first.ended_by, first.ended_how) == (
        T0 + 3600,
        "bob",
        "advanced to phase 2",
    )
    assert second.gates_of == "phase 1 Shadow"
    assert [g.value for g in second.gates] == ["62%", "0.05%"]  # formatted in the rule's unit
    assert third.ended_how == "rolled back by 'flag' (automatic)"
    assert first.steps[0].ok is True
    assert first.steps[0].output_tail == ("Added PHASE_3_ROLLOUT_PERCENTAGE",)
    assert [h.resumed_at for h in first.holds] == [T0 + 900]
    assert [t.item for t in first.ticks] == ["No critical errors in logs"]
    assert [t.item for t in report.preflight_ticks] == ["Tests pass"]


def test_the_rollback_with_its_gates_steps_and_output(report: Report) -> None:
    [rollback] = report.rollbacks
    assert (rollback.method, rollback.auto, rollback.ok) == ("flag", True, True)
    assert rollback.title == "Feature flag to 0%"
    assert rollback.gates[0].verdict == "fail"
    [step] = rollback.steps
    assert step.output_lines == 11
    assert step.output_tail[-1] == f"redeploying {EVIL}"
    assert len(step.output_tail) < step.output_lines  # a summary: the last lines
    assert [t.item for t in rollback.ticks] == ["Verify application is stable"]


def test_metrics_against_baseline_and_targets(report: Report) -> None:
    second = report.phases[1]
    p95 = next(m for m in second.metrics if m.metric == "farms.p95")
    assert p95.mean == pytest.approx(150.0)
    assert p95.baseline == 800.0
    assert p95.improvement == pytest.approx(650 / 800)
    outcomes = {t.rule: t.outcome for t in p95.targets}
    assert outcomes["improvement(farms.p95) >= 50%"] == "met"
    assert outcomes["farms.p95 <= 200ms"] == "met"
    assert any(v is not None for v in p95.spark)
    third = report.phases[2]
    errors = next(m for m in third.metrics if m.metric == "http.error_rate")
    outcomes = {t.rule: t.outcome for t in errors.targets}
    assert outcomes["http.error_rate > 0.5%"] == "breached"  # the spike's worst 10 s
    assert outcomes["http.error_rate > 2% for 5m"] == "breached"  # 30 buckets over 2%
    assert {t.rule: t.value for t in errors.targets}["http.error_rate > 2% for 5m"] == ("4% for 5m")
    assert outcomes["http.error_rate <= 0.1%"] == "missed"  # the mean, spike included
    hit = next(m for m in third.metrics if m.metric == "cache.hit_rate")
    assert {t.rule: t.outcome for t in hit.targets}["cache.hit_rate >= 60%"] == "met"
    no_data = next(m for m in third.metrics if m.metric == "db.pool_used")
    assert no_data.mean is None
    assert {t.outcome for t in no_data.targets} == {"no data"}


def test_final_summary_and_performance(report: Report) -> None:
    final = report.summary
    assert final.outcome == "rolled back"
    assert (final.started, final.ended) == (T0 + 60, T0 + 9031)
    assert (final.phases_reached, final.phases_total, final.holds) == (3, 3, 1)
    assert final.held_s == 300
    assert final.forced == ("phase 1: staging signed off",)
    assert final.rollbacks == ("'flag' (automatic) from phase 3: ok",)
    assert final.criteria_over == "Phase 3 Full (100%)"
    assert {t.rule: t.outcome for t in final.criteria}["cache.hit_rate >= 60%"] == "met"
    row = next(r for r in report.performance if r.metric == "farms.p95")
    assert row.means == pytest.approx((300.0, 150.0, 120.0))
    assert row.baseline == 800.0


def test_markdown_has_every_phase_the_rollback_and_sparklines(report: Report) -> None:
    text = render_markdown(report)
    for title in ("Phase 1 Shadow (10%)", "Phase 2 Partial (50%)", "Phase 3 Full (100%)"):
        assert f"### {title}" in text
    assert "## Final deployment summary" in text
    assert "## Performance report" in text
    assert "### Rollback `flag` — Feature flag to 0% (automatic)" in text
    assert "redeploying \\<script\\>" not in text  # outputs go in code blocks, verbatim
    assert f"  redeploying {EVIL}" in text
    assert "output (last 6 of 11 lines):" in text
    assert "**FAIL**" in text  # the verdict that fired it
    assert "**forced**: staging signed off" in text
    assert any(bar in text for bar in SPARK)
    # A person's text cannot open a table cell or raw HTML.
    assert "p99 spike \\| on /api/farms \\<b>" in text
    assert "<b>" not in text.replace("\\<b>", "")


def test_html_escapes_every_text_and_draws_svg(report: Report) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 3
    assert "<polyline" in page
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "p99 spike | on /api/farms &lt;b&gt;" in page
    for title in ("Phase 1 Shadow (10%)", "Phase 2 Partial (50%)", "Phase 3 Full (100%)"):
        assert f"<h3>{title}</h3>" in page
    assert "<script" not in page


def test_a_report_from_the_state_history_when_the_audit_is_empty(plan: Plan) -> None:
    history = (
        HistoryEntry(T0, "alice", "advance", Status.PENDING, Status.RUNNING, 0, 1, "go", True),
        HistoryEntry(T0 + 60, "bob", "hold", Status.RUNNING, Status.HOLDING, 1, 1, "look"),
    )
    state = RolloutState(status=Status.HOLDING, phase=1, hold_reason="look", history=history)
    with HistoryReader(Path("/nonexistent/history.sqlite")) as empty:
        report = gather(plan, state, [], empty, T0 + 120.0)
    assert "state file's history" in report.notes[0]
    [run] = report.phases
    assert (run.entered_by, run.forced, run.gates) == ("alice", True, ())
    assert run.ended_how == "on hold: look"
    assert report.summary.outcome == "on hold in phase 1 Shadow"
    text = render_markdown(report)
    assert "_none recorded_" in text


def test_odd_audit_lines_are_skipped_not_fatal(plan: Plan) -> None:
    entries: list[Any] = [
        {"event": "advance"},  # no time
        {"time": "yesterday", "event": "hold"},
        {"time": "2027-01-15T08:00:00.000Z", "event": "advance", "before": "?", "gates": [1]},
    ]
    with HistoryReader(Path("/nonexistent/history.sqlite")) as empty:
        report = gather(plan, RolloutState(), entries, empty, T0 + 0.0)
    assert "2 audit line(s) could not be read" in report.notes[0]
    assert len(report.phases) == 1
    render_markdown(report)
    render_html(report)


def stats(mean: float, low: float, high: float) -> HistorySummary:
    return HistorySummary(mean, low, high, mean, 10, 0, 1)


RUNS = (400.0, 400.0, None, 400.0, 450.0, 400.0, 100.0)  # 20s, a gap, then 30s over 300ms


SPREAD = stats(150, 100, 400)


@pytest.mark.parametrize(
    ("kind", "rule", "found", "buckets", "outcome", "value"),
    [
        ("success", "farms.p95 <= 200ms", SPREAD, (), "met", "150ms"),
        ("success", "farms.p95 <= 200ms", stats(250, 100, 400), (), "missed", "250ms"),
        ("failure", "farms.p95 > 300ms", SPREAD, (150, 400, 150), "breached", "400ms for 10s"),
        ("failure", "farms.p95 > 500ms", SPREAD, (150, 400), "clear", "400ms"),
        ("failure", "farms.p95 < 120ms", SPREAD, (100, 150), "breached", "100ms for 10s"),
        ("failure", "farms.p95 > 300ms for 30s", SPREAD, RUNS, "breached", "450ms for 30s"),
        ("failure", "farms.p95 > 300ms for 1m", SPREAD, RUNS, "clear", "450ms for 30s"),
        ("success", "improvement(farms.p95) >= 50%", stats(200, 100, 400), (), "met", "75%"),
        (
            "failure",
            "improvement(farms.p95) < 10%",
            stats(200, 100, 750),
            (200, 750),
            "breached",
            "6.2% for 10s",
        ),
        ("success", "farms.p95 <= 200ms", None, (), "no data", "-"),
        (
            "failure",
            "farms.p95 > 1s",
            HistorySummary(None, None, None, None, 0, 9, 1),
            (),
            "unknown",
            "-",
        ),
    ],
)
def test_judge_target(
    kind: str,
    rule: str,
    found: HistorySummary | None,
    buckets: tuple[float | None, ...],
    outcome: str,
    value: str,
) -> None:
    target = judge_target(kind, parse_rule(rule), found, 800.0, Unit.MS, buckets)
    assert (target.outcome, target.value) == (outcome, value)
    no_baseline = judge_target(
        kind, parse_rule("improvement(farms.p95) >= 1%"), found, None, Unit.MS
    )
    assert no_baseline.outcome in ("no baseline", "no data", "unknown")


def test_sparkline_scales_and_keeps_gaps() -> None:
    assert sparkline([0.0, 1.0, None, 2.0]) == "▁▅ █"
    assert sparkline([5.0, 5.0]) == "▄▄"
    assert sparkline([None, None]) == ""


def test_escaping_helpers() -> None:
    assert md("a|b <i>*x*</i> [l](u) &lt;") == "a\\|b \\<i>\\*x\\*\\</i> \\[l\\](u) \\&lt;"
    assert md("two\nlines\x1b[2J") == "two lines \\[2J"
    assert code("a `b` c") == "``a `b` c``"
    assert code("x | y") == "`x \\| y`"
    assert code("x | y", table=False) == "`x | y`"
    svg = chart([1.0, None, 2.0, 3.0], Unit.MS, baseline=2.5)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    for part in ("<circle", "<polyline", 'class="base"'):
        assert part in svg
    assert chart([None], Unit.MS) == "<span>no data</span>"
