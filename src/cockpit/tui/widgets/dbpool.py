"""DB pool: connections used of max as a bar, the connection states, slow queries, queries per
minute against the baseline."""

from __future__ import annotations

from textual.content import Content

from cockpit.core.gates import effective_baseline
from cockpit.core.snapshot import Snapshot
from cockpit.tui.widgets.pane import Pane, source_line, stale_note, value_text

BAR = 10


def bar(fraction: float, width: int = BAR) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


class DbPane(Pane):
    DEFAULT_CSS = "DbPane { height: auto; }"

    def draw(self, snapshot: Snapshot) -> Content:
        source = self.first_source(snapshot, "postgres")
        if source is None:
            return Content.styled("DB pool\nno postgres source in the plan", "dim")
        name = source.name
        title = Content.styled("DB pool ", "bold")
        down = source_line(source)
        if down is not None:
            return Content("\n").join([title, down])

        def v(field: str) -> Content:
            return value_text(self.metric(snapshot, f"{name}.{field}"))

        used = self.metric(snapshot, f"{name}.pool_used")
        first = title
        if used is not None and used.value is not None:
            style = "$error" if used.value > 0.8 else ""
            first += Content.styled(bar(used.value) + " ", style) + v("pool_used")
        first += stale_note(used)
        second = Content.assemble(
            "act ",
            v("active"),
            " idle ",
            v("idle"),
            " itx ",
            v("idle_in_tx"),
            " wait ",
            v("waiting"),
        )
        base = effective_baseline(snapshot.plan, snapshot.state).get(f"{name}.queries_per_min")
        third = Content("slow ") + v("slow_queries") + Content(" q/min ") + v("queries_per_min")
        if base is not None:
            third += Content.styled(f" (base {base:.0f})", "dim")
        return Content("\n").join([first, second, third])
