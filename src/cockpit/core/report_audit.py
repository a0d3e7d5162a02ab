"""The rollout's story from its audit log: phase runs, holds, ticks, rollbacks and their steps.

The audit log is the complete record (the state file keeps only its last 200 events, without
gate verdicts or outputs). What an audit line carries: `time`, `operator`, `address`, `event`,
`phase`, `before`/`after` ({status, phase, traffic, version}), `reason`, `gates` (the verdicts
the operator saw: kind, rule, verdict, value, reason), and per event `method`, `item`, `force`,
`ok`, `detail`; action steps are `action.start` / `action.end` lines with `step`, `ok`,
`error` and the end of `output`. Nothing ties a step to the event that asked for it, so a step
belongs to the last advance or rollback before it.

Lines are read defensively: a line of the wrong shape is skipped and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cockpit.core.catalog import Unit
from cockpit.core.plan import Plan
from cockpit.core.quantities import format_value
from cockpit.core.report_model import GateSeen, Happening, HoldSpan, StepRun, Tick, one_line
from cockpit.core.rollout_model import HistoryEntry, RolloutState
from cockpit.core.rule_types import Rule

TAIL_LINES = 6
STATE_EVENTS = {
    "advance",
    "hold",
    "resume",
    "rollback",
    "auto_rollback",
    "rollback_finished",
    "check",
    "uncheck",
    "capture_baseline",
    "restart",
    "cancel_auto",
}


@dataclass
class PhaseDraft:
    number: int
    attempt: int
    started: float
    entered_by: str
    forced: bool
    reason: str
    gates_of: str
    gates: tuple[GateSeen, ...]
    steps: list[StepRun] = field(default_factory=list)
    ended: float | None = None
    ended_by: str = ""
    ended_how: str = "still running"
    holds: list[HoldSpan] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)


@dataclass
class RollbackDraft:
    method: str
    by: str
    auto: bool
    reason: str
    from_phase: int
    started: float
    gates: tuple[GateSeen, ...]
    finished: float | None = None
    ok: bool | None = None
    detail: str = ""
    steps: list[StepRun] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)


@dataclass
class Story:
    phases: list[PhaseDraft] = field(default_factory=list)
    rollbacks: list[RollbackDraft] = field(default_factory=list)
    timeline: list[Happening] = field(default_factory=list)
    preflight_ticks: list[Tick] = field(default_factory=list)
    completed_at: float | None = None
    completed_by: str = ""
    skipped: int = 0  # audit lines that could not be read
    from_state: bool = False  # told by the state file's history, the audit log had nothing


def read_story(plan: Plan, entries: Sequence[Mapping[str, Any]], state: RolloutState) -> Story:
    """Walk the audit log; when it has no rollout events, fall back on the state's history."""
    lines = [e for e in entries if isinstance(e, Mapping)]
    from_state = not any(e.get("event") in STATE_EVENTS for e in lines) and bool(state.history)
    if from_state:
        lines = [_from_history(entry) for entry in state.history]
    walker = _Walker(plan)
    walker.story.skipped = len(entries) - len(lines) if not from_state else 0
    for entry in lines:
        walker.take(entry)
    walker.close_open_steps()
    walker.story.from_state = from_state
    return walker.story


class _Walker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.story = Story()
        self.current: PhaseDraft | None = None
        self.acting: PhaseDraft | RollbackDraft | None = None  # whose steps follow
        self.started: dict[str, float] = {}  # step text -> action.start time, until its end
        self.rules = _rules_by_text(plan)

    def take(self, entry: Mapping[str, Any]) -> None:
        at = _time(entry.get("time"))
        event = entry.get("event")
        if at is None or not isinstance(event, str):
            self.story.skipped += 1
            return
        who = _who(entry)
        if event == "action.start":
            self.started[_text(entry.get("step"))] = at
        elif event == "action.end":
            self._step_end(entry, at)
        else:
            self.story.timeline.append(Happening(at, who, event, _describe(entry)))
            handler = getattr(self, "_on_" + event.replace(".", "_"), None)
            if handler is not None:
                handler(entry, at, who)

    def finish(self, at: float, by: str, how: str) -> None:
        if self.current is not None:
            self.current.ended, self.current.ended_by, self.current.ended_how = at, by, how
            for i, hold in enumerate(self.current.holds):
                if hold.resumed_at is None:  # a phase that ends ends its hold
                    self.current.holds[i] = HoldSpan(hold.at, hold.by, hold.reason, at, "")
            self.current = None

    def _on_advance(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        before, after = _summary(entry.get("before")), _summary(entry.get("after"))
        left = before.get("phase", 0)
        gates_of = self._phase_label(left) if before.get("status") != "pending" else "pre-flight"
        forced = entry.get("force") is True
        if after.get("status") == "complete":
            self.finish(at, who, "completed the rollout")
            self.story.completed_at, self.story.completed_by = at, who
            self.acting = None
            return
        number = after.get("phase", left + 1)
        self.finish(at, who, f"advanced to phase {number}")
        attempt = 1 + sum(1 for p in self.story.phases if p.number == number)
        self.current = PhaseDraft(
            number=number,
            attempt=attempt,
            started=at,
            entered_by=who,
            forced=forced,
            reason=_text(entry.get("reason")),
            gates_of=gates_of,
            gates=self._gates(entry.get("gates")),
        )
        self.story.phases.append(self.current)
        self.acting = self.current

    def _on_rollback(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        auto = entry.get("event") == "auto_rollback"
        method = _text(entry.get("method"))
        draft = RollbackDraft(
            method=method,
            by=who,
            auto=auto,
            reason=_text(entry.get("reason")),
            from_phase=_summary(entry.get("before")).get("phase", 0),
            started=at,
            gates=self._gates(entry.get("gates")),
        )
        self.story.rollbacks.append(draft)
        how = f"rolled back by '{method}'" + (" (automatic)" if auto else "")
        self.finish(at, who, how)
        self.acting = draft

    _on_auto_rollback = _on_rollback

    def _on_rollback_finished(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        running = [r for r in self.story.rollbacks if r.finished is None]
        if running:
            draft = running[-1]
            draft.finished, draft.ok = at, entry.get("ok") is True
            draft.detail = _text(entry.get("detail"))

    def _on_hold(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        if self.current is not None:
            self.current.holds.append(HoldSpan(at, who, _text(entry.get("reason")), None, ""))

    def _on_resume(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        if self.current is not None and self.current.holds:
            last = self.current.holds[-1]
            if last.resumed_at is None:
                self.current.holds[-1] = HoldSpan(last.at, last.by, last.reason, at, who)

    def _on_check(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        tick = Tick(at, who, _text(entry.get("item")), entry.get("event") == "check")
        status = _summary(entry.get("before")).get("status")
        if status == "pending":
            self.story.preflight_ticks.append(tick)
        elif status in ("rolling_back", "rolled_back") and self.story.rollbacks:
            self.story.rollbacks[-1].ticks.append(tick)
        elif self.current is not None:
            self.current.ticks.append(tick)

    _on_uncheck = _on_check

    def _on_restart(self, entry: Mapping[str, Any], at: float, who: str) -> None:
        self.finish(at, who, "restarted")
        self.acting = None

    def _step_end(self, entry: Mapping[str, Any], at: float) -> None:
        step = _text(entry.get("step"))
        started = self.started.pop(step, at)
        output = str(entry.get("output") or "").splitlines()
        lines = [one_line(line, 200) for line in output if line.strip()]
        ok = entry.get("ok")
        run = StepRun(
            step=step,
            at=started,
            ok=ok if isinstance(ok, bool) else None,
            error=_text(entry.get("error")),
            output_tail=tuple(lines[-TAIL_LINES:]),
            output_lines=len(lines),
        )
        if self.acting is not None:
            self.acting.steps.append(run)

    def close_open_steps(self) -> None:
        """Steps with a start and no end: the cockpit running them stopped mid-way."""
        for step, at in self.started.items():
            if self.acting is not None:
                self.acting.steps.append(StepRun(step, at, None, "no end recorded", (), 0))
        self.started.clear()

    def _gates(self, raw: object) -> tuple[GateSeen, ...]:
        if not isinstance(raw, list):
            return ()
        seen = []
        for gate in raw:
            if not isinstance(gate, Mapping):
                continue
            rule = _text(gate.get("rule"))
            value = gate.get("value")
            shown = ""
            if isinstance(value, int | float) and not isinstance(value, bool):
                shown = self._value(rule, float(value))
            seen.append(
                GateSeen(
                    kind=_text(gate.get("kind")),
                    rule=rule,
                    verdict=_text(gate.get("verdict")) or "unknown",
                    value=shown,
                    reason=_text(gate.get("reason")),
                )
            )
        return tuple(seen)

    def _value(self, rule_text: str, value: float) -> str:
        rule = self.rules.get(rule_text)
        if rule is None:
            return f"{value:.6g}"
        unit = Unit.RATIO if rule.improvement else self.plan.catalog.unit(rule.metric)
        return format_value(value, unit or Unit.NUMBER)

    def _phase_label(self, number: int) -> str:
        phase = self.plan.phase(number)
        return f"phase {number} {phase.name}" if phase else f"phase {number}"


def _rules_by_text(plan: Plan) -> dict[str, Rule]:
    rules = [*plan.preflight_rules, *(plan.auto_rollback.when if plan.auto_rollback else ())]
    for phase in plan.phases:
        rules += [*phase.success, *phase.failure]
    return {rule.text: rule for rule in rules}


def _describe(entry: Mapping[str, Any]) -> str:
    """The timeline's words for one line: the change, then what it names, then why."""
    parts = []
    before, after = _summary(entry.get("before")), _summary(entry.get("after"))
    if before and after:
        parts.append(
            f"{before.get('status', '?')}/{before.get('phase', '?')} -> "
            f"{after.get('status', '?')}/{after.get('phase', '?')}"
        )
    for key in ("method", "item", "action"):
        if entry.get(key):
            parts.append(f"{key} {_text(entry.get(key))}")
    if entry.get("force") is True:
        parts.append("forced")
    if entry.get("event") == "rollback_finished":
        parts.append("ok" if entry.get("ok") is True else "FAILED")
    for key in ("reason", "detail"):
        if entry.get(key):
            parts.append(_text(entry.get(key)))
    return "; ".join(parts)


def _from_history(entry: HistoryEntry) -> dict[str, Any]:
    """A state-file history entry in the shape of an audit line (no gates, no outputs)."""
    return {
        "time": entry.at,
        "operator": entry.by,
        "event": entry.event,
        "before": {"status": entry.from_status.value, "phase": entry.from_phase},
        "after": {"status": entry.to_status.value, "phase": entry.to_phase},
        "reason": entry.reason,
        "force": entry.forced,
    }


def _time(raw: object) -> float | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


def _who(entry: Mapping[str, Any]) -> str:
    who = _text(entry.get("operator")) or "?"
    address = _text(entry.get("address"))
    return f"{who}@{address}" if address else who


def _summary(raw: object) -> dict[str, Any]:
    """`before`/`after` with `phase` an int (0 when absent or wrong)."""
    if not isinstance(raw, Mapping):
        return {}
    found = dict(raw)
    phase = found.get("phase")
    found["phase"] = phase if isinstance(phase, int) and not isinstance(phase, bool) else 0
    return found


def _text(raw: object) -> str:
    return "" if raw is None else one_line(raw)
