"""A long-running cockpit's loop: each tick judge the gates, let the autopilot decide, act.

Shared by `cockpit run --headless` and the TUI. Actions run in a worker thread so the pollers
keep their schedules while a rollback command runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from cockpit.core.autopilot import Arm, AutoPilot, Blind, Decision, Disarm, Fire
from cockpit.core.control import Cockpit, Refused
from cockpit.core.durations import format_duration
from cockpit.core.rollout_events import Action, AutoRollback, Hold
from cockpit.core.rollout_model import Status
from cockpit.core.snapshot import Snapshot
from cockpit.core.state import StateChanged

AUTOPILOT = "cockpit (automatic)"


@dataclass
class Watch:
    cockpit: Cockpit
    say: Callable[[str], None]
    autopilot: AutoPilot = field(init=False)
    acting: asyncio.Task[None] | None = None
    last: Snapshot | None = None

    def __post_init__(self) -> None:
        self.autopilot = AutoPilot(self.cockpit.plan)

    def tick(self) -> Snapshot:
        """Judge now and carry out what the autopilot decides; returns the snapshot shown."""
        seen = self.cockpit.load()
        snapshot = self.cockpit.snapshot(seen)
        for decision in self.autopilot.step(seen.state, snapshot.gates, snapshot.taken_at):
            self._carry_out(decision)
        self.last = snapshot
        return snapshot

    def _carry_out(self, decision: Decision) -> None:
        audit, op = self.cockpit.audit, self.cockpit.operator
        match decision:
            case Arm(armed):
                left = format_duration(armed.fire_at - armed.armed_at)
                self.say(f"AUTO-ROLLBACK in {left}: {armed.why}")
                audit.append("auto_rollback.armed", operator=op, reason=armed.why)
            case Disarm(rule, why):
                self.say(f"automatic rollback disarmed ({why}): {rule}")
                audit.append("auto_rollback.disarmed", operator=op, reason=f"{rule}: {why}")
            case Fire(method, reason):
                self._fire(method, reason)
            case Blind(action, rule, reason):
                self.say(f"{reason}: on_unknown = {action}")
                audit.append("auto_rollback.blind", operator=op, reason=reason, action=action)
                if action == "hold":
                    self._hold(reason)
                elif action == "rollback":
                    self._fire(self.cockpit.plan.auto_rollback.method, reason)  # type: ignore[union-attr]

    def _hold(self, reason: str) -> None:
        seen = self.cockpit.load()
        if seen.state.status is not Status.RUNNING:
            return
        try:
            self.cockpit.apply(seen, Hold(by=AUTOPILOT, reason=reason))
        except (Refused, StateChanged) as exc:
            self.say(f"hold not applied: {exc}")

    def _fire(self, method: str, reason: str) -> None:
        seen = self.cockpit.load()
        try:
            applied = self.cockpit.apply(
                seen, AutoRollback(by=AUTOPILOT, method=method, reason=reason)
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
