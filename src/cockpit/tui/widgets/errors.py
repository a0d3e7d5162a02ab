"""Errors: the pooled HTTP error and 4xx rates with sparklines and, when a `logs` source
exists, its error rate and the newest matching log lines (UTC time read, then the line)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from textual.content import Content
from textual.reactive import reactive

from cockpit.core.snapshot import LogLine, MetricView, Snapshot, SourceView
from cockpit.tui.widgets.pane import Pane, source_line, spark, stale_note, value_text

# ESC sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST),
# DCS/PM/APC strings, and two-character escapes. What is left of control characters goes too.
ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)


def clean(text: str) -> str:
    """A log line made safe to draw: no escape sequence and no control or format character
    (bidi overrides included) reaches the terminal; tabs become spaces."""
    text = ESCAPES.sub("", text.replace("\t", " "))
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf")).strip()


def line_text(line: LogLine) -> Content:
    when = datetime.fromtimestamp(line.t, UTC).strftime("%H:%M:%S")
    style = "$error" if line.kind == "error" else "$warning"
    return Content.styled(when + " ", "dim") + Content.styled(clean(line.text), style)


class ErrorsPane(Pane):
    DEFAULT_CSS = "ErrorsPane { height: auto; }"

    log_lines: reactive[int] = reactive(1)
    """How many of the newest matching log lines to show (the app gives more on a tall screen)."""

    def watch_log_lines(self) -> None:
        if self.snapshot is not None:
            self.mutate_reactive(Pane.snapshot)  # draw the last snapshot again

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
            errors = self.metric(snapshot, f"{logs.name}.errors_per_min")
            lines += self.log_part(logs, errors)
        return Content("\n").join(lines)

    def log_part(self, logs: SourceView, errors: MetricView | None) -> list[Content]:
        """The rate line, then the newest lines: dimmed, after the reason, when the source is
        down or its data stale, so an old line is never shown as if it were live."""
        down = source_line(logs)
        head = down or Content("log errors/min ") + value_text(errors) + stale_note(errors)
        newest = logs.lines[-self.log_lines :] if self.log_lines > 0 else ()
        live = down is None and (errors is None or errors.status not in ("stale", "down"))
        shown = [line_text(line) for line in newest]
        if not live:
            shown = [Content.styled(line.plain, "dim") for line in shown]
        return [head, *shown]
