"""What a rollout report says, as data (gathered by `report_data`, drawn by `report_markdown`
and `report_html`), and the small formatting both drawings share.

Values are in base units with their `Unit`; times are UTC epoch seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cockpit.core.catalog import Unit
from cockpit.core.durations import format_duration
from cockpit.core.quantities import format_value

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class GateSeen:
    """One gate's verdict as the audit line of an advance or rollback recorded it."""

    kind: str  # success | failure | auto_rollback
    rule: str
    verdict: str  # pass | fail | unknown
    value: str  # as people read it, "" when there was none
    reason: str


@dataclass(frozen=True)
class StepRun:
    """An action step (traffic change, rollback command) from its action.start/end lines."""

    step: str
    at: float
    ok: bool | None  # None: started, no end recorded (the cockpit running it died)
    error: str
    output_tail: tuple[str, ...]  # the last lines of its output
    output_lines: int


@dataclass(frozen=True)
class Tick:
    at: float
    by: str
    item: str
    ticked: bool  # False: unticked


@dataclass(frozen=True)
class HoldSpan:
    at: float
    by: str
    reason: str
    resumed_at: float | None
    resumed_by: str


@dataclass(frozen=True)
class Target:
    """A rule of the plan against what the history measured over a phase."""

    rule: str
    kind: str  # success | failure | auto_rollback
    outcome: str  # met | missed | breached | clear | unknown | no data | no baseline
    value: str  # what was compared, as people read it


@dataclass(frozen=True)
class MetricLine:
    metric: str
    unit: Unit
    mean: float | None
    low: float | None  # lowest 10 s mean
    high: float | None  # highest 10 s mean
    baseline: float | None
    improvement: float | None  # (baseline - mean) / baseline
    points: int
    unknown: int
    spark: tuple[float | None, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class PhaseRun:
    """One stay in a phase, from the advance into it to whatever ended it."""

    number: int
    name: str
    traffic: int
    attempt: int  # 2 after a rollback and restart, ...
    started: float
    entered_by: str
    forced: bool
    reason: str
    gates_of: str  # whose rules those verdicts judged: "pre-flight", "phase 1 Shadow"
    gates: tuple[GateSeen, ...]
    steps: tuple[StepRun, ...]
    ended: float | None  # None: still the current phase
    ended_by: str
    ended_how: str
    holds: tuple[HoldSpan, ...]
    ticks: tuple[Tick, ...]
    metrics: tuple[MetricLine, ...]

    @property
    def title(self) -> str:
        again = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"Phase {self.number} {self.name} ({self.traffic}%){again}"


@dataclass(frozen=True)
class RollbackRun:
    method: str
    title: str
    by: str
    auto: bool
    reason: str
    from_phase: int
    started: float
    finished: float | None
    ok: bool | None
    detail: str
    gates: tuple[GateSeen, ...]
    steps: tuple[StepRun, ...]
    ticks: tuple[Tick, ...]  # the after-rollback checklist


@dataclass(frozen=True)
class Happening:
    """A line of the timeline: anything the audit recorded except action steps."""

    at: float
    by: str
    event: str
    text: str


@dataclass(frozen=True)
class PerformanceRow:
    """One metric across the rollout: baseline, each phase run's mean, the whole-run trend."""

    metric: str
    unit: Unit
    baseline: float | None
    means: tuple[float | None, ...]  # per phase run, in `Report.phases` order
    spark: tuple[float | None, ...]


@dataclass(frozen=True)
class FinalSummary:
    outcome: str
    started: float | None
    ended: float | None
    phases_reached: int
    phases_total: int
    holds: int
    held_s: float
    forced: tuple[str, ...]  # "phase 2: reason" for each forced advance
    rollbacks: tuple[str, ...]  # "flag (automatic) from phase 2: ok"
    completed_by: str
    criteria: tuple[Target, ...]  # the last phase's success rules, over the latest run
    criteria_over: str  # the title of that run


@dataclass(frozen=True)
class Report:
    name: str
    generated_at: float
    status: str
    where: str  # "phase 2/3 Partial, 50% traffic"
    audit_check: str  # "intact" or what is wrong with the chain
    notes: tuple[str, ...]  # what the report could not know, and why
    preflight_ticks: tuple[Tick, ...]
    phases: tuple[PhaseRun, ...]
    rollbacks: tuple[RollbackRun, ...]
    timeline: tuple[Happening, ...]
    performance: tuple[PerformanceRow, ...]
    summary: FinalSummary


# -- shared formatting ---------------------------------------------------------------------


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-"
    return format_duration(end - start)


def value_text(value: float | None, unit: Unit) -> str:
    return "-" if value is None else format_value(value, unit)


def mean_text(line: MetricLine) -> str:
    """The mean, or why there is none: "unknown (38 points)" when only unknowns came."""
    if line.mean is None and line.unknown:
        return f"unknown ({line.unknown} points)"
    return value_text(line.mean, line.unit)


def ratio_text(value: float | None) -> str:
    return "-" if value is None else format_value(value, Unit.RATIO)


def sparkline(values: Sequence[float | None]) -> str:
    """Unicode bars scaled between the lowest and highest value; a gap is a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    top = len(SPARK) - 1
    bars = []
    for value in values:
        if value is None:
            bars.append(" ")
        elif high == low:
            bars.append(SPARK[top // 2])
        else:
            bars.append(SPARK[round((value - low) / (high - low) * top)])
    return "".join(bars)


def one_line(text: object, limit: int = 300) -> str:
    """Printable, whitespace collapsed, cut at `limit` characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
