"""An immutable picture of the rollout at one moment: state, metrics, gates and sources.

The engine builds one per tick and hands it to the UI; `status --json` prints one. Built
from data only, so the same snapshot reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cockpit.core.durations import format_duration
from cockpit.core.gates import GateKind, GateResult, evaluate_gates, gate_blockers
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan
from cockpit.core.quantities import format_value
from cockpit.core.rollout import RolloutMachine
from cockpit.core.rollout_model import RolloutState
from cockpit.core.verdict import Verdict


@dataclass(frozen=True)
class MetricView:
    name: str
    value: float | None
    unit: str
    text: str  # the value for people, "" when there is none
    age_s: float | None
    status: str  # ok | stale | unknown | no data | down


@dataclass(frozen=True)
class LogLine:
    """A matching line of a `logs` source, as read (not yet cleaned for a terminal)."""

    t: float  # when the cockpit read it (epoch seconds)
    kind: str  # error | warn
    text: str


@dataclass(frozen=True)
class SourceView:
    name: str
    kind: str
    up: bool | None  # None: never polled
    error: str | None
    last_ok_s: float | None  # seconds since the last good poll
    lines: tuple[LogLine, ...] = ()  # newest matching log lines, oldest first (logs sources)


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    plan: Plan
    state: RolloutState
    version: int
    traffic: int
    metrics: tuple[MetricView, ...]
    gates: tuple[GateResult, ...]
    sources: tuple[SourceView, ...]
    blockers: tuple[str, ...]  # why an advance is refused now; empty when ready

    @property
    def phase_name(self) -> str:
        phase = self.plan.phase(self.state.phase)
        return phase.name if phase else "pre-flight"


def _metric_view(plan: Plan, store: MetricStore, name: str, now: float) -> MetricView:
    unit = plan.catalog.unit(name)
    assert unit is not None  # names come from the catalog
    point = store.latest(name)
    source = store.source(name.split(".", 1)[0])
    if point is None:
        return MetricView(name, None, unit.value, "", None, "no data")
    age = max(0.0, now - point.t)
    if point.value is None:
        return MetricView(name, None, unit.value, point.reason or "", age, "unknown")
    status = "ok"
    if source.up is False and not name.endswith(".up"):
        status = "down"
    elif age > store.stale_after(name):
        status = "stale"
    return MetricView(name, point.value, unit.value, format_value(point.value, unit), age, status)


def log_lines(found: object) -> tuple[LogLine, ...]:
    """`details["recent"]` of a logs source as LogLines; anything malformed is left out."""
    if not isinstance(found, Sequence) or isinstance(found, str):
        return ()
    lines = []
    for item in found:
        match item:
            case (int() | float() as t, str() as kind, str() as text):
                lines.append(LogLine(float(t), kind, text))
    return tuple(lines)


def build_snapshot(
    plan: Plan, state: RolloutState, version: int, store: MetricStore, now: float
) -> Snapshot:
    machine = RolloutMachine(plan)
    gates = evaluate_gates(plan, state, store, now)
    sources = []
    for spec in plan.sources.values():
        status = store.source(spec.name)
        last_ok = None if status.last_ok is None else max(0.0, now - status.last_ok)
        lines = log_lines(store.details(spec.name).get("recent"))
        sources.append(SourceView(spec.name, spec.kind, status.up, status.error, last_ok, lines))
    blockers = machine.blockers(state, now, gate_blockers(gates))
    return Snapshot(
        taken_at=now,
        plan=plan,
        state=state,
        version=version,
        traffic=machine.traffic(state),
        metrics=tuple(_metric_view(plan, store, n, now) for n in plan.catalog.names()),
        gates=tuple(gates),
        sources=tuple(sources),
        blockers=tuple(blockers),
    )


def exit_status(snapshot: Snapshot) -> int:
    """`status` exit code: 1 a failure/auto-rollback rule FAILs, 3 anything UNKNOWN, else 0."""
    if any(g.verdict is Verdict.FAIL and g.kind is not GateKind.SUCCESS for g in snapshot.gates):
        return 1
    if any(g.verdict is Verdict.UNKNOWN for g in snapshot.gates):
        return 3
    return 0


def _rollout_json(snapshot: Snapshot) -> dict[str, Any]:
    state, plan = snapshot.state, snapshot.plan
    phase = plan.phase(state.phase)
    in_phase = None
    if state.phase_entered_at is not None:
        in_phase = round(snapshot.taken_at - state.phase_entered_at, 3)
    rollback = None
    if state.rollback is not None:
        rb = state.rollback
        rollback = {
            "method": rb.method,
            "by": rb.by,
            "auto": rb.auto,
            "started_at": rb.started_at,
            "finished_at": rb.finished_at,
            "ok": rb.ok,
            "detail": rb.detail,
        }
    return {
        "name": plan.name,
        "status": state.status.value,
        "phase": state.phase,
        "phases": len(plan.phases),
        "phase_name": snapshot.phase_name,
        "traffic": snapshot.traffic,
        "in_phase_s": in_phase,
        "bake_s": phase.bake_s if phase else None,
        "hold_reason": state.hold_reason,
        "version": snapshot.version,
        "updated_by": state.updated_by or None,
        "updated_at": state.updated_at,
        "ready": not snapshot.blockers,
        "blockers": list(snapshot.blockers),
        "rollback": rollback,
        "baseline": {
            "configured": dict(plan.baseline),
            "captured": dict(state.baseline.values) if state.baseline else {},
            "captured_at": state.baseline.captured_at if state.baseline else None,
        },
    }


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    """The `status --json` document (see the README for its fields)."""
    return {
        "rollout": _rollout_json(snapshot),
        "metrics": {
            m.name: {
                "value": m.value,
                "unit": m.unit,
                "age_s": None if m.age_s is None else round(m.age_s, 3),
                "status": m.status,
            }
            for m in snapshot.metrics
        },
        "gates": [
            {
                "phase": g.phase,
                "kind": g.kind.value,
                "rule": g.rule.text,
                "verdict": g.verdict.value,
                "value": g.value,
                "reason": g.reason,
            }
            for g in snapshot.gates
        ],
        "sources": {s.name: _source_json(s) for s in snapshot.sources},
    }


def _source_json(source: SourceView) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "up": source.up,
        "error": source.error,
        "last_ok_s": None if source.last_ok_s is None else round(source.last_ok_s, 3),
    }
    if source.kind == "logs":  # the newest matching lines, oldest first
        doc["lines"] = [{"t": n.t, "kind": n.kind, "text": n.text} for n in source.lines]
    return doc


def describe_age(age_s: float | None) -> str:
    return "never" if age_s is None else f"{format_duration(age_s)} ago"
