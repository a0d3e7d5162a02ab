"""Errors: the pooled HTTP error and 4xx rates with sparklines, and log error rates when a
`logs` source exists."""

from __future__ import annotations

from textual.content import Content

from cockpit.core.snapshot import Snapshot
from cockpit.tui.widgets.pane import Pane, source_line, spark, stale_note, value_text


class ErrorsPane(Pane):
    DEFAULT_CSS = "ErrorsPane { height: auto; }"

    def draw(self, snapshot: Snapshot) -> Content:
        rate = self.metric(snapshot, "http.error_rate")
        four = self.metric(snapshot, "http.rate_4xx")
        lines = [
            Content.styled("Errors", "bold") + stale_note(rate, four),
            Content("5xx ")
            + value_text(rate)
            + Content(" ")
            + Content(spark(self.series.get("http.error_rate", ()), 8)),
            Content("4xx ")
            + value_text(four)
            + Content(" ")
            + Content(spark(self.series.get("http.rate_4xx", ()), 8)),
        ]
        logs = self.first_source(snapshot, "logs")
        if logs is not None:
            down = source_line(logs)
            errors = self.metric(snapshot, f"{logs.name}.errors_per_min")
            lines.append(down or Content("log errors/min ") + value_text(errors))
        return Content("\n").join(lines)
