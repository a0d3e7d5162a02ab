"""What every pane shares: a snapshot and sparkline series set by the app, and value text
that never shows a stale number as live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.content import Content
from textual.geometry import Region
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.core.durations import format_duration
from cockpit.core.engine_thread import Series
from cockpit.core.snapshot import MetricView, Snapshot, SourceView

BARS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int = 12) -> str:
    """A one-line sparkline of the last `width` values (empty when there are none)."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    span = high - low
    return "".join(
        BARS[0 if span == 0 else min(len(BARS) - 1, int((v - low) / span * len(BARS)))]
        for v in tail
    )


def value_text(view: MetricView | None, width: int = 0) -> Content:
    """The value as people read it; dimmed with its age when stale, '-' or '?' when absent."""
    if view is None or view.status == "no data":
        return Content.styled("-".rjust(width), style="dim")
    if view.value is None:
        return Content.styled("?".rjust(width), style="dim")
    if view.status in ("stale", "down"):
        return Content.styled(view.text.rjust(width), style="dim")
    return Content(view.text.rjust(width))


def stale_note(*views: MetricView | None) -> Content:
    """' stale 14s' for the oldest stale value among `views`, else nothing."""
    ages = [v.age_s or 0.0 for v in views if v is not None and v.status in ("stale", "down")]
    if not ages:
        return Content("")
    return Content.styled(f" stale {format_duration(max(ages))}", "dim")


def source_line(source: SourceView | None) -> Content | None:
    """'DOWN: error' for a down source, 'never polled' for a silent one; None when up."""
    if source is None:
        return None
    if source.up is None:
        return Content.styled("waiting for first poll", style="dim")
    if not source.up:
        return Content.styled(f"DOWN: {source.error or 'no answer'}", style="bold $error")
    return None


def drawn(content: Content) -> tuple[str, list[object]]:
    """What a repaint would show: text and styles (Content's == compares text only)."""
    return content.plain, list(content.spans)


def repaint(widget: Static, content: Content, before: tuple[str, list[object]] | None) -> None:
    """Show `content`, laying the screen out again only when its height changed. Panes do not
    wrap (nowrap) and their widths come from the layout, so a new number in the same lines
    repaints this widget's region alone; a layout would redraw the whole screen (each second,
    over a slow link)."""
    lines = content.plain.count("\n")
    widget.update(content, layout=before is None or before[0].count("\n") != lines)


class Pane(Static):
    """A pane draws `snapshot` (+ `series`); the app sets both, the pane never fetches.

    It repaints only the lines whose text or styles changed: over a slow link, and idle for
    days, an unchanged pane costs nothing, and a new number costs its line, not the pane."""

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    """The rollout as of the last tick; None before the first."""

    series: Mapping[str, Sequence[float]] = {}
    _shown: Content | None = None
    _lines: list[tuple[str, list[object]]] | None = None

    def show(self, snapshot: Snapshot, series: Series) -> None:
        self.series = series
        self.snapshot = snapshot

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self.redraw(snapshot)

    def redraw(self, snapshot: Snapshot) -> None:
        content = self.draw(snapshot)
        lines = [drawn(line) for line in content.split("\n", allow_blank=True)]
        before = self._lines
        if lines == before:
            return
        self._shown, self._lines = content, lines
        if before is None or len(before) != len(lines):
            self.refresh(layout=True)  # its height changed: the screen is laid out again
            return
        width = self.size.width
        changed = [y for y, (old, new) in enumerate(zip(before, lines, strict=True)) if old != new]
        self.refresh(*(Region(0, y, width, 1) for y in changed))

    def render(self) -> Content:
        return self._shown if self._shown is not None else Content("")

    def draw(self, snapshot: Snapshot) -> Content:
        raise NotImplementedError

    def first_source(self, snapshot: Snapshot, kind: str) -> SourceView | None:
        return next((s for s in snapshot.sources if s.kind == kind), None)

    @staticmethod
    def metric(snapshot: Snapshot, name: str) -> MetricView | None:
        return next((m for m in snapshot.metrics if m.name == name), None)

    @staticmethod
    def source(snapshot: Snapshot, name: str) -> SourceView | None:
        return next((s for s in snapshot.sources if s.name == name), None)
