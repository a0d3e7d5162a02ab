"""Notification text: event and phase labels, the summary text and the summary clock.

What the notifier sends with them (the Slack line, the webhook body) is tested in
test_notify.py.
"""

from __future__ import annotations

from pathlib import Path

from cockpit.core.catalog import Catalog
from cockpit.core.gates import GateKind, GateResult
from cockpit.core.notify_text import (
    EVENTS,
    SummaryClock,
    event_label,
    phase_label,
    summary_text,
)
from cockpit.core.plan import Phase, Plan
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.rules import parse_rule
from cockpit.core.snapshot import Snapshot
from cockpit.core.verdict import Verdict

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
ROLLOUT = "Phase 3: multi-layer caching"
PHASES = ("Shadow", "Partial", "Full")


def test_labels_for_every_event_and_phase() -> None:
    assert ", ".join(event_label(e) for e in EVENTS) == (
        "advance, hold, resume, AUTO-ROLLBACK ARMED, auto-rollback cancelled, AUTO-ROLLBACK FIRED,"
        " rollback started, rollback finished, ROLLBACK FAILED, summary"
    )
    assert phase_label(0, 0, PHASES) == "pre-flight 0%"
    assert phase_label(2, 50, PHASES) == "phase 2/3 Partial 50%"
    assert phase_label(2, 50) == "phase 2 50%"


# -- the periodic summary --------------------------------------------------------------------


def test_summary_clock_waits_a_period_after_start_and_after_each_summary() -> None:
    clock = SummaryClock(4 * 3600, clock=lambda: NOW)
    assert not clock.due(NOW)
    assert not clock.due(NOW + 4 * 3600 - 1)
    assert clock.due(NOW + 4 * 3600)
    assert clock.due(NOW + 30 * 3600)  # asleep for a day: one summary, not six
    clock.sent(NOW + 30 * 3600)
    assert not clock.due(NOW + 31 * 3600)
    assert clock.due(NOW + 34 * 3600)
    assert not SummaryClock(0, clock=lambda: NOW).due(NOW + 10**9)  # summaries off
    clock = SummaryClock(3600, clock=lambda: NOW)
    assert not clock.due(NOW - 86400)  # the wall clock went back a day
    assert clock.due(NOW - 86400 + 3600)


def make_snapshot(gates: tuple[GateResult, ...], blockers: tuple[str, ...]) -> Snapshot:
    plan = Plan(
        name=ROLLOUT,
        config_path=Path("c.toml"),
        state_path=Path("s.toml"),
        audit_path=Path("a.jsonl"),
        sources={},
        catalog=Catalog({}),
        phases=(Phase("Shadow", 10, 48 * 3600), Phase("Partial", 50, 72 * 3600)),
    )
    state = RolloutState(status=Status.RUNNING, phase=2, phase_entered_at=NOW - 20 * 3600)
    return Snapshot(NOW, plan, state, 3, 50, (), gates, (), blockers)


def gate(verdict: Verdict, text: str = "http.error_rate <= 0.1%") -> GateResult:
    return GateResult(2, GateKind.SUCCESS, parse_rule(text), verdict, 0.004, "0.4%", "why")


def test_summary_text_from_the_snapshot() -> None:
    gates = (gate(Verdict.PASS), gate(Verdict.PASS), gate(Verdict.FAIL), gate(Verdict.UNKNOWN))
    snapshot = make_snapshot(gates, ("a", "b"))
    assert summary_text(snapshot) == (
        "phase 2/2 Partial at 50% traffic, running; 20h in phase of 72h bake;"
        " gates 2 pass, 1 fail, 1 unknown; 2 blockers"
    )
    assert summary_text(make_snapshot((), ("a",))).endswith(
        "gates 0 pass, 0 fail, 0 unknown; 1 blocker"
    )
    assert summary_text(make_snapshot((), ())).endswith("; no blockers")
