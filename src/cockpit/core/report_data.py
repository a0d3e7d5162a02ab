"""Gathering a rollout report: pure functions from the plan, the state, the audit lines and the
metric history to a `Report` (see `report_model`); drawing it is someone else's job.

The metrics of a phase are judged against the plan the way a person reading the history
would, not the way the gates did: a success rule against the phase's mean; a failure or
automatic-rollback rule against its 10 s means, breached when they crossed the line for as
long as its `for` says (at 10 s resolution); an `improvement(...)` rule against the baseline
(captured, else configured). The gates' own verdicts are the ones the audit recorded at each
advance and rollback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from cockpit.core.catalog import Unit
from cockpit.core.durations import format_duration
from cockpit.core.gates import effective_baseline
from cockpit.core.history import BUCKET_S, Series, Summary
from cockpit.core.plan import Plan
from cockpit.core.quantities import format_value
from cockpit.core.report_audit import PhaseDraft, RollbackDraft, Story, read_story
from cockpit.core.report_model import (
    FinalSummary,
    MetricLine,
    PerformanceRow,
    PhaseRun,
    Report,
    RollbackRun,
    Target,
)
from cockpit.core.rollout import RolloutMachine
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.rule_types import Op, Rule

SPARK_POINTS = 40


class HistoryView(Protocol):
    """What the report reads of the metric history (`history.HistoryReader`)."""

    def summary(self, metric: str, since: float, until: float) -> Summary | None: ...

    def series(self, metric: str, since: float, until: float, slots: int) -> Series: ...


def gather(
    plan: Plan,
    state: RolloutState,
    entries: Sequence[Mapping[str, Any]],
    history: HistoryView,
    now: float,
    *,
    audit_check: str = "intact",
    notes: Iterable[str] = (),
) -> Report:
    story = read_story(plan, entries, state)
    baseline = effective_baseline(plan, state)
    drafts = story.phases
    phases = tuple(
        _phase_run(plan, d, history, baseline, now, last=d is drafts[-1], state=state)
        for d in drafts
    )
    rollbacks = tuple(_rollback_run(plan, d) for d in story.rollbacks)
    machine = RolloutMachine(plan)
    phase = plan.phase(state.phase)
    where = "not started"
    if phase is not None:
        where = (
            f"phase {state.phase}/{len(plan.phases)} {phase.name}, "
            f"{machine.traffic(state)}% traffic"
        )
    return Report(
        name=plan.name,
        generated_at=now,
        status=state.status.value,
        where=where,
        audit_check=audit_check,
        notes=(*_story_notes(story), *notes),
        preflight_ticks=tuple(story.preflight_ticks),
        phases=phases,
        rollbacks=rollbacks,
        timeline=tuple(story.timeline),
        performance=_performance(plan, phases, history, baseline, now),
        summary=_final(plan, state, story, phases, history, baseline, now),
    )


def _story_notes(story: Story) -> list[str]:
    notes = []
    if story.from_state:
        notes.append(
            "the audit log has no rollout events: the phases come from the state file's"
            " history (its last 200 events, without gate verdicts or step outputs)"
        )
    if story.skipped:
        notes.append(f"{story.skipped} audit line(s) could not be read and were left out")
    return notes


def _phase_run(
    plan: Plan,
    draft: PhaseDraft,
    history: HistoryView,
    baseline: Mapping[str, float],
    now: float,
    *,
    last: bool,
    state: RolloutState,
) -> PhaseRun:
    phase = plan.phase(draft.number)
    ended_how = draft.ended_how
    if draft.ended is None and last and state.status is Status.HOLDING:
        ended_how = f"on hold: {state.hold_reason}"
    until = now if draft.ended is None else draft.ended
    return PhaseRun(
        number=draft.number,
        name=phase.name if phase else "?",
        traffic=phase.traffic if phase else 0,
        attempt=draft.attempt,
        started=draft.started,
        entered_by=draft.entered_by,
        forced=draft.forced,
        reason=draft.reason,
        gates_of=draft.gates_of,
        gates=draft.gates,
        steps=tuple(draft.steps),
        ended=draft.ended,
        ended_by=draft.ended_by,
        ended_how=ended_how,
        holds=tuple(draft.holds),
        ticks=tuple(draft.ticks),
        metrics=_metric_lines(plan, draft.number, draft.started, until, history, baseline),
    )


def _phase_rules(plan: Plan, number: int) -> list[tuple[str, Rule]]:
    """(kind, rule) of a phase: its success and failure rules, then the automatic triggers."""
    phase = plan.phase(number)
    rules: list[tuple[str, Rule]] = []
    if phase is not None:
        rules += [("success", r) for r in phase.success]
        rules += [("failure", r) for r in phase.failure]
    if plan.auto_rollback is not None:
        rules += [("auto_rollback", r) for r in plan.auto_rollback.when]
    return rules


def _metric_lines(
    plan: Plan,
    number: int,
    since: float,
    until: float,
    history: HistoryView,
    baseline: Mapping[str, float],
) -> tuple[MetricLine, ...]:
    rules = _phase_rules(plan, number)
    names = _unique([r.metric for _, r in rules] + list(plan.baseline))
    lines = []
    for name in names:
        unit = plan.catalog.unit(name) or Unit.NUMBER
        summary = history.summary(name, since, until)
        base = baseline.get(name)
        mine = [(kind, rule) for kind, rule in rules if rule.metric == name]
        buckets: Sequence[float | None] = ()
        if summary is not None and any(kind != "success" for kind, _ in mine):
            every = math.ceil((until - since) / BUCKET_S) + 1  # one slot per bucket
            buckets = history.series(name, since, until, every).values
        targets = tuple(judge_target(kind, r, summary, base, unit, buckets) for kind, r in mine)
        if not targets and (summary is None or summary.mean is None):
            continue  # a baseline-only metric never known: the performance table shows it
        mean = summary.mean if summary else None
        lines.append(
            MetricLine(
                metric=name,
                unit=unit,
                mean=mean,
                low=summary.low if summary else None,
                high=summary.high if summary else None,
                baseline=base,
                improvement=_improvement(base, mean),
                points=summary.n if summary else 0,
                unknown=summary.unknown if summary else 0,
                spark=history.series(name, since, until, SPARK_POINTS).values,
                targets=targets,
            )
        )
    return tuple(lines)


def judge_target(
    kind: str,
    rule: Rule,
    summary: Summary | None,
    base: float | None,
    unit: Unit,
    buckets: Sequence[float | None] = (),
) -> Target:
    """A rule against a phase's history: a success rule on the mean; a failure or automatic
    rollback rule on `buckets` (the phase's 10 s means in order, None for a gap), breached
    when consecutive buckets breach for its `for` (one bucket without `for`)."""
    if summary is None:
        return Target(rule.text, kind, "no data", "-")
    if summary.mean is None:  # measured, but every point was unknown (stale, too few...)
        return Target(rule.text, kind, "unknown", "-")
    if rule.improvement and not base:
        return Target(rule.text, kind, "no baseline", "-")
    shown = Unit.RATIO if rule.improvement else unit

    def measure(value: float) -> float:
        return (base - value) / base if rule.improvement and base else value

    if kind == "success":
        value = measure(summary.mean)
        met = rule.op.holds(value, rule.threshold)
        return Target(rule.text, kind, "met" if met else "missed", format_value(value, shown))
    longest, worst = _longest_breach(rule, [None if v is None else measure(v) for v in buckets])
    needed = max(1, math.ceil((rule.for_s or 0.0) / BUCKET_S))
    if longest:
        lasted = format_duration(longest * BUCKET_S)
        outcome = "breached" if longest >= needed else "clear"
        return Target(rule.text, kind, outcome, f"{format_value(worst, shown)} for {lasted}")
    extremes = [measure(v) for v in (summary.low, summary.high) if v is not None]
    if rule.op in (Op.GT, Op.GE):
        closest = max(extremes)
    elif rule.op in (Op.LT, Op.LE):
        closest = min(extremes)
    else:
        closest = min(extremes, key=lambda v: abs(v - rule.threshold))
    return Target(rule.text, kind, "clear", format_value(closest, shown))


def _longest_breach(rule: Rule, values: Sequence[float | None]) -> tuple[int, float]:
    """(buckets, worst value) of the longest run of consecutive breaching buckets."""
    best, best_worst, run, worst = 0, 0.0, 0, 0.0
    for value in values:
        if value is None or not rule.op.holds(value, rule.threshold):
            run = 0
            continue
        farther = abs(value - rule.threshold) > abs(worst - rule.threshold)
        worst = value if run == 0 or farther else worst
        run += 1
        if run > best:
            best, best_worst = run, worst
    return best, best_worst


def _rollback_run(plan: Plan, draft: RollbackDraft) -> RollbackRun:
    method = plan.rollback(draft.method)
    return RollbackRun(
        method=draft.method,
        title=method.title if method else "",
        by=draft.by,
        auto=draft.auto,
        reason=draft.reason,
        from_phase=draft.from_phase,
        started=draft.started,
        finished=draft.finished,
        ok=draft.ok,
        detail=draft.detail,
        gates=draft.gates,
        steps=tuple(draft.steps),
        ticks=tuple(draft.ticks),
    )


def _performance(
    plan: Plan,
    phases: Sequence[PhaseRun],
    history: HistoryView,
    baseline: Mapping[str, float],
    now: float,
) -> tuple[PerformanceRow, ...]:
    """The plan's "performance report": each compared metric, baseline against every phase."""
    rules = [r for p in range(1, len(plan.phases) + 1) for _, r in _phase_rules(plan, p)]
    names = _unique(list(plan.baseline) + [r.metric for r in rules])
    start = phases[0].started if phases else now
    rows = []
    for name in names:
        means = []
        for run in phases:
            summary = history.summary(name, run.started, run.ended or now)
            means.append(summary.mean if summary else None)
        rows.append(
            PerformanceRow(
                metric=name,
                unit=plan.catalog.unit(name) or Unit.NUMBER,
                baseline=baseline.get(name),
                means=tuple(means),
                spark=history.series(name, start, now, SPARK_POINTS).values if phases else (),
            )
        )
    return tuple(rows)


def _final(
    plan: Plan,
    state: RolloutState,
    story: Story,
    phases: Sequence[PhaseRun],
    history: HistoryView,
    baseline: Mapping[str, float],
    now: float,
) -> FinalSummary:
    """The plan's "final deployment summary": outcome, time taken, holds, overrides,
    rollbacks, and its final success criteria over the latest phase run."""
    held = sum((h.resumed_at or p.ended or now) - h.at for p in phases for h in p.holds)
    rollbacks = []
    for rb in story.rollbacks:
        who = "automatic" if rb.auto else f"by {rb.by}"
        result = "running" if rb.finished is None else ("ok" if rb.ok else "FAILED")
        detail = f": {rb.detail}" if rb.detail else ""
        rollbacks.append(f"'{rb.method}' ({who}) from phase {rb.from_phase}: {result}{detail}")
    finished = [rb.finished for rb in story.rollbacks if rb.finished is not None]
    ended = story.completed_at
    if ended is None and state.status is Status.ROLLED_BACK and finished:
        ended = finished[-1]
    criteria: tuple[Target, ...] = ()
    over = ""
    if plan.phases and phases:
        latest = phases[-1]
        over = latest.title
        final_rules = plan.phases[-1].success
        criteria = tuple(
            judge_target(
                "success",
                rule,
                history.summary(rule.metric, latest.started, latest.ended or now),
                baseline.get(rule.metric),
                plan.catalog.unit(rule.metric) or Unit.NUMBER,
            )
            for rule in final_rules
        )
    return FinalSummary(
        outcome=_outcome(plan, state, bool(story.rollbacks)),
        started=phases[0].started if phases else state.started_at,
        ended=ended,
        phases_reached=max((p.number for p in phases), default=0),
        phases_total=len(plan.phases),
        holds=sum(len(p.holds) for p in phases),
        held_s=held,
        forced=tuple(f"phase {p.number}: {p.reason}" for p in phases if p.forced),
        rollbacks=tuple(rollbacks),
        completed_by=story.completed_by,
        criteria=criteria,
        criteria_over=over,
    )


def _outcome(plan: Plan, state: RolloutState, rolled_back_before: bool) -> str:
    phase = plan.phase(state.phase)
    name = f"phase {state.phase} {phase.name}" if phase else f"phase {state.phase}"
    match state.status:
        case Status.COMPLETE:
            return "complete"
        case Status.ROLLED_BACK:
            return "rolled back"
        case Status.ROLLING_BACK:
            failed = state.rollback is not None and state.rollback.ok is False
            return "rollback failed: pick another method" if failed else "rolling back"
        case Status.HOLDING:
            return f"on hold in {name}"
        case Status.RUNNING:
            return f"in progress: {name}"
    return "pending a new attempt" if rolled_back_before else "not started"


def _improvement(base: float | None, mean: float | None) -> float | None:
    return None if not base or mean is None else (base - mean) / base


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
