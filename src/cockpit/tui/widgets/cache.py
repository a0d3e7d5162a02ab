"""Cache: hit rate with sparkline, memory used, ops/s, clients, PING latency; source state."""

from __future__ import annotations

from textual.content import Content

from cockpit.core.snapshot import Snapshot
from cockpit.tui.widgets.pane import Pane, source_line, spark, stale_note, value_text


class CachePane(Pane):
    DEFAULT_CSS = "CachePane { height: auto; }"

    def draw(self, snapshot: Snapshot) -> Content:
        source = self.first_source(snapshot, "redis")
        if source is None:
            return Content.styled("Cache\nno redis source in the plan", "dim")
        name = source.name
        title = Content.styled("Cache ", "bold")
        down = source_line(source)
        if down is not None:
            return Content("\n").join([title, down])

        def v(field: str) -> Content:
            return value_text(self.metric(snapshot, f"{name}.{field}"))

        hit = self.metric(snapshot, f"{name}.hit_rate")
        first = title + Content("hit ") + v("hit_rate") + Content(" ")
        first += Content(spark(self.series.get(f"{name}.hit_rate", ()), 8))
        second = Content("mem ") + v("memory_used") + Content("  ops/s ") + v("ops_per_sec")
        third = Content("clients ") + v("clients") + Content("  ping ") + v("latency_ms")
        return Content("\n").join([first + stale_note(hit), second, third])
