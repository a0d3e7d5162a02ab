"""A long-running cockpit's loop: each tick judge the gates, let the autopilot decide, act.

Shared by `cockpit run --headless` and the TUI. Actions run in a worker thread so the pollers
keep their schedules while a rollback command runs. A cockpit that may act also records the
metric history `cockpit report` draws (`history.py`); a read-only one writes nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from cockpit.core import notify
from cockpit.core.autopilot import Arm, AutoPilot, Blind, Decision, Disarm, Fire
from cockpit.core.control import AUTOPILOT, Cockpit, Refused
from cockpit.core.durations import format_duration
from cockpit.core.gates import GateResult
from cockpit.core.history import HistoryRecorder, history_path, recorded_metrics
from cockpit.core.notify import SummaryClock
from cockpit.core.rollout_events import Action, AutoRollback, Hold
from cockpit.core.rollout_model import Status
from cockpit.core.snapshot import Snapshot
from cockpit.core.state import StateChanged

BLIND = "monitoring_blind"  # a trigger UNKNOWN for longer than unknown_for


@dataclass
class Watch:
    cockpit: Cockpit
    say: Callable[[str], None]
    read_only: bool = False  # a watcher's cockpit: looks, never acts (k9s' --readonly)
    autopilot: AutoPilot = field(init=False)
    acting: asyncio.Task[None] | None = None
    last: Snapshot | None = None

    summaries: SummaryClock | None = None
    history: HistoryRecorder | None = field(default=None, init=False)
    # This tick's gates, for the audit line of what the autopilot does about them.
    _judged: tuple[GateResult, ...] = field(default=(), init=False, repr=False)
    _history_said: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.autopilot = AutoPilot(self.cockpit.plan)
        self.cockpit.on_output = lambda line: self.say(f"    | {line}")
        plan = self.cockpit.plan
        if plan.notify is not None and not self.read_only:
            self.summaries = SummaryClock(plan.notify.summary_every_s, self.cockpit.clock)
        if not self.read_only:
            self.history = HistoryRecorder(history_path(plan.state_path), recorded_metrics(plan))
            # Whoever forgets close() (or exits) still gets the last bucket written.
            weakref.finalize(self, self.history.close)

    def tick(self) -> Snapshot:
        """Judge now and carry out what the autopilot decides; returns the snapshot shown."""
        seen = self.cockpit.store.load() if self.read_only else self.cockpit.load()
        snapshot = self.cockpit.snapshot(seen)
        self._judged = snapshot.gates
        for decision in self.autopilot.step(seen.state, snapshot.gates, snapshot.taken_at):
            self._carry_out(decision)
        notifier = self.cockpit.notifier
        if self.summaries and notifier and self.summaries.due(snapshot.taken_at):
            notifier.send_summary(snapshot)  # the plan's communication cadence
            self.summaries.sent(snapshot.taken_at)
        self._record_history(snapshot.taken_at)
        self.last = snapshot
        return snapshot

    def close(self) -> None:
        """Write the metric history's unfinished bucket; call when the watch ends."""
        if self.history is not None:
            self.history.close()
            self._say_history_failure()

    def _record_history(self, now: float) -> None:
        """Never lets the history break the watch: its first failure is said once."""
        history = self.history
        if history is None:
            return
        try:
            history.observe(self.cockpit.metrics, now)
        except Exception as exc:
            history.failure = history.failure or f"metric history not recorded: {exc}"
        self._say_history_failure()

    def _say_history_failure(self) -> None:
        history = self.history
        if history is not None and history.failure and not self._history_said:
            self._history_said = True
            self.say(f"{history.failure} (watching goes on)")

    def _carry_out(self, decision: Decision) -> None:
        match decision:
            case Arm(armed):
                left = format_duration(armed.fire_at - armed.armed_at)
                self.say(f"AUTO-ROLLBACK in {left}: {armed.why}")
                self._journal("auto_rollback.armed", reason=armed.why)
                self._page(notify.AUTO_ROLLBACK_ARMED, f"in {left}: {armed.why}")
            case Disarm(rule, why):
                self.say(f"automatic rollback disarmed ({why}): {rule}")
                self._journal("auto_rollback.disarmed", reason=f"{rule}: {why}")
            case Fire(method, reason):
                self._fire(method, reason)
            case Blind(action, rule, reason):
                self.say(f"{reason}: on_unknown = {action}")
                self._journal("auto_rollback.blind", reason=reason, action=action)
                self._page(
                    notify.AUTO_ROLLBACK_ARMED if action == "rollback" else notify.HOLD, reason
                )
                auto = self.cockpit.plan.auto_rollback
                if action == "hold":
                    self._hold(reason)
                elif action == "rollback" and auto is not None:
                    self._fire(auto.method, reason)

    def _journal(self, event: str, reason: str, action: str | None = None) -> None:
        """A read-only cockpit writes nothing, not even to the journal."""
        if not self.read_only:
            op = self.cockpit.operator
            self.cockpit.audit.append(event, operator=op, reason=reason, action=action)

    def _page(self, event: str, reason: str) -> None:
        notifier, state = self.cockpit.notifier, self.cockpit.store.load().state
        if notifier is not None and not self.read_only:
            percent = self.cockpit.machine.traffic(state)
            notifier.send(
                event, phase=state.phase, percent=percent, operator=AUTOPILOT, reason=reason
            )

    def _hold(self, reason: str) -> None:
        if self.read_only:
            self.say(f"read-only: not holding ({reason})")
            return
        seen = self.cockpit.load()
        if seen.state.status is not Status.RUNNING:
            return
        try:
            self.cockpit.apply(seen, Hold(by=AUTOPILOT, reason=reason), self._judged)
        except (Refused, StateChanged) as exc:
            self.say(f"hold not applied: {exc}")

    def _fire(self, method: str, reason: str) -> None:
        if self.read_only:
            self.say(f"read-only: not rolling back by '{method}' ({reason})")
            return
        seen = self.cockpit.load()
        try:
            # The verdicts that fired it go into its audit line, as an operator's do.
            applied = self.cockpit.apply(
                seen, AutoRollback(by=AUTOPILOT, method=method, reason=reason), self._judged
            )
        except (Refused, StateChanged) as exc:
            # Another cockpit on this state file won the race and acts; we only watch.
            self.say(f"automatic rollback not started here: {exc}")
            return
        self.say(f"AUTO-ROLLBACK by '{method}': {reason}")
        for action in applied.actions:
            self.acting = asyncio.get_running_loop().create_task(self._run(action))

    async def _run(self, action: Action) -> None:
        secrets = self.cockpit.plan.secrets
        await asyncio.to_thread(
            self.cockpit.run_action,
            action,
            confirm_manual=lambda text: False,  # nobody is there to confirm a manual step
            on_step=lambda step, result: self.say(
                f"  {step.describe(secrets)}: {result.summary()}"
            ),
        )
        self.say(f"rollback finished: now {self.cockpit.store.load().state.status.value}")
