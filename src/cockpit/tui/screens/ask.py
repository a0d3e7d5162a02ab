"""A question before acting: what will happen, then a typed answer (a reason, a word to type),
or just Enter. Escape always backs out; the screen returns None then."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class AskScreen(ModalScreen[str | None]):
    """Dismisses with the typed text, or None when cancelled.

    `need`: "" accepts anything (Enter confirms), "reason" needs some text, any other word
    must be typed exactly (e.g. the rollback method's name).
    """

    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
                           border: thick $primary; background: $surface; padding: 0 1; }
    AskScreen #ask-title { text-style: bold; }
    AskScreen #ask-body { height: auto; max-height: 10; }
    AskScreen #ask-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask.cancel")]
    AUTO_FOCUS = "#ask-input"

    def __init__(
        self,
        title: str,
        body: Sequence[str | Content] = (),
        *,
        need: str = "",
        placeholder: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = tuple(body)
        self.need = need
        self.placeholder = placeholder or (
            "reason" if need == "reason" else f"type '{need}'" if need else "Enter to confirm"
        )

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="ask-title", markup=False)
            with VerticalScroll(id="ask-body"):
                for line in self.body:
                    yield Static(line, markup=False)
            yield Static("", id="ask-error")
            yield Input(placeholder=self.placeholder, id="ask-input")
            yield Static("Enter: confirm   Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.need == "reason" and not text:
            self.query_one("#ask-error", Static).update("a reason is needed (Esc to cancel)")
            return
        if self.need not in ("", "reason") and text != self.need:
            self.query_one("#ask-error", Static).update(
                f"type '{self.need}' exactly to confirm (Esc to cancel)"
            )
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
