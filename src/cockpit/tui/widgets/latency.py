"""Latency: p50/p95/p99 per HTTP source, baseline and improvement, a p95 sparkline; pooled."""

from __future__ import annotations

from textual.content import Content

from cockpit.core.gates import effective_baseline
from cockpit.core.snapshot import Snapshot
from cockpit.tui.widgets.pane import Pane, source_line, spark, stale_note, value_text


class LatencyPane(Pane):
    DEFAULT_CSS = "LatencyPane { height: auto; }"

    def draw(self, snapshot: Snapshot) -> Content:
        baseline = effective_baseline(snapshot.plan, snapshot.state)
        lines = [Content.styled(f"{'Latency':9}{'p50':>8}{'p95':>8}{'p99':>8}  base  impr", "bold")]
        names = [s.name for s in snapshot.sources if s.kind == "http"]
        for name in [*names, "http"] if names else []:
            row = Content(f"{name[:8]:9}")
            down = source_line(self.source(snapshot, name))
            if down is not None:
                lines.append(row + down)
                continue
            views = [self.metric(snapshot, f"{name}.{f}") for f in ("p50", "p95", "p99")]
            for view in views:
                row += value_text(view, 8)
            row += self._improvement(snapshot, name, baseline.get(f"{name}.p95"))
            row += Content(" " + spark(self.series.get(f"{name}.p95", ()), 10))
            row += stale_note(*views)
            lines.append(row)
        if not names:
            lines.append(Content.styled("no http sources in the plan", "dim"))
        return Content("\n").join(lines)

    def _improvement(self, snapshot: Snapshot, name: str, base: float | None) -> Content:
        view = self.metric(snapshot, f"{name}.p95")
        if base is None:
            return Content("     -    -")
        base_text = f"{base:>6.0f}"
        if view is None or view.value is None or view.status != "ok" or base == 0:
            return Content(base_text + "    ?")
        gain = (base - view.value) / base
        style = "$success" if gain >= 0 else "$error"
        return Content(base_text) + Content.styled(f"{gain:>+5.0%}", style)
