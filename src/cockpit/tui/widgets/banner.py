"""The full-width banner for automatic and running rollbacks: the armed rule with its measured
value, countdown and how to cancel; then, once a rollback runs, its method and live output;
then its result until the rollout moves on."""

from __future__ import annotations

from collections import deque

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.core.autopilot import Armed
from cockpit.core.durations import format_duration
from cockpit.core.rollout_model import RollbackRecord, Status
from cockpit.tui.widgets.pane import drawn, repaint

TAIL_LINES = 3  # the newest output lines kept for the banner (the event log keeps them all)


class ArmedBanner(Static):
    DEFAULT_CSS = """
    ArmedBanner { display: none; height: auto; max-height: 4; background: $error;
                  color: $background; text-style: bold; padding: 0 1;
                  text-wrap: nowrap; text-overflow: ellipsis; }
    ArmedBanner.-shown { display: block; }
    ArmedBanner.-ok { background: $success; }
    """

    armed: reactive[Armed | None] = reactive(None, repaint=False)
    """The armed automatic rollback, None when nothing is armed."""
    now: reactive[float] = reactive(0.0, repaint=False)
    """The snapshot's time, for the countdown."""
    method: str = ""  # the automatic rollback's method
    cancel_key: str = "c"
    tail_lines: int = 1  # how many output lines to show (more on a tall terminal)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.status: Status | None = None
        self.record: RollbackRecord | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._drawn: tuple[str, list[object]] | None = None

    def set_rollout(self, status: Status, record: RollbackRecord | None) -> None:
        """The rollout's status and rollback record as of the last snapshot."""
        before = self.record
        if record is not None and before is not None and record.started_at != before.started_at:
            self.tail.clear()  # a new rollback: the previous one's output is not this one's
        self.status, self.record = status, record
        self._draw()

    def output(self, line: str) -> None:
        """A line of the running rollback's output: kept while one runs, or is armed (the
        engine fires between two snapshots, so the first lines come before it shows)."""
        if self.status is Status.ROLLING_BACK or self.armed is not None:
            self.tail.append(line.strip().removeprefix("│").strip())
            self._draw()

    def watch_armed(self, armed: Armed | None) -> None:
        self._draw()

    def watch_now(self, now: float) -> None:
        self._draw()

    def _lines(self) -> list[str]:
        record, status = self.record, self.status
        if status is Status.ROLLING_BACK and record is not None:
            who = "automatic" if record.auto else f"by {record.by}"
            took = format_duration(max(0.0, self.now - record.started_at))
            head = f"ROLLING BACK by '{record.method}' ({who}, {took}): {record.reason}"
            return [head, *self._tail()]
        if status is Status.ROLLED_BACK and record is not None and record.finished_at:
            took = format_duration(max(0.0, record.finished_at - record.started_at))
            result = "done" if record.ok else f"FAILED: {record.detail or 'see the event log'}"
            return [f"ROLLED BACK by '{record.method}' in {took}: {result}", *self._tail()]
        armed = self.armed
        if armed is not None:
            left = format_duration(armed.left_s(self.now))
            return [
                f"AUTO-ROLLBACK by '{self.method}' in {left}: {armed.why}"
                f"  [{self.cancel_key}] cancel"
            ]
        return []

    def _tail(self) -> list[str]:
        return [f"│ {line}" for line in list(self.tail)[-self.tail_lines :]]

    def _draw(self) -> None:
        lines = self._lines()
        ok = self.status is Status.ROLLED_BACK and bool(self.record and self.record.ok)
        self.set_class(bool(lines), "-shown")
        self.set_class(ok and bool(lines), "-ok")
        content = Content("\n".join(lines))
        shown = drawn(content)
        if shown != self._drawn:  # repaint only when what is shown changed
            repaint(self, content, self._drawn)
            self._drawn = shown
