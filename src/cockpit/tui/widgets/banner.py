"""The armed automatic rollback: rule, measured value, countdown, and how to cancel."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.core.autopilot import Armed
from cockpit.core.durations import format_duration


class ArmedBanner(Static):
    DEFAULT_CSS = """
    ArmedBanner { display: none; height: auto; background: $error; color: $background;
                  text-style: bold; padding: 0 1; }
    ArmedBanner.-armed { display: block; }
    """

    armed: reactive[Armed | None] = reactive(None)
    """The armed rollback, None when nothing is armed."""
    now: reactive[float] = reactive(0.0)
    """The snapshot's time, for the countdown."""
    method: str = ""
    cancel_key: str = "c"

    def watch_armed(self, armed: Armed | None) -> None:
        self.set_class(armed is not None, "-armed")
        self._draw()

    def watch_now(self, now: float) -> None:
        self._draw()

    def _draw(self) -> None:
        armed = self.armed
        if armed is None:
            self.update("")
            return
        left = format_duration(armed.left_s(self.now))
        self.update(
            Content(
                f"AUTO-ROLLBACK by '{self.method}' in {left}: {armed.why}"
                f"  [{self.cancel_key}] cancel"
            )
        )
