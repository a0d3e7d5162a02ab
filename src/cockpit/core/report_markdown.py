"""A rollout report as Markdown (GitHub-flavoured tables, unicode sparklines).

Every text that came from a person or a command (reasons, items, outputs) is escaped, so it
reads as written and cannot start a table cell, a link or raw HTML of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from cockpit.core.report_model import (
    FinalSummary,
    GateSeen,
    HoldSpan,
    MetricLine,
    PhaseRun,
    Report,
    RollbackRun,
    StepRun,
    Target,
    Tick,
    mean_text,
    one_line,
    ratio_text,
    span,
    sparkline,
    value_text,
    when,
)

# Enough to keep text plain in a paragraph, a list item or a table cell: `<` stops raw HTML
# and autolinks, `&` entities, `[` links and images, `|` cells, the rest emphasis and code.
_SPECIAL = re.compile(r"([\\`*_\[\]<|~&])")
_TICKS = re.compile(r"`+")


def md(text: object) -> str:
    """One line of plain text, with Markdown's special characters escaped."""
    return _SPECIAL.sub(r"\\\1", one_line(text))


def code(text: object, *, table: bool = True) -> str:
    """An inline code span that survives backticks in `text` (and pipes, inside a table)."""
    flat = one_line(text)
    longest = max((len(m) for m in _TICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    body = flat.replace("|", "\\|") if table else flat
    return f"{fence}{pad}{body}{pad}{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    yield "| " + " | ".join(header) + " |"
    yield "|" + "|".join("---" for _ in header) + "|"
    for row in rows:
        yield "| " + " | ".join(cell or " " for cell in row) + " |"
    yield ""


def render_markdown(report: Report) -> str:
    return "\n".join(_report(report)).rstrip("\n") + "\n"


def _report(report: Report) -> Iterator[str]:
    yield f"# Rollout report: {md(report.name)}"
    yield ""
    status = md(report.status.replace("_", " "))
    yield (
        f"Generated {when(report.generated_at)} · status **{status}** · "
        f"{md(report.where)} · audit log: {md(report.audit_check)}"
    )
    yield ""
    for note in report.notes:
        yield f"> Note: {md(note)}"
        yield ""
    yield from _summary(report.summary)
    yield from _performance(report)
    yield "## Phases"
    yield ""
    if not report.phases:
        yield "No phase was entered yet."
        yield ""
    for run in report.phases:
        yield from _phase(run)
    if report.rollbacks:
        yield "## Rollbacks"
        yield ""
        for rollback in report.rollbacks:
            yield from _rollback(rollback)
    if report.preflight_ticks:
        yield "## Pre-flight checklist"
        yield ""
        yield from _ticks(report.preflight_ticks)
    yield "## Timeline"
    yield ""
    yield from table(
        ("Time", "Who", "Event", "Details"),
        ((when(h.at), md(h.by), code(h.event), md(h.text)) for h in report.timeline),
    )


def _summary(summary: FinalSummary) -> Iterator[str]:
    yield "## Final deployment summary"
    yield ""
    held = f" ({span(0, summary.held_s)} in total)" if summary.holds else ""
    took = f" (took {span(summary.started, summary.ended)})" if summary.ended else ""
    rows = [
        ("Outcome", f"**{md(summary.outcome)}**"),
        ("Started", when(summary.started)),
        ("Ended", when(summary.ended) + took),
        ("Phases reached", f"{summary.phases_reached} of {summary.phases_total}"),
        ("Holds", f"{summary.holds}{held}"),
        ("Forced advances", "; ".join(md(f) for f in summary.forced) or "none"),
        ("Rollbacks", "; ".join(md(r) for r in summary.rollbacks) or "none"),
    ]
    if summary.completed_by:
        rows.append(("Completed by", md(summary.completed_by)))
    yield from table(("", ""), rows)
    if summary.criteria:
        yield f"Success criteria of the final phase, over {md(summary.criteria_over)}:"
        yield ""
        yield from _targets(summary.criteria)


def _targets(targets: Sequence[Target]) -> Iterator[str]:
    yield from table(
        ("Criterion", "Kind", "Measured", "Result"),
        ((code(t.rule), md(t.kind), md(t.value), _outcome(t.outcome)) for t in targets),
    )


def _outcome(outcome: str) -> str:
    return f"**{outcome}**" if outcome in ("missed", "breached") else outcome


def _performance(report: Report) -> Iterator[str]:
    yield "## Performance report"
    yield ""
    if not report.phases:
        yield "Nothing to compare before the first phase."
        yield ""
        return
    header = ["Metric", "Baseline"]
    header += [
        md(f"P{run.number} {run.name}" + (f" #{run.attempt}" if run.attempt > 1 else ""))
        for run in report.phases
    ]
    header.append("Trend (whole rollout)")
    rows = []
    for row in report.performance:
        cells = [code(row.metric), value_text(row.baseline, row.unit)]
        cells += [value_text(mean, row.unit) for mean in row.means]
        cells.append(sparkline(row.spark))
        rows.append(cells)
    yield "Mean of each phase from the 10 s metric history, against the baseline."
    yield ""
    yield from table(header, rows)


def _phase(run: PhaseRun) -> Iterator[str]:
    yield f"### {md(run.title)}"
    yield ""
    forced = f" — **forced**: {md(run.reason)}" if run.forced else ""
    why = f" — {md(run.reason)}" if run.reason and not run.forced else ""
    yield f"- Started: {when(run.started)} by {md(run.entered_by)}{forced}{why}"
    if run.ended is None:
        yield f"- Ended: not yet ({md(run.ended_how)})"
    else:
        lasted = span(run.started, run.ended)
        yield f"- Ended: {when(run.ended)} by {md(run.ended_by)}: {md(run.ended_how)} ({lasted})"
    for hold in run.holds:
        yield f"- {_hold(hold)}"
    yield ""
    yield from _gates(
        f"Gate verdicts at the advance into it ({md(run.gates_of)} rules):", run.gates
    )
    if run.steps:
        yield "Traffic change:"
        yield ""
        yield from _steps(run.steps)
    if run.ticks:
        yield "Checklist:"
        yield ""
        yield from _ticks(run.ticks)
    yield "Metrics over the phase, against baseline and the plan's targets:"
    yield ""
    yield from _metrics(run.metrics)


def _hold(hold: HoldSpan) -> str:
    text = f"Held {when(hold.at)} by {md(hold.by)}: {md(hold.reason)}"
    if hold.resumed_at is None:
        return text + " (still on hold)"
    who = f" by {md(hold.resumed_by)}" if hold.resumed_by else ""
    return text + f"; resumed {when(hold.resumed_at)}{who} ({span(hold.at, hold.resumed_at)})"


def _gates(title: str, gates: Sequence[GateSeen]) -> Iterator[str]:
    yield title
    yield ""
    if not gates:
        yield "_none recorded_"
        yield ""
        return
    yield from table(
        ("Kind", "Rule", "Verdict", "Value", "Reason"),
        ((md(g.kind), code(g.rule), _verdict(g.verdict), md(g.value), md(g.reason)) for g in gates),
    )


def _verdict(verdict: str) -> str:
    return f"**{md(verdict.upper())}**" if verdict != "pass" else "pass"


def _steps(steps: Sequence[StepRun]) -> Iterator[str]:
    for step in steps:
        result = {True: "ok", False: "FAILED", None: "no end recorded"}[step.ok]
        error = f": {md(step.error)}" if step.error and step.ok is not True else ""
        yield f"- {when(step.at)} {code(step.step, table=False)}: **{result}**{error}"
        if step.output_tail:
            shown, total = len(step.output_tail), step.output_lines
            yield f"  output (last {shown} of {total} lines):" if total > shown else "  output:"
            longest = max((len(m) for m in _TICKS.findall("\n".join(step.output_tail))), default=0)
            fence = "`" * max(3, longest + 1)
            yield f"  {fence}text"
            yield from (f"  {line}" for line in step.output_tail)
            yield f"  {fence}"
    yield ""


def _ticks(ticks: Sequence[Tick]) -> Iterator[str]:
    for tick in ticks:
        verb = "ticked" if tick.ticked else "unticked"
        yield f"- {when(tick.at)} {md(tick.by)} {verb}: {md(tick.item)}"
    yield ""


def _metrics(lines: Sequence[MetricLine]) -> Iterator[str]:
    rows = []
    for line in lines:
        extent = "-"
        if line.low is not None and line.high is not None:
            extent = f"{value_text(line.low, line.unit)} – {value_text(line.high, line.unit)}"
        targets = "; ".join(
            f"{code(t.rule)} {_outcome(t.outcome)} ({md(t.value)})" for t in line.targets
        )
        rows.append(
            (
                code(line.metric),
                mean_text(line),
                extent,
                value_text(line.baseline, line.unit),
                ratio_text(line.improvement),
                targets or "-",
                sparkline(line.spark),
            )
        )
    yield from table(
        ("Metric", "Mean", "10 s low – high", "Baseline", "Improvement", "Targets", "Trend"), rows
    )


def _rollback(rollback: RollbackRun) -> Iterator[str]:
    how = "automatic" if rollback.auto else f"by {md(rollback.by)}"
    title = f" — {md(rollback.title)}" if rollback.title else ""
    yield f"### Rollback {code(rollback.method, table=False)}{title} ({how})"
    yield ""
    yield f"- Started: {when(rollback.started)} from phase {rollback.from_phase}"
    if rollback.reason:
        yield f"- Why: {md(rollback.reason)}"
    if rollback.finished is None:
        yield "- Finished: not yet (or its cockpit stopped before it finished)"
    else:
        result = "ok" if rollback.ok else "**FAILED**"
        detail = f": {md(rollback.detail)}" if rollback.detail else ""
        lasted = span(rollback.started, rollback.finished)
        yield f"- Finished: {when(rollback.finished)}, {result}{detail} ({lasted})"
    yield ""
    yield from _gates("Gate verdicts at that moment:", rollback.gates)
    if rollback.steps:
        yield "Steps:"
        yield ""
        yield from _steps(rollback.steps)
    if rollback.ticks:
        yield "After-rollback checklist:"
        yield ""
        yield from _ticks(rollback.ticks)
