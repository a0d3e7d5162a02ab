"""A rollout report as one self-contained HTML file with inline SVG charts.

No scripts, no external resources; every text is escaped (`esc`) wherever it came from, so a
reason or a command's output is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Sequence

from cockpit.core.catalog import Unit
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
    value_text,
    when,
)

CHART_W, CHART_H = 240, 56
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.25em .5em;
vertical-align:top;text-align:left}th{background:#f3f3f3}code{font-size:92%}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;margin:.3em 0 .8em}
.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}.note{background:#fff8e1;padding:.5em}
svg{background:#fafafa;border:1px solid #ddd}polyline{fill:none;stroke:#1565c0;stroke-width:1.5}
.base{stroke:#888;stroke-dasharray:4 3}text{font:10px sans-serif;fill:#555}
"""


def esc(text: object) -> str:
    return html.escape(one_line(text, 2000), quote=True)


def render_html(report: Report) -> str:
    return "\n".join(_page(report)) + "\n"


def chart(values: Sequence[float | None], unit: Unit, *, baseline: float | None = None) -> str:
    """A small line chart: the series as polylines (a gap breaks the line), the baseline
    dashed, the highest and lowest values written at the left."""
    known = [v for v in values if v is not None]
    if not known:
        return "<span>no data</span>"
    scale = known + ([baseline] if baseline is not None else [])
    low, high = min(scale), max(scale)
    if high == low:
        low, high = low - 1, high + 1
    step = CHART_W / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return round(CHART_H - 4 - (value - low) / (high - low) * (CHART_H - 16), 1)

    parts = [f'<svg width="{CHART_W}" height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}">']
    if baseline is not None:
        parts.append(
            f'<line class="base" x1="0" x2="{CHART_W}" y1="{y(baseline)}" '
            f'y2="{y(baseline)}"><title>baseline {esc(value_text(baseline, unit))}'
            "</title></line>"
        )
    run: list[str] = []
    for i, value in enumerate([*values, None]):
        if value is not None:
            run.append(f"{round(i * step, 1)},{y(value)}")
            continue
        if len(run) == 1:
            x, at = run[0].split(",")
            parts.append(f'<circle cx="{x}" cy="{at}" r="1.5" fill="#1565c0"/>')
        elif run:
            parts.append(f'<polyline points="{" ".join(run)}"/>')
        run = []
    parts.append(f'<text x="2" y="10">{esc(value_text(max(known), unit))}</text>')
    parts.append(f'<text x="2" y="{CHART_H - 2}">{esc(value_text(min(known), unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """Cells are markup already (escaped by the caller)."""
    yield "<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
    for row in rows:
        yield "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
    yield "</table>"


def _page(report: Report) -> Iterator[str]:
    title = f"Rollout report: {esc(report.name)}"
    yield "<!DOCTYPE html>"
    yield f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
    yield f"<style>{_STYLE}</style></head><body>"
    yield f"<h1>{title}</h1>"
    yield (
        f"<p>Generated {esc(when(report.generated_at))} · "
        f"status <b>{esc(report.status.replace('_', ' '))}</b> · "
        f"{esc(report.where)} · audit log: {esc(report.audit_check)}</p>"
    )
    for note in report.notes:
        yield f'<p class="note">Note: {esc(note)}</p>'
    yield from _summary(report.summary)
    yield from _performance(report)
    yield "<h2>Phases</h2>"
    if not report.phases:
        yield "<p>No phase was entered yet.</p>"
    for run in report.phases:
        yield from _phase(run)
    if report.rollbacks:
        yield "<h2>Rollbacks</h2>"
        for rollback in report.rollbacks:
            yield from _rollback(rollback)
    if report.preflight_ticks:
        yield "<h2>Pre-flight checklist</h2>"
        yield from _ticks(report.preflight_ticks)
    yield "<h2>Timeline</h2>"
    yield from _table(
        ("Time", "Who", "Event", "Details"),
        (
            (esc(when(h.at)), esc(h.by), f"<code>{esc(h.event)}</code>", esc(h.text))
            for h in report.timeline
        ),
    )
    yield "</body></html>"


def _summary(summary: FinalSummary) -> Iterator[str]:
    yield "<h2>Final deployment summary</h2>"
    held = f" ({span(0, summary.held_s)} in total)" if summary.holds else ""
    took = f" (took {span(summary.started, summary.ended)})" if summary.ended else ""
    rows = [
        ("Outcome", f"<b>{esc(summary.outcome)}</b>"),
        ("Started", esc(when(summary.started))),
        ("Ended", esc(when(summary.ended) + took)),
        ("Phases reached", esc(f"{summary.phases_reached} of {summary.phases_total}")),
        ("Holds", esc(f"{summary.holds}{held}")),
        ("Forced advances", "<br>".join(esc(f) for f in summary.forced) or "none"),
        ("Rollbacks", "<br>".join(esc(r) for r in summary.rollbacks) or "none"),
    ]
    if summary.completed_by:
        rows.append(("Completed by", esc(summary.completed_by)))
    yield from _table(("", ""), rows)
    if summary.criteria:
        yield f"<p>Success criteria of the final phase, over {esc(summary.criteria_over)}:</p>"
        yield from _targets(summary.criteria)


def _outcome(outcome: str) -> str:
    if outcome in ("missed", "breached"):
        return f'<span class="bad">{esc(outcome)}</span>'
    return (
        f'<span class="ok">{esc(outcome)}</span>' if outcome in ("met", "clear") else esc(outcome)
    )


def _targets(targets: Sequence[Target]) -> Iterator[str]:
    yield from _table(
        ("Criterion", "Kind", "Measured", "Result"),
        (
            (f"<code>{esc(t.rule)}</code>", esc(t.kind), esc(t.value), _outcome(t.outcome))
            for t in targets
        ),
    )


def _performance(report: Report) -> Iterator[str]:
    yield "<h2>Performance report</h2>"
    if not report.phases:
        yield "<p>Nothing to compare before the first phase.</p>"
        return
    yield "<p>Mean of each phase from the 10 s metric history, against the baseline.</p>"
    header = ["Metric", "Baseline"]
    header += [
        esc(f"P{run.number} {run.name}" + (f" #{run.attempt}" if run.attempt > 1 else ""))
        for run in report.phases
    ]
    header.append("Whole rollout")
    rows = []
    for row in report.performance:
        cells = [f"<code>{esc(row.metric)}</code>", esc(value_text(row.baseline, row.unit))]
        cells += [esc(value_text(mean, row.unit)) for mean in row.means]
        cells.append(chart(row.spark, row.unit, baseline=row.baseline))
        rows.append(cells)
    yield from _table(header, rows)


def _phase(run: PhaseRun) -> Iterator[str]:
    yield f"<h3>{esc(run.title)}</h3><ul>"
    forced = f" — <b>forced</b>: {esc(run.reason)}" if run.forced else ""
    why = f" — {esc(run.reason)}" if run.reason and not run.forced else ""
    yield f"<li>Started: {esc(when(run.started))} by {esc(run.entered_by)}{forced}{why}</li>"
    if run.ended is None:
        yield f"<li>Ended: not yet ({esc(run.ended_how)})</li>"
    else:
        yield (
            f"<li>Ended: {esc(when(run.ended))} by {esc(run.ended_by)}: {esc(run.ended_how)} "
            f"({esc(span(run.started, run.ended))})</li>"
        )
    for hold in run.holds:
        yield f"<li>{_hold(hold)}</li>"
    yield "</ul>"
    yield from _gates(f"Gate verdicts at the advance into it ({run.gates_of} rules):", run.gates)
    if run.steps:
        yield "<p>Traffic change:</p>"
        yield from _steps(run.steps)
    if run.ticks:
        yield "<p>Checklist:</p>"
        yield from _ticks(run.ticks)
    yield "<p>Metrics over the phase, against baseline and the plan's targets:</p>"
    yield from _metrics(run.metrics)


def _hold(hold: HoldSpan) -> str:
    text = f"Held {esc(when(hold.at))} by {esc(hold.by)}: {esc(hold.reason)}"
    if hold.resumed_at is None:
        return text + " (still on hold)"
    who = f" by {esc(hold.resumed_by)}" if hold.resumed_by else ""
    lasted = esc(span(hold.at, hold.resumed_at))
    return text + f"; resumed {esc(when(hold.resumed_at))}{who} ({lasted})"


def _gates(title: str, gates: Sequence[GateSeen]) -> Iterator[str]:
    yield f"<p>{esc(title)}</p>"
    if not gates:
        yield "<p><i>none recorded</i></p>"
        return
    yield from _table(
        ("Kind", "Rule", "Verdict", "Value", "Reason"),
        (
            (
                esc(g.kind),
                f"<code>{esc(g.rule)}</code>",
                esc(g.verdict)
                if g.verdict == "pass"
                else f'<span class="bad">{esc(g.verdict)}</span>',
                esc(g.value),
                esc(g.reason),
            )
            for g in gates
        ),
    )


def _steps(steps: Sequence[StepRun]) -> Iterator[str]:
    yield "<ul>"
    for step in steps:
        result = {True: "ok", False: "FAILED", None: "no end recorded"}[step.ok]
        error = f": {esc(step.error)}" if step.error and step.ok is not True else ""
        yield f"<li>{esc(when(step.at))} <code>{esc(step.step)}</code>: <b>{result}</b>{error}"
        if step.output_tail:
            lines = "\n".join(html.escape(line, quote=True) for line in step.output_tail)
            yield f"<pre>{lines}</pre>"
        yield "</li>"
    yield "</ul>"


def _ticks(ticks: Sequence[Tick]) -> Iterator[str]:
    yield "<ul>"
    for tick in ticks:
        verb = "ticked" if tick.ticked else "unticked"
        yield f"<li>{esc(when(tick.at))} {esc(tick.by)} {verb}: {esc(tick.item)}</li>"
    yield "</ul>"


def _metrics(lines: Sequence[MetricLine]) -> Iterator[str]:
    rows = []
    for line in lines:
        extent = "-"
        if line.low is not None and line.high is not None:
            extent = f"{value_text(line.low, line.unit)} – {value_text(line.high, line.unit)}"
        targets = "<br>".join(
            f"<code>{esc(t.rule)}</code> {_outcome(t.outcome)} ({esc(t.value)})"
            for t in line.targets
        )
        rows.append(
            (
                f"<code>{esc(line.metric)}</code>",
                esc(mean_text(line)),
                esc(extent),
                esc(value_text(line.baseline, line.unit)),
                esc(ratio_text(line.improvement)),
                targets or "-",
                chart(line.spark, line.unit, baseline=line.baseline),
            )
        )
    yield from _table(
        ("Metric", "Mean", "10 s low – high", "Baseline", "Improvement", "Targets", "Chart"), rows
    )


def _rollback(rollback: RollbackRun) -> Iterator[str]:
    how = "automatic" if rollback.auto else f"by {esc(rollback.by)}"
    title = f" — {esc(rollback.title)}" if rollback.title else ""
    yield f"<h3>Rollback <code>{esc(rollback.method)}</code>{title} ({how})</h3><ul>"
    yield f"<li>Started: {esc(when(rollback.started))} from phase {rollback.from_phase}</li>"
    if rollback.reason:
        yield f"<li>Why: {esc(rollback.reason)}</li>"
    if rollback.finished is None:
        yield "<li>Finished: not yet (or its cockpit stopped before it finished)</li>"
    else:
        result = "ok" if rollback.ok else '<span class="bad">FAILED</span>'
        detail = f": {esc(rollback.detail)}" if rollback.detail else ""
        lasted = esc(span(rollback.started, rollback.finished))
        yield f"<li>Finished: {esc(when(rollback.finished))}, {result}{detail} ({lasted})</li>"
    yield "</ul>"
    yield from _gates("Gate verdicts at that moment:", rollback.gates)
    if rollback.steps:
        yield "<p>Steps:</p>"
        yield from _steps(rollback.steps)
    if rollback.ticks:
        yield "<p>After-rollback checklist:</p>"
        yield from _ticks(rollback.ticks)
