"""The rollout state machine: pure `transition(state, event, now) -> Outcome`.

No I/O and no clock: the caller passes `now` (UTC epoch seconds), runs the actions the outcome
asks for, and stores the new state. A refusal leaves the state untouched and says why in one
line, so the same words reach the TUI, the CLI and the audit log.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Sequence
from dataclasses import replace

from cockpit.core.durations import format_duration
from cockpit.core.plan import Phase, Plan
from cockpit.core.rollout_events import (
    Action,
    Advance,
    AutoRollback,
    CancelAuto,
    CaptureBaseline,
    Check,
    Event,
    Hold,
    Outcome,
    Restart,
    Resume,
    Rollback,
    RollbackFinished,
    RunRollback,
    SetTraffic,
    Uncheck,
)
from cockpit.core.rollout_model import (
    AFTER_ROLLBACK,
    PREFLIGHT,
    AutoCancel,
    Baseline,
    HistoryEntry,
    RollbackRecord,
    RolloutState,
    Status,
    Tick,
    phase_key,
)

# The cockpit stays up for days; history in the state file must not grow without bound
# (the audit log keeps everything).
MAX_HISTORY = 200


class RolloutMachine:
    """The rules of one plan's rollout. Holds no state of its own: pass the state in."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    @property
    def plan(self) -> Plan:
        return self._plan

    # -- questions about a state ------------------------------------------------------------

    def traffic(self, state: RolloutState) -> int:
        """Percent of traffic on the new path now, as far as the machine knows."""
        if state.status in (Status.PENDING, Status.ROLLED_BACK):
            return 0
        phase = self._last_phase() if state.status is Status.COMPLETE else self._phase(state)
        return phase.traffic if phase else 0

    def checklist(self, state: RolloutState) -> tuple[str, tuple[str, ...]]:
        """(key in `state.ticks`, items) of the checklist that applies now."""
        if state.status is Status.PENDING:
            return PREFLIGHT, self._plan.preflight_checks
        if state.status in (Status.ROLLING_BACK, Status.ROLLED_BACK):
            return AFTER_ROLLBACK, self._plan.after_rollback_checks
        number = len(self._plan.phases) if state.status is Status.COMPLETE else state.phase
        phase = self._plan.phase(number)
        return phase_key(number), phase.checks if phase else ()

    def bake_left(self, state: RolloutState, now: float) -> float:
        """Seconds of the current phase's bake still to go (0 outside running/holding).
        The bake keeps counting during a hold: traffic stays on, so the phase keeps baking."""
        phase = self._phase(state)
        if state.status not in (Status.RUNNING, Status.HOLDING) or phase is None:
            return 0.0
        # A phase with no entry time has not started baking: nothing has been observed yet.
        entered = now if state.phase_entered_at is None else state.phase_entered_at
        return max(0.0, phase.bake_s - (now - entered))

    def blockers(
        self, state: RolloutState, now: float, gate_blockers: Sequence[str] = ()
    ) -> list[str]:
        """Everything that stops an advance now, one readable line each; empty means go."""
        stop = self._not_advanceable(state)
        if stop is not None:
            return [stop]
        found = list(gate_blockers)
        phase = self._phase(state)
        left = self.bake_left(state, now)
        if phase is not None and left > 0:
            found.append(f"bake: {format_duration(left)} left of {format_duration(phase.bake_s)}")
        key, items = self.checklist(state)
        ticked = state.ticks.get(key, {})
        found.extend(f"check open: {item}" for item in items if item not in ticked)
        return found

    def resolve_item(self, state: RolloutState, text: str) -> str:
        """The exact checklist item meant by `text`: the item itself, its 1-based number, or a
        case-insensitive piece of it that matches one item only. ValueError (one line) if not."""
        key, items = self.checklist(state)
        wanted = text.strip()
        if not items:
            raise ValueError(f"the {key} checklist is empty")
        if wanted in items:
            return wanted
        if not wanted:
            raise ValueError(f"which item? the {key} checklist: {_numbered(items)}")
        if wanted.isascii() and wanted.isdigit():  # "²".isdigit() is True, int("²") fails
            number = int(wanted)
            if 1 <= number <= len(items):
                return items[number - 1]
            raise ValueError(f"no item {number}: the {key} checklist has items 1-{len(items)}")
        lower = wanted.casefold()
        same = [item for item in items if item.casefold() == lower]
        if len(same) == 1:
            return same[0]
        found = [item for item in items if lower in item.casefold()]
        if len(found) == 1:
            return found[0]
        if found:
            listed = "; ".join(repr(item) for item in found)
            raise ValueError(f"{wanted!r} matches {len(found)} items, say which: {listed}")
        close = difflib.get_close_matches(wanted, items, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"no item {wanted!r} on the {key} checklist{hint} items: {_numbered(items)}"
        )

    # -- the transition -----------------------------------------------------------------------

    def transition(self, state: RolloutState, event: Event, now: float) -> Outcome:
        """The state after `event` at `now`, and the actions the caller must run; or a refusal."""
        if not event.by.strip():
            return _refuse(state, f"{event.name}: who is acting? no operator given")
        match event:
            case Advance():
                return self._advance(state, event, now)
            case Hold():
                return self._hold(state, event, now)
            case Resume():
                return self._resume(state, event, now)
            case Rollback() | AutoRollback():
                return self._rollback(state, event, now)
            case RollbackFinished():
                return self._rollback_finished(state, event, now)
            case Check() | Uncheck():
                return self._tick(state, event, now)
            case CaptureBaseline():
                return self._capture_baseline(state, event, now)
            case Restart():
                return self._restart(state, event, now)
            case CancelAuto():
                return self._cancel_auto(state, event, now)
        return _refuse(state, f"unknown event {type(event).__name__}")  # pragma: no cover

    def _cancel_auto(self, state: RolloutState, event: CancelAuto, now: float) -> Outcome:
        """Record who stopped which automatic triggers, until when (expired ones are dropped)."""
        reason = event.reason.strip()
        if not reason:
            return _refuse(state, "cancelling an automatic rollback needs a reason")
        auto = self._plan.auto_rollback
        known = {rule.text for rule in auto.when} if auto else set()
        unknown = [rule for rule in event.rules if rule not in known]
        if not event.rules or unknown:
            return _refuse(state, f"no such automatic trigger: {', '.join(unknown) or '(none)'}")
        if event.until <= now:
            return _refuse(state, "a cancellation must last into the future")
        cancelled = {rule: c for rule, c in state.auto_cancelled.items() if c.until > now}
        for rule in event.rules:
            cancelled[rule] = AutoCancel(by=event.by, at=now, reason=reason, until=event.until)
        new = replace(state, auto_cancelled=cancelled)
        return self._record(state, new, event, now, f"{reason} ({'; '.join(event.rules)})")

    def _advance(self, state: RolloutState, event: Advance, now: float) -> Outcome:
        refusal = self._advance_refusal(state)
        if refusal is not None:
            return _refuse(state, refusal)
        reason = event.reason.strip()
        if event.force and not reason:
            return _refuse(state, "a forced advance needs a reason")
        blockers = self.blockers(state, now, event.gate_blockers)
        if blockers and not event.force:
            return _refuse(state, "cannot advance: " + "; ".join(blockers))
        if blockers:
            overrode = f"overrode: {'; '.join(blockers)}"
            reason = f"{reason} ({overrode})"
        phases = self._plan.phases
        actions: tuple[Action, ...] = ()
        if state.status is Status.PENDING:
            new = replace(state, status=Status.RUNNING, phase=1, started_at=now)
            actions = (SetTraffic(phases[0].traffic, 1),)
        elif state.phase < len(phases):
            number = state.phase + 1
            new = replace(state, phase=number)
            actions = (SetTraffic(phases[number - 1].traffic, number),)
        else:
            new = replace(state, status=Status.COMPLETE)
        return self._record(state, new, event, now, reason, actions, forced=bool(blockers))

    def _hold(self, state: RolloutState, event: Hold, now: float) -> Outcome:
        if state.status is Status.HOLDING:
            return _refuse(state, f"already on hold: {state.hold_reason}")
        if state.status is not Status.RUNNING:
            return _refuse(state, f"cannot hold: {_describe(state)}; only a running phase holds")
        reason = event.reason.strip()
        if not reason:
            return _refuse(state, "a hold needs a reason")
        new = replace(state, status=Status.HOLDING, hold_reason=reason)
        return self._record(state, new, event, now, reason)

    def _resume(self, state: RolloutState, event: Resume, now: float) -> Outcome:
        if state.status is not Status.HOLDING:
            return _refuse(state, f"cannot resume: not on hold ({_describe(state)})")
        new = replace(state, status=Status.RUNNING, hold_reason=None)
        return self._record(state, new, event, now, event.reason.strip())

    def _rollback(self, state: RolloutState, event: Rollback | AutoRollback, now: float) -> Outcome:
        auto = isinstance(event, AutoRollback)
        refusal = self._rollback_refusal(state, now, auto=auto)
        if refusal is not None:
            return _refuse(state, refusal)
        reason = event.reason.strip()
        if auto and not reason:
            return _refuse(state, "an automatic rollback needs the rule that fired as its reason")
        if self._plan.rollback(event.method) is None:
            return _refuse(state, self._unknown_method(event.method))
        record = RollbackRecord(event.method, started_at=now, by=event.by, reason=reason, auto=auto)
        new = replace(state, status=Status.ROLLING_BACK, hold_reason=None, rollback=record)
        actions = (RunRollback(event.method, auto),)
        return self._record(state, new, event, now, reason, actions)

    def _rollback_finished(
        self, state: RolloutState, event: RollbackFinished, now: float
    ) -> Outcome:
        record = state.rollback
        if state.status is not Status.ROLLING_BACK or record is None:
            return _refuse(state, f"no rollback is running ({_describe(state)})")
        if record.ok is not None:
            return _refuse(state, f"rollback {record.method!r} already finished: it failed")
        detail = event.detail.strip()
        done = replace(record, finished_at=now, ok=event.ok, detail=detail)
        status = Status.ROLLED_BACK if event.ok else Status.ROLLING_BACK
        new = replace(state, status=status, rollback=done)
        result = "ok" if event.ok else "failed"
        reason = f"{record.method} {result}" + (f": {detail}" if detail else "")
        return self._record(state, new, event, now, reason)

    def _tick(self, state: RolloutState, event: Check | Uncheck, now: float) -> Outcome:
        key, items = self.checklist(state)
        if event.item not in items:
            return _refuse(state, f"{event.item!r} is not on the {key} checklist")
        ticked = dict(state.ticks.get(key, {}))
        tick = ticked.get(event.item)
        if isinstance(event, Check):
            if tick is not None:
                return _refuse(state, f"already ticked by {tick.by} at {_clock(tick.at, now)}")
            ticked[event.item] = Tick(event.by, now)
        else:
            if tick is None:
                return _refuse(state, f"not ticked: {event.item}")
            del ticked[event.item]
        ticks = {k: v for k, v in state.ticks.items() if k != key}
        if ticked:
            ticks[key] = ticked
        return self._record(state, replace(state, ticks=ticks), event, now, event.item)

    def _capture_baseline(self, state: RolloutState, event: CaptureBaseline, now: float) -> Outcome:
        if not event.values:
            return _refuse(state, "nothing measured to capture")
        for metric, value in event.values.items():
            if not math.isfinite(value):
                return _refuse(state, f"cannot capture {metric}: {value} is not a number")
        if not (math.isfinite(event.window_s) and event.window_s > 0):
            return _refuse(state, f"the baseline window must be positive, not {event.window_s}")
        baseline = Baseline(dict(event.values), now, event.window_s, event.by)
        window = format_duration(event.window_s)
        reason = f"{len(event.values)} metric(s) over {window}: " + ", ".join(sorted(event.values))
        return self._record(state, replace(state, baseline=baseline), event, now, reason)

    def _restart(self, state: RolloutState, event: Restart, now: float) -> Outcome:
        if state.status is not Status.ROLLED_BACK:
            return _refuse(state, f"cannot restart: {_describe(state)}; restart follows a rollback")
        reason = event.reason.strip()
        if not reason:
            return _refuse(state, "a restart needs a reason (what changed since the rollback?)")
        # A fresh attempt: ticks and the rollback record go (history keeps them); the
        # baseline stays, it measures the old path, which is what is running again.
        new = RolloutState(
            baseline=state.baseline,
            history=state.history,
            updated_by=state.updated_by,
            updated_at=state.updated_at,
        )
        return self._record(state, new, event, now, reason)

    # -- helpers ------------------------------------------------------------------------------

    def _record(
        self,
        old: RolloutState,
        new: RolloutState,
        event: Event,
        now: float,
        reason: str = "",
        actions: tuple[Action, ...] = (),
        *,
        forced: bool = False,
    ) -> Outcome:
        """Accept: stamp who and when, note the phase change, append to the bounded history."""
        entry = HistoryEntry(
            at=now,
            by=event.by,
            event=event.name,
            from_status=old.status,
            to_status=new.status,
            from_phase=old.phase,
            to_phase=new.phase,
            reason=reason,
            forced=forced,
        )
        entered = new.phase_entered_at
        if new.phase != old.phase:
            entered = now if new.phase else None  # phase 0 is "not started", never entered
        history = (*old.history, entry)[-MAX_HISTORY:]
        stamped = replace(
            new, phase_entered_at=entered, history=history, updated_by=event.by, updated_at=now
        )
        return Outcome(stamped, actions)

    def _phase(self, state: RolloutState) -> Phase | None:
        return self._plan.phase(state.phase)

    def _last_phase(self) -> Phase | None:
        return self._plan.phases[-1] if self._plan.phases else None

    def _not_advanceable(self, state: RolloutState) -> str | None:
        """The one line `blockers` gives for a state that cannot advance at all."""
        match state.status:
            case Status.HOLDING:
                return f"holding: {state.hold_reason} — resume first"
            case Status.ROLLING_BACK:
                return "rolling back"
            case Status.ROLLED_BACK:
                return "rolled back"
            case Status.COMPLETE:
                return "complete"
            case Status.PENDING if not self._plan.phases:
                return "the plan has no phases"
            case Status.RUNNING if self._phase(state) is None:
                return f"phase {state.phase} is not in the plan ({len(self._plan.phases)} phases)"
        return None

    def _advance_refusal(self, state: RolloutState) -> str | None:
        match state.status:
            case Status.HOLDING:
                return f"on hold: {state.hold_reason} — resume first"
            case Status.ROLLING_BACK:
                return "cannot advance while rolling back"
            case Status.ROLLED_BACK:
                return "cannot advance: rolled back — restart for a new attempt"
            case Status.COMPLETE:
                return "cannot advance: the rollout is already complete"
        stop = self._not_advanceable(state)
        return None if stop is None else f"cannot advance: {stop}"

    def _rollback_refusal(self, state: RolloutState, now: float, *, auto: bool) -> str | None:
        record = state.rollback
        match state.status:
            case Status.PENDING:
                return "nothing to roll back: the rollout has not started"
            case Status.ROLLED_BACK:
                return "already rolled back (restart for a new attempt)"
            case Status.ROLLING_BACK if record is not None and record.ok is None:
                return (
                    f"rollback {record.method!r} is in progress (started by {record.by}"
                    f" at {_clock(record.started_at, now)}); wait for it to finish"
                )
            case Status.ROLLING_BACK if auto:
                # After a failed rollback a person picks the next method, not a rule.
                return "a rollback is under way; after a failure an operator picks the next method"
        return None

    def _unknown_method(self, method: str) -> str:
        names = [m.name for m in self._plan.rollbacks]
        if not names:
            return f"unknown rollback method {method!r}: the plan defines none"
        close = difflib.get_close_matches(method, names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown rollback method {method!r}{hint} methods: {', '.join(names)}"


def _refuse(state: RolloutState, why: str) -> Outcome:
    return Outcome(state, (), " ".join(why.split()))  # one line, whatever the inputs held


def _describe(state: RolloutState) -> str:
    """Where the rollout is, in a few words, for refusals."""
    match state.status:
        case Status.PENDING:
            return "not started"
        case Status.RUNNING:
            return f"running phase {state.phase}"
        case Status.HOLDING:
            return f"on hold in phase {state.phase}"
        case Status.ROLLING_BACK:
            return "rolling back"
        case Status.ROLLED_BACK:
            return "rolled back"
    return "complete"


def _clock(at: float, now: float) -> str:
    """ "14:02 UTC", with the date when `at` is not on the same UTC day as `now`."""
    moment, today = time.gmtime(at), time.gmtime(now)
    same_day = moment[:3] == today[:3]
    return time.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC", moment)


def _numbered(items: Sequence[str]) -> str:
    return "; ".join(f"{n}. {item}" for n, item in enumerate(items, start=1))
