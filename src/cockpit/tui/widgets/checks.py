"""The manual checks of the current checklist; the highlighted one is ticked with space."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from cockpit.core.rollout import RolloutMachine
from cockpit.core.snapshot import Snapshot


class ChecksList(OptionList):
    """Items of `RolloutMachine.checklist`; ticks show who and when."""

    DEFAULT_CSS = "ChecksList { height: auto; max-height: 100%; border: none; padding: 0; }"

    shown: tuple[object, ...] = ()
    items: tuple[str, ...] = ()

    def show(self, snapshot: Snapshot) -> None:
        key, items = RolloutMachine(snapshot.plan).checklist(snapshot.state)
        ticks = snapshot.state.ticks.get(key, {})
        shown = (key, items, tuple(sorted((k, v.by, v.at) for k, v in ticks.items())))
        if shown == self.shown:
            return  # rebuilding would lose the highlight and repaint for nothing
        self.shown, self.items = shown, items
        highlighted = self.highlighted
        self.clear_options()
        options = []
        for number, item in enumerate(items, 1):
            tick = ticks.get(item)
            if tick is None:
                prompt = Content.assemble(("[ ] ", "bold"), f"{number}. {item}")
            else:
                at = datetime.fromtimestamp(tick.at, UTC).strftime("%m-%d %H:%M")
                prompt = Content.assemble(
                    ("[✔] ", "bold $success"), f"{number}. {item}", (f"  {tick.by} {at}", "dim")
                )
            options.append(Option(prompt))
        self.add_options(options)
        if items:
            self.highlighted = min(highlighted or 0, len(items) - 1)

    @property
    def selected_item(self) -> str | None:
        index = self.highlighted
        return self.items[index] if index is not None and index < len(self.items) else None
