"""The acting keys: advance, hold, resume, rollback, cancel, tick, baseline, quit.

Each asks first (a modal screen), then runs the command where the metric store lives (the
engine's thread, or a worker without an engine), then runs any actions in a worker thread
with their output streaming to the event log. Dry-run shows what would run; read-only refuses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work
from textual.app import App
from textual.message import Message
from textual.screen import ModalScreen

from cockpit.core import engine_thread as commands
from cockpit.core.control import Cockpit
from cockpit.core.engine_thread import Outcome
from cockpit.core.rollout_events import Action
from cockpit.tui.messages import Said, SnapshotReady
from cockpit.tui.screens.ask import AskScreen
from cockpit.tui.screens.rollback import RollbackPicker

if TYPE_CHECKING:
    from cockpit.core.autopilot import Armed
    from cockpit.core.engine_thread import EngineThread, Series
    from cockpit.core.snapshot import Snapshot

T = TypeVar("T")
ACTING = {"advance", "hold", "resume", "rollback", "cancel_auto", "tick", "baseline"}
KEYS = ACTING | {"dry_run", "next_theme", "help", "quit_cockpit", "slow"}


class ActingApp(App[None]):
    engine: EngineThread | None
    armed: Armed | None
    last_snapshot: Snapshot | None
    last_series: Series

    def __init__(self, cockpit: Cockpit, *, read_only: bool = False) -> None:
        super().__init__()
        self.cockpit = cockpit
        self.read_only = read_only
        self.dry_run = False
        self.acting = 0  # actions running now (quit asks first)
        self.ui_loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.started_at = cockpit.clock()

    # -- plumbing -------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        self.post_message(Said(line))

    def post_threadsafe(self, message: Message) -> None:
        """From another thread, without waiting: a closing UI must not stall the engine."""
        loop = self.ui_loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the UI's loop closed in between
                loop.call_soon_threadsafe(self.post_message, message)

    def say_threadsafe(self, line: str) -> None:
        loop = self.ui_loop
        if loop is None or loop.is_closed():
            # The screen is gone (e.g. a rollback finishing during shutdown): the log keeps it.
            logging.getLogger("cockpit.events").info(line)
            return
        self.post_threadsafe(Said(line))

    def shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    async def run_command(self, fn: Callable[[], T]) -> T:
        """Run `fn` where the metric store lives: the engine thread, else a worker thread."""
        if self.engine is not None:
            return await asyncio.wrap_future(self.engine.call(fn))
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "cockpit-command")
        return await asyncio.wrap_future(self._pool.submit(fn))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a question is open, the main screen's keys must not act behind it.
        return action not in KEYS or not isinstance(self.screen, ModalScreen)

    def _refused(self, what: str) -> bool:
        if self.read_only:
            self.say(f"read-only cockpit: {what} refused")
            self.notify(f"read-only: {what} refused", severity="warning")
            return True
        return False

    async def finish(self, outcome: Outcome) -> None:
        """Say what happened, show it at once (not at the next tick), then run its actions."""
        self.report(outcome)
        await self.refresh_state()
        await self.run_actions(outcome.actions)
        if outcome.actions:
            await self.refresh_state()

    async def refresh_state(self) -> None:
        snapshot = self.last_snapshot
        if snapshot is None:
            return
        c = self.cockpit
        fresh = await self.run_command(lambda: c.snapshot(c.store.load()))
        self.post_message(SnapshotReady(fresh, self.last_series, self.armed))

    def report(self, outcome: Outcome) -> None:
        self.say(outcome.message if outcome.ok else f"refused: {outcome.message}")
        for line in outcome.details:
            self.say(f"  - {line}")
        if not outcome.ok:
            self.notify(outcome.message, severity="error")

    async def run_actions(self, actions: Sequence[Action]) -> None:
        if not actions:
            return
        self.acting += 1
        try:
            await asyncio.to_thread(
                commands.run_actions,
                self.cockpit,
                actions,
                say=self.say_threadsafe,
                confirm_manual=self._confirm_manual,
            )
        except Exception as exc:  # e.g. another cockpit settled it first: say so, keep watching
            self.say(f"FAILED: {type(exc).__name__}: {exc}")
            self.notify(str(exc), severity="error")
        finally:
            self.acting -= 1

    def _confirm_manual(self, text: str) -> bool:
        """From the action's thread: ask on screen whether a manual step is done."""
        done = threading.Event()
        answer: list[bool] = [False]

        def got(result: str | None) -> None:
            answer[0] = result is not None
            done.set()

        def ask() -> Any:
            screen = AskScreen("Manual step: Enter when it is DONE, Esc if not", [text])
            return self.push_screen(screen, got)

        self.call_from_thread(ask)
        done.wait(3600.0)
        return answer[0]

    async def ask(self, screen: AskScreen | RollbackPicker) -> str | None:
        return await self.push_screen_wait(screen)

    # -- the keys -------------------------------------------------------------------------------

    @work(exclusive=True, group="act")
    async def action_advance(self) -> None:
        if self._refused("advance"):
            return
        c = self.cockpit
        goal, blockers, steps = await self.run_command(lambda: commands.advance_preview(c))
        if self.dry_run:
            self.say(f"dry run: would {'NOT ' if blockers else ''}advance to {goal}")
            for line in [*(f"blocker: {b}" for b in blockers), *steps]:
                self.say(f"  {line}")
            return
        will_run = [f"$ {s}" for s in steps]
        if blockers:
            refused = AskScreen(
                "Advance refused: gates not met. Type a reason to FORCE it (recorded).",
                [f"✘ {b}" for b in blockers],
                need="reason",
                placeholder="reason to force the advance, or Esc",
            )
            reason = await self.ask(refused)
            if reason is None:
                self.say("advance refused: gates not met")
                for line in blockers:
                    self.say(f"  - {line}")
                return
            outcome = await self.run_command(lambda: commands.advance(c, force=True, reason=reason))
        else:
            gates = self._gate_summary()
            if await self.ask(AskScreen(f"Advance to {goal}?", [*gates, *will_run])) is None:
                self.say("advance not confirmed: nothing changed")
                return
            outcome = await self.run_command(lambda: commands.advance(c))
        await self.finish(outcome)

    def _gate_summary(self) -> list[str]:
        snapshot = self.last_snapshot
        if snapshot is None:
            return []
        return [f"{g.verdict.value:>7} {g.rule.text}: {g.reason}" for g in snapshot.gates]

    @work(exclusive=True, group="act")
    async def action_hold(self) -> None:
        if self._refused("hold"):
            return
        if self.dry_run:
            self.say("dry run: would hold the rollout (asks a reason)")
            return
        reason = await self.ask(AskScreen("Hold the rollout: why?", need="reason"))
        if reason is not None:
            c = self.cockpit
            await self.finish(await self.run_command(lambda: commands.hold(c, reason)))

    @work(exclusive=True, group="act")
    async def action_resume(self) -> None:
        if self._refused("resume"):
            return
        if self.dry_run:
            self.say("dry run: would resume the rollout")
            return
        c = self.cockpit
        await self.finish(await self.run_command(lambda: commands.resume(c)))

    @work(exclusive=True, group="act")
    async def action_rollback(self) -> None:
        if self._refused("rollback"):
            return
        c = self.cockpit
        methods = c.plan.rollbacks
        previews = {
            m.name: await self.run_command(lambda m=m: commands.rollback_preview(c, m.name))  # type: ignore[misc]
            for m in methods
        }
        method = await self.ask(RollbackPicker(methods, previews))
        if method is None:
            self.say("rollback not confirmed: nothing done")
            return
        if self.dry_run:
            self.say(f"dry run: rollback '{method}' would run:")
            for step in previews[method]:
                self.say(f"  {step}")
            return
        outcome = await self.run_command(lambda: commands.rollback(c, method, "from the cockpit"))
        await self.finish(outcome)

    @work(exclusive=True, group="act")
    async def action_cancel_auto(self) -> None:
        if self._refused("cancel"):
            return
        armed = self.armed
        if armed is None:
            self.say("no automatic rollback is armed")
            return
        if self.dry_run:
            self.say(f"dry run: would cancel the automatic rollback ({armed.rule})")
            return
        title = f"Cancel the automatic rollback ({armed.why})? Why?"
        reason = await self.ask(AskScreen(title, need="reason"))
        if reason is not None:
            c, rules = self.cockpit, (armed.rule,)
            await self.finish(
                await self.run_command(lambda: commands.cancel_auto(c, rules, reason))
            )

    @work(exclusive=True, group="act")
    async def action_tick(self) -> None:
        if self._refused("tick"):
            return
        from cockpit.tui.widgets.checks import ChecksList

        item = self.query_one(ChecksList).selected_item
        if item is None:
            self.say("no manual check selected")
            return
        if self.dry_run:
            self.say(f"dry run: would tick/untick '{item}'")
            return
        c = self.cockpit
        await self.finish(await self.run_command(lambda: commands.toggle_check(c, item)))

    @work(exclusive=True, group="act")
    async def action_baseline(self) -> None:
        if self._refused("baseline"):
            return
        body = [
            "Keeps the medians of what this cockpit measured in the last 15m (or since it",
            "started) as the baseline. For a longer window: `cockpit baseline --for D`.",
        ]
        if self.dry_run:
            self.say("dry run: would capture a baseline from the last 15m")
            return
        if await self.ask(AskScreen("Capture a baseline now?", body)) is None:
            return
        c, since = self.cockpit, self.started_at
        await self.finish(await self.run_command(lambda: commands.capture_baseline(c, since)))

    @work(exclusive=True, group="act")
    async def action_quit_cockpit(self) -> None:
        if self.acting:
            body = ["An action is running: quitting waits for it to finish first."]
            if await self.ask(AskScreen("Quit anyway?", body)) is None:
                return
        self.exit()
