"""Operator commands applied safely: transition, compare-and-swap, audit, then the actions.

Shared by the headless CLI and the TUI. The order is the journal's: a state change is
committed (CAS on the version the operator saw) and recorded; each action gets an audit line
before it starts and another when it ends, so a crash in between is visible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.core import notify
from cockpit.core.actions import (
    Step,
    StepResult,
    mask,
    rollback_steps,
    run_command,
    run_http,
    traffic_steps,
    verify,
)
from cockpit.core.atomic import LockTimeout, exclusive_lock
from cockpit.core.audit import AuditLog
from cockpit.core.gates import GateResult
from cockpit.core.metrics.store import MetricStore
from cockpit.core.notify import Notifier
from cockpit.core.operator import Operator
from cockpit.core.plan import Plan
from cockpit.core.rollout import RolloutMachine
from cockpit.core.rollout_events import (
    Action,
    Advance,
    AutoRollback,
    CancelAuto,
    CaptureBaseline,
    Event,
    Hold,
    Outcome,
    Resume,
    Rollback,
    RollbackFinished,
    RunRollback,
    SetTraffic,
)
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.snapshot import Snapshot, build_snapshot
from cockpit.core.sources.base import one_line
from cockpit.core.state import StateChanged, StateStore, Versioned
from cockpit.core.trust import check_plan_trust


class Refused(Exception):
    """The rollout does not allow this now; the message is one line for a person."""


@dataclass
class Cockpit:
    """Everything an operator command needs, wired once from a plan."""

    plan: Plan
    operator: Operator
    metrics: MetricStore
    clock: Callable[[], float] = time.time
    notifier: Notifier | None = None
    on_output: Callable[[str], None] | None = None  # each line of a running command, masked
    store: StateStore = field(init=False)
    audit: AuditLog = field(init=False)
    machine: RolloutMachine = field(init=False)
    # The actions lock, taken before a commit that starts an action and handed to whoever runs
    # it: between the two, no cockpit may take the rollback for one whose runner died.
    # A claim no runner took within this long is let go (its caller failed before running it).
    claim_timeout_s: float = field(init=False, default=60.0)
    _handed: tuple[Action, float, ExitStack] | None = field(init=False, default=None)
    _handing: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.store = StateStore(self.plan.state_path)
        self.audit = AuditLog(self.plan.audit_path, clock=self.clock)
        self.machine = RolloutMachine(self.plan)

    def snapshot(self, seen: Versioned | None = None) -> Snapshot:
        seen = seen or self.store.load()
        return build_snapshot(self.plan, seen.state, seen.version, self.metrics, self.clock())

    def apply(self, seen: Versioned, event: Event, gates: Sequence[GateResult] = ()) -> Applied:
        """Apply `event` to the state the operator saw; StateChanged if someone was faster.

        The audit line is written under the state lock before the commit: if the journal
        cannot be written, nothing changes.
        """
        outcome = self.machine.transition(seen.state, event, self.clock())
        if outcome.refused is not None:
            raise Refused(outcome.refused)
        if outcome.actions:
            # Refuse before the state moves: a phase entered without its traffic change
            # would be worse than not entering it.
            distrust = check_plan_trust(self.plan)
            if distrust is not None:
                raise Refused(distrust)
        if outcome.actions:
            self._let_go(lambda action, at: True)  # one claim at a time: never wait for our own
        claim = self._claim_if_free() if outcome.actions else None
        try:
            applied = self._commit(seen, event, gates, outcome)
        except BaseException:
            if claim is not None:
                claim.close()
            raise
        if claim is not None:
            with self._handing:
                self._handed = (outcome.actions[0], time.monotonic(), claim)
        return applied

    def _let_go(self, which: Callable[[Action, float], bool]) -> None:
        """Release the claim when `which(action, claimed_at)` says so."""
        with self._handing:
            handed = self._handed
            if handed is None or not which(handed[0], handed[1]):
                return
            self._handed = None
        handed[2].close()

    def _claim_actions_lock(self, timeout: float = 60.0) -> ExitStack:
        held = ExitStack()
        held.enter_context(exclusive_lock(self._actions_lock, timeout=timeout, what="actions"))
        return held

    def _claim_if_free(self) -> ExitStack | None:
        """The actions lock if nobody holds it. When an action runs, the commit does not wait
        for it (the engine's thread must not stall): its runner waits in `run_action`, and
        meanwhile the lock is held, so no cockpit takes the new action for an interrupted one."""
        try:
            return self._claim_actions_lock(timeout=0.0)
        except LockTimeout:
            return None

    def _commit(
        self, seen: Versioned, event: Event, gates: Sequence[GateResult], outcome: Outcome
    ) -> Applied:
        with self.store.lock():
            current = self.store.load()
            if current.version != seen.version:
                raise StateChanged(current)
            after_summary = self._summary(Versioned(outcome.state, seen.version + 1))
            self.audit.append(
                _event_name(event),
                operator=self.operator,
                phase=outcome.state.phase,
                before=self._summary(seen),
                after=after_summary,
                reason=mask(getattr(event, "reason", "") or "", self.plan.secrets),
                gates=[gate_record(g) for g in gates],
                **_event_details(event),
            )
            after = self.store.commit(outcome.state, seen.version)
        self._notify(event, after, gates)
        return Applied(seen, after, outcome.actions)

    def _notify(self, event: Event, after: Versioned, gates: Sequence[GateResult]) -> None:
        """Tell the team (Slack, webhook) about what changed; never blocks, never raises."""
        kind = notification_for(event)
        if self.notifier is None or kind is None:
            return
        self.notifier.send(
            kind,
            phase=after.state.phase,
            percent=self.machine.traffic(after.state),
            operator=str(self.operator) if event.by != AUTOPILOT else event.by,
            reason=getattr(event, "reason", "") or getattr(event, "detail", "") or "",
            gates=[gate_record(g) for g in gates],
        )

    def load(self) -> Versioned:
        """The current state, with a rollback whose runner died marked as interrupted.

        A running action holds the actions lock; a rollback still "in progress" while nobody
        holds it was cut short (SIGKILL, lost terminal), so the operator may pick a method.
        """
        now = time.monotonic()
        self._let_go(lambda action, at: now - at >= self.claim_timeout_s)  # its runner never came
        seen = self.store.load()
        record = seen.state.rollback
        if seen.state.status is not Status.ROLLING_BACK or record is None or record.ok is not None:
            return seen
        try:
            with exclusive_lock(self._actions_lock, timeout=0.0, what="actions"):
                finished = RollbackFinished(
                    by=str(self.operator),
                    ok=False,
                    detail="interrupted: the cockpit running it stopped before it finished",
                )
                self.apply(seen, finished)
        except (LockTimeout, StateChanged):
            pass  # still running elsewhere, or someone else settled it first
        return self.store.load()

    @property
    def _actions_lock(self) -> Path:
        return self.plan.state_path.with_name(self.plan.state_path.name + ".actions.lock")

    def steps_for(self, action: Action) -> list[Step]:
        if isinstance(action, SetTraffic):
            return traffic_steps(self.plan, action.percent, action.phase)
        return rollback_steps(self.plan, action.method, self.store.load().state.phase)

    def run_action(
        self,
        action: Action,
        *,
        confirm_manual: Callable[[str], bool],
        on_step: Callable[[Step, StepResult], None] = lambda s, r: None,
    ) -> list[StepResult]:
        """Run an action's steps in order, stopping at the first failure; then settle the state.
        Under the actions lock: the one `apply` took for it, or taken now."""
        with self._handing:
            handed, self._handed = self._handed, None
        if handed is not None and handed[0] != action:
            handed[2].close()  # another action's: its runner will wait for the lock as we do
            handed = None
        with handed[2] if handed is not None else self._claim_actions_lock():
            return self._run_steps(action, confirm_manual, on_step)

    def _run_steps(
        self,
        action: Action,
        confirm_manual: Callable[[str], bool],
        on_step: Callable[[Step, StepResult], None],
    ) -> list[StepResult]:
        results: list[StepResult] = []
        for step in self.steps_for(action):
            described = step.describe(self.plan.secrets)
            self.audit.append("action.start", operator=self.operator, step=described)
            try:
                result = self._run_step(step, confirm_manual)
            except KeyboardInterrupt:
                # Ctrl-C mid-action: record it and settle the state as failed, so the
                # rollout is not left "rolling back" forever; then let the interrupt go on.
                interrupted = StepResult(step, False, error="interrupted by the operator")
                self.audit.append(
                    "action.end",
                    operator=self.operator,
                    step=described,
                    ok=False,
                    error=interrupted.error,
                )
                self._settle(action, [*results, interrupted])
                raise
            self.audit.append(
                "action.end",
                operator=self.operator,
                step=described,
                ok=result.ok,
                error=result.error,
                output=mask(result.output, self.plan.secrets),
            )
            results.append(result)
            on_step(step, result)
            if not result.ok:
                break
        self._settle(action, results)
        return results

    def _run_step(self, step: Step, confirm_manual: Callable[[str], bool]) -> StepResult:
        try:
            return self._run_step_unguarded(step, confirm_manual)
        except Exception as exc:  # a step that blows up is a failed step, never a stuck state
            return StepResult(step, False, error=f"failed: {one_line(exc)}")

    def _run_step_unguarded(self, step: Step, confirm_manual: Callable[[str], bool]) -> StepResult:
        if step.manual is not None:
            done = confirm_manual(step.manual)
            return StepResult(step, done, error=None if done else "manual step not confirmed")
        if step.verify_url is not None:
            return verify(step)
        if step.http is not None:
            return run_http(step)
        return run_command(step, on_output=self._stream)

    def _stream(self, line: str) -> None:
        if self.on_output is not None:
            self.on_output(mask(line, self.plan.secrets))

    def interrupted(self, seen: Versioned) -> bool:
        """A rollback recorded as running whose runner is gone (nobody holds the actions lock)."""
        record = seen.state.rollback
        if seen.state.status is not Status.ROLLING_BACK or record is None or record.ok is not None:
            return False
        try:
            with exclusive_lock(self._actions_lock, timeout=0.0, what="actions"):
                return True
        except LockTimeout:
            return False

    def _settle(self, action: Action, results: list[StepResult]) -> None:
        failed = next((r for r in results if not r.ok), None)
        seen = self.store.load()
        if isinstance(action, RunRollback):
            detail = (
                ""
                if failed is None
                else f"{failed.step.describe(self.plan.secrets)}: {failed.error}"
            )
            self.apply(
                seen, RollbackFinished(by=str(self.operator), ok=failed is None, detail=detail)
            )
        elif failed is not None:
            # A phase entered without its traffic change must not be advanced further by accident.
            reason = f"traffic change to {action.percent}% failed: {failed.error}"
            self.apply(seen, Hold(by=str(self.operator), reason=mask(reason, self.plan.secrets)))

    def _summary(self, versioned: Versioned) -> dict[str, Any]:
        state: RolloutState = versioned.state
        return {
            "status": state.status.value,
            "phase": state.phase,
            "traffic": self.machine.traffic(state),
            "version": versioned.version,
        }


@dataclass(frozen=True)
class Applied:
    before: Versioned
    after: Versioned
    actions: tuple[Action, ...]


def gate_record(gate: GateResult) -> dict[str, Any]:
    return {
        "kind": gate.kind.value,
        "rule": gate.rule.text,
        "verdict": gate.verdict.value,
        "value": gate.value,
        "reason": gate.reason,
    }


def _event_name(event: Event) -> str:
    name = type(event).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _event_details(event: Event) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for key in ("by", "method", "item", "force", "ok", "detail", "window_s"):
        if hasattr(event, key):
            details[key] = getattr(event, key)
    if isinstance(event, CaptureBaseline):
        details["values"] = dict(event.values)
    return details


AUTOPILOT = "cockpit (automatic)"


def notification_for(event: Event) -> str | None:
    """Which notification an accepted event makes, if any (ticks and baselines make none)."""
    match event:
        case Advance():
            return notify.PHASE_CHANGE
        case Hold():
            return notify.HOLD
        case Resume():
            return notify.RESUME
        case AutoRollback():
            return notify.AUTO_ROLLBACK_FIRED
        case Rollback():
            return notify.ROLLBACK_STARTED
        case RollbackFinished(ok=True):
            return notify.ROLLBACK_FINISHED
        case RollbackFinished():
            return notify.ROLLBACK_FAILED
        case CancelAuto():
            return notify.AUTO_ROLLBACK_CANCELLED
    return None
