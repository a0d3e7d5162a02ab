"""Help: every key of the live keymap (remaps included) and what it does."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 70; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """`rows`: (key, description, binding id)."""
        super().__init__()
        self.rows = tuple(rows)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("Keys (remap them by id in [keymap] of cockpit.toml)", markup=False)
            for key, description, binding_id in self.rows:
                yield Static(f"{key:>8}  {description:<34} {binding_id}", markup=False)
            yield Static("Esc closes", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
