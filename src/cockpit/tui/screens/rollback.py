"""The rollback picker: each method with its ETA, when to use it and the exact commands;
choosing one asks for its name to be typed before anything runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from cockpit.core.durations import format_duration
from cockpit.core.plan import RollbackMethod


class RollbackPicker(ModalScreen[str | None]):
    """Dismisses with the confirmed method's name, or None."""

    DEFAULT_CSS = """
    RollbackPicker { align: center middle; }
    RollbackPicker > Vertical { width: 95%; max-width: 120; height: auto; max-height: 95%;
                                border: thick $error; background: $surface; padding: 0 1; }
    RollbackPicker #rb-title { text-style: bold; }
    RollbackPicker OptionList { height: auto; max-height: 14; }
    RollbackPicker Input { display: none; }
    RollbackPicker.-confirming Input { display: block; }
    RollbackPicker #rb-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rollback.cancel")]
    AUTO_FOCUS = "#rb-methods"

    def __init__(
        self, methods: Sequence[RollbackMethod], previews: Mapping[str, Sequence[str]]
    ) -> None:
        super().__init__()
        self.methods = tuple(methods)
        self.previews = previews
        self.chosen: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Roll back: pick a method (Enter), Esc to cancel", id="rb-title")
            yield OptionList(*[self._option(m) for m in self.methods], id="rb-methods")
            yield Static("", id="rb-error")
            yield Input(id="rb-confirm")

    def _option(self, method: RollbackMethod) -> Option:
        eta = format_duration(method.eta_s) if method.eta_s is not None else "?"
        lines = [
            Content.assemble((method.name, "bold"), f"  {method.title}  ETA {eta}"),
            Content.styled(f"  when: {method.when}", "dim"),
            *(Content(f"  $ {step}") for step in self.previews.get(method.name, ())),
        ]
        return Option(Content("\n").join(lines), id=method.name)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.chosen = event.option.id
        self.add_class("-confirming")
        confirm = self.query_one("#rb-confirm", Input)
        confirm.placeholder = f"type '{self.chosen}' to roll back by it"
        confirm.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.chosen:
            self.dismiss(self.chosen)
            return
        self.query_one("#rb-error", Static).update(
            f"'{event.value.strip()}' is not '{self.chosen}': nothing done (Esc to cancel)"
        )
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(None)
