"""The full-screen cockpit: panes fed by snapshots from the engine thread; keys act through
the same Cockpit as the headless commands (see `acting.py`)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Log, Static

from cockpit.core.autopilot import Armed
from cockpit.core.changes import ChangeLog
from cockpit.core.control import Cockpit
from cockpit.core.engine_thread import EngineThread, Series
from cockpit.core.snapshot import Snapshot
from cockpit.tui.acting import ActingApp
from cockpit.tui.messages import Said, SnapshotReady
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.slow import slow_screen
from cockpit.tui.themes import THEMES, next_theme
from cockpit.tui.widgets.banner import ArmedBanner
from cockpit.tui.widgets.cache import CachePane
from cockpit.tui.widgets.checks import ChecksList
from cockpit.tui.widgets.dbpool import DbPane
from cockpit.tui.widgets.errors import ErrorsPane
from cockpit.tui.widgets.gates import DecisionLine, GatesPane
from cockpit.tui.widgets.header import HeaderBar
from cockpit.tui.widgets.latency import LatencyPane
from cockpit.tui.widgets.pane import Pane

MIN_SIZE = (80, 24)
EVENT_LINES = 1000  # bounded: the cockpit stays up for days
TALL = 30  # from this many rows, the rollback banner shows more output lines
events_log = logging.getLogger("cockpit.events")  # `--log FILE` keeps what the event pane shows


def theme_for(plan_theme: str, override: str | None, environ: Mapping[str, str]) -> str:
    """`--theme` wins over the plan; NO_COLOR means mono whatever was asked."""
    if "NO_COLOR" in environ:
        return "mono"
    return override or plan_theme


class CockpitApp(ActingApp):
    CSS_PATH = "cockpit.tcss"
    TITLE = "cockpit"
    BINDINGS = [
        Binding("a", "advance", "Advance", id="advance"),
        Binding("h", "hold", "Hold", id="hold"),
        Binding("u", "resume", "Resume", id="resume"),
        Binding("r", "rollback", "Rollback", id="rollback"),
        Binding("c", "cancel_auto", "Cancel auto", id="cancel"),
        Binding("space", "tick", "Tick", id="tick"),
        Binding("b", "baseline", "Baseline", id="baseline"),
        Binding("d", "dry_run", "Dry-run", id="dry_run"),
        Binding("t", "next_theme", "Theme", id="theme"),
        Binding("s", "slow", "Slow queries", id="slow"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit_cockpit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        cockpit: Cockpit,
        *,
        read_only: bool = False,
        theme: str | None = None,
        engine: bool = True,
        environ: Mapping[str, str] | None = None,
        notice: str = "",
    ) -> None:
        super().__init__(cockpit, read_only=read_only)
        self.use_engine = engine
        self.engine: EngineThread | None = None
        self.armed: Armed | None = None
        self.last_snapshot: Snapshot | None = None
        self.last_series: Series = {}
        self.changes: ChangeLog | None = None  # transitions seen since start (another cockpit's)
        self.notice = notice  # shown in the header and said at start, e.g. the demo's fast time
        self._theme_name = theme_for(cockpit.plan.theme, theme, environ or os.environ)

    def compose(self) -> ComposeResult:
        yield Static("", id="too-small", markup=False)
        with Vertical(id="main"):
            yield HeaderBar(id="header")
            yield ArmedBanner(id="banner")
            yield LatencyPane(id="latency")
            with Horizontal(id="row-metrics"):
                yield CachePane(id="cache")
                yield DbPane(id="db")
                yield ErrorsPane(id="errors")
            yield DecisionLine(id="decision")
            with Horizontal(id="row-decide"):
                with VerticalScroll(id="gates-scroll"):
                    yield GatesPane(id="gates")
                yield ChecksList(id="checks")
            yield Log(id="events", max_lines=EVENT_LINES)
        yield Footer()

    def on_mount(self) -> None:
        self.ui_loop = asyncio.get_running_loop()
        for palette in THEMES.values():
            self.register_theme(palette)
        self.theme = self._theme_name if self._theme_name in THEMES else "dark"
        self.set_keymap(dict(self.cockpit.plan.keymap))
        header = self.query_one(HeaderBar)
        header.operator = str(self.cockpit.operator)
        self._flags()
        self.query_one(ChecksList).focus()
        # Commands' output lines, from whichever thread runs them, stream to the event pane.
        self.cockpit.on_output = lambda line: self.say_threadsafe(f"  │ {line}")
        self._fit()
        self.say(f"watching {self.cockpit.plan.config_path} as {self.cockpit.operator}")
        if self.read_only:
            self.say("read-only cockpit: acting keys are refused")
        if self.notice:
            self.say(self.notice)
        if self.use_engine:
            self.engine = EngineThread(
                self.cockpit,
                on_snapshot=self._from_engine,
                say=self.say_threadsafe,
                read_only=self.read_only,
            )
            self.engine.start()

    async def on_unmount(self) -> None:
        if self.engine is not None:
            await asyncio.to_thread(self.engine.stop)
        self.shutdown_pool()

    def _from_engine(self, snapshot: Snapshot, series: Series) -> None:
        """Called in the engine thread: hand the snapshot over without waiting for the UI."""
        armed = self.engine.armed if self.engine is not None else None
        self.post_threadsafe(SnapshotReady(snapshot, series, armed))

    # -- attributes down --------------------------------------------------------------------

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snapshot = message.snapshot
        self.last_snapshot = snapshot
        self._log_changes(snapshot)
        self.last_series = message.series
        for pane in self.query(Pane):
            pane.show(snapshot, message.series)
        self.query_one(ChecksList).show(snapshot)
        banner = self.query_one(ArmedBanner)
        if message.armed is not None and self.armed is None:
            self.bell()  # someone must look now
        self.armed = message.armed
        auto = snapshot.plan.auto_rollback
        banner.method = auto.method if auto else ""
        banner.cancel_key = self.key_for("cancel")
        banner.set_rollout(snapshot.state.status, snapshot.state.rollback)
        banner.now = snapshot.taken_at
        banner.armed = message.armed

    def _log_changes(self, snapshot: Snapshot) -> None:
        """Rollout, source and gate transitions to the event pane (and `--log`). The first
        snapshot's picture of everything goes to the log file only: the screen shows it."""
        if self.changes is None:
            self.changes = ChangeLog()
            for line in self.changes.changes(snapshot):
                events_log.info(line)
            return
        for line in self.changes.changes(snapshot):
            self.say(line)

    def on_said(self, message: Said) -> None:
        log = self.query_one("#events", Log)
        # Always follow the newest line: once the panes fill, the log shrinks and its own
        # "only when already at the end" rule would leave new lines out of view.
        log.write_line(message.line, scroll_end=False)
        log.scroll_end(animate=False)
        events_log.info(message.line)
        if message.line.startswith("  "):  # a step's result or a command's output line
            self.query_one(ArmedBanner).output(message.line)

    def _flags(self) -> None:
        flags = [f for f, on in (("DRY-RUN", self.dry_run), ("READ-ONLY", self.read_only)) if on]
        if self.notice:
            flags.append(self.notice)
        header = self.query_one(HeaderBar)
        header.flags = " ".join(flags)
        if self.last_snapshot is not None:
            header.show(self.last_snapshot, header.series)

    # -- the screen's size --------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        width, height = self.size
        self.query_one(ArmedBanner).tail_lines = 3 if height >= TALL else 1
        self.query_one(ErrorsPane).log_lines = 3 if height >= TALL else 1
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.screen.set_class(small, "-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"cockpit needs {MIN_SIZE[0]}x{MIN_SIZE[1]}: this terminal is {width}x{height}."
                " Enlarge it."
            )

    # -- keys that do not act -------------------------------------------------------------------

    def key_for(self, binding_id: str) -> str:
        """The key bound to `binding_id` now (after the keymap), for messages."""
        for active in self.active_bindings.values():
            if active.binding.id == binding_id:
                return self.get_key_display(active.binding)
        return binding_id

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme)
        self.say(f"theme: {self.theme}")

    async def action_slow(self) -> None:
        """The slowest statements of the DB sources' window (reads only: fine when read-only)."""
        self.push_screen(await slow_screen(self.engine))

    def action_dry_run(self) -> None:
        self.dry_run = not self.dry_run
        self.say(f"dry-run {'on: acting keys show what would run' if self.dry_run else 'off'}")
        self._flags()

    def action_help(self) -> None:
        rows = [
            (self.get_key_display(a.binding), a.binding.description, a.binding.id or "")
            for a in self.active_bindings.values()
            if a.binding.id is not None and not a.binding.id.startswith(("ask.", "help.", "slow."))
        ]
        self.push_screen(HelpScreen(rows))
