"""The floor for the footprint, start-up and key benchmarks: an idle Textual app (a header,
one static, a footer) that does nothing until a key; `a` opens a small modal dialog, as the
cockpit's advance does, and Escape closes it.

    python bench/idle_app.py
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Static


class Dialog(ModalScreen[None]):
    DEFAULT_CSS = "Dialog { align: center middle; } Dialog > Vertical { width: 50; height: 5; }"
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Advance?")
            yield Static("Enter: confirm   Esc: cancel")


class IdleApp(App[None]):
    TITLE = "idle textual app"
    BINDINGS = [Binding("a", "dialog", "Advance"), Binding("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("nothing changes here")
        yield Footer()

    def action_dialog(self) -> None:
        self.push_screen(Dialog())


if __name__ == "__main__":
    IdleApp().run()
