"""The cockpit in front of the demo platform: the real CockpitApp, plus keys that break the
platform on purpose (an error spike, a slow database, Redis down) so the gates have something
to react to. Every fault switched on or off, by a key or by `--fault`, is said in the events."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

from textual import work
from textual.binding import Binding
from textual.screen import ModalScreen

from cockpit.core.control import Cockpit
from cockpit.demo.faults import DESCRIPTIONS, FaultSwitch
from cockpit.demo.timescale import NOTICE, explain
from cockpit.tui.app import CockpitApp

DEMO_ACTIONS = {"fault", "clear_faults"}

# CockpitApp's stylesheet: Textual reads a relative CSS_PATH from the subclass's own folder.
BASE_CSS = str(Path(inspect.getfile(CockpitApp)).with_name(CockpitApp.CSS_PATH))


class DemoApp(CockpitApp):
    CSS_PATH = BASE_CSS
    BINDINGS = [
        Binding("1", "fault('errors')", "Error spike", id="demo.errors", show=False),
        Binding("2", "fault('slow-db')", "Slow DB", id="demo.slow_db", show=False),
        Binding("3", "fault('redis-down')", "Redis down", id="demo.redis_down", show=False),
        Binding("0", "clear_faults", "Clear faults", id="demo.clear", show=False),
    ]

    def __init__(
        self,
        cockpit: Cockpit,
        faults: FaultSwitch,
        *,
        intro: tuple[str, ...] = (),
        theme: str | None = None,
        engine: bool = True,
    ) -> None:
        super().__init__(cockpit, theme=theme, engine=engine, notice=NOTICE)
        self.faults = faults
        self.intro = intro  # lines said at start: how the platform runs, where the plan is

    # Textual calls CockpitApp's own on_mount/on_unmount after these (handlers run for each
    # class that defines one): calling super() here would start a second engine.

    def on_mount(self) -> None:
        for line in [*self.intro, *(f"demo time: {line}" for line in explain())]:
            self.say(line)
        keys = ", ".join(
            f"{self.key_for(id_)} {word}"
            for id_, word in (
                ("demo.errors", "error spike"),
                ("demo.slow_db", "slow database"),
                ("demo.redis_down", "Redis down"),
                ("demo.clear", "clear faults"),
            )
        )
        self.say(f"demo faults: {keys} (each key switches its fault on and off)")
        self.faults.listeners.append(self._fault_changed)

    async def on_unmount(self) -> None:
        if self._fault_changed in self.faults.listeners:
            self.faults.listeners.remove(self._fault_changed)

    def _fault_changed(self, name: str, on: bool) -> None:
        """From whichever thread switched it (a key's worker, the fault schedule)."""
        if on:
            self.say_threadsafe(f"demo: fault ON: {DESCRIPTIONS[name]}")
        else:
            self.say_threadsafe(f"demo: fault off: {name}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Not behind an open question: the key would act on a screen nobody is looking at.
        if action in DEMO_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        return super().check_action(action, parameters)

    @work(group="demo-faults")
    async def action_fault(self, name: str) -> None:
        # Stopping or starting redis-server takes a moment: never on the UI's loop.
        await asyncio.to_thread(self.faults.toggle, name)

    @work(group="demo-faults")
    async def action_clear_faults(self) -> None:
        if not self.faults.active():
            self.say("demo: no fault is on")
            return
        await asyncio.to_thread(self.faults.clear)
