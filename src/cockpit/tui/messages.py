"""Messages up: what the engine thread and the screens tell the app."""

from __future__ import annotations

from textual.message import Message

from cockpit.core.autopilot import Armed
from cockpit.core.engine_thread import Series
from cockpit.core.snapshot import Snapshot


class SnapshotReady(Message):
    """A new picture of the rollout; only the newest matters, so a burst collapses to one."""

    def __init__(self, snapshot: Snapshot, series: Series, armed: Armed | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.series = series
        self.armed = armed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class Said(Message):
    """A line for the event log (engine announcements, action output, outcomes)."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line
