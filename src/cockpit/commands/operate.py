"""The acting commands: advance, hold, resume, check/uncheck, baseline, rollback."""

from __future__ import annotations

import argparse
import difflib
import functools
import sys

from cockpit.commands.common import UsageError, ask, confirm, measure, open_cockpit
from cockpit.core.actions import Step, StepResult, mask, rollback_steps, traffic_steps
from cockpit.core.baseline import capture_values
from cockpit.core.catalog import Unit
from cockpit.core.control import Applied, Cockpit, Refused
from cockpit.core.durations import DurationError, format_duration, parse_duration
from cockpit.core.engine import collect
from cockpit.core.gates import GateKind, gate_blockers
from cockpit.core.quantities import format_value
from cockpit.core.rollout_events import (
    Advance,
    CancelAuto,
    CaptureBaseline,
    Check,
    Hold,
    Resume,
    Rollback,
    Uncheck,
)
from cockpit.core.rollout_model import Status
from cockpit.core.verdict import Verdict


def _where(cockpit: Cockpit, applied: Applied) -> str:
    state = applied.after.state
    if state.status is Status.COMPLETE:
        return "rollout complete"
    phase = cockpit.plan.phase(state.phase)
    name = f" {phase.name}" if phase else ""
    return (
        f"now {state.status.value.replace('_', ' ')} in phase {state.phase}/"
        f"{len(cockpit.plan.phases)}{name}, traffic {cockpit.machine.traffic(state)}%"
    )


def _print_step(secrets: frozenset[str], step: Step, result: StepResult) -> None:
    print(f"  {step.describe(secrets)}: {mask(result.summary(), secrets)}")


def _run_actions(cockpit: Cockpit, args: argparse.Namespace, applied: Applied) -> int:
    def confirm_manual(text: str) -> bool:
        # --yes never vouches for work a person must do: a manual step needs a real answer.
        print(f"manual step: {text}")
        return ask("Is it done?")

    code = 0
    for action in applied.actions:
        results = cockpit.run_action(
            action,
            confirm_manual=confirm_manual,
            on_step=functools.partial(_print_step, cockpit.plan.secrets),
        )
        if any(not r.ok for r in results):
            code = 1
    if code:
        print(f"cockpit: action failed; {_where_now(cockpit)}", file=sys.stderr)
    return code


def _where_now(cockpit: Cockpit) -> str:
    seen = cockpit.store.load()
    return _where(cockpit, Applied(seen, seen, ()))


def advance(args: argparse.Namespace) -> int:
    if args.force and not args.reason.strip():
        raise UsageError("--force needs --reason: say why the gates are overridden")
    cockpit = open_cockpit(args)
    measure(cockpit, args)
    seen = cockpit.load()
    snapshot = cockpit.snapshot(seen)
    if args.dry_run:
        return _advance_dry_run(cockpit, seen.state.phase, snapshot.blockers, args.force)
    if snapshot.blockers and not args.force:
        print("not ready to advance:", file=sys.stderr)
        for line in snapshot.blockers:
            print(f"  - {line}", file=sys.stderr)
        raise Refused("advance refused (use --force --reason R to override)")
    target = cockpit.plan.phase(seen.state.phase + 1)
    goal = (
        f"phase {seen.state.phase + 1} {target.name} ({target.traffic}%)" if target else "complete"
    )
    forced = f", overriding {len(snapshot.blockers)} blockers" if snapshot.blockers else ""
    if not confirm(args, f"Advance to {goal}{forced}?"):
        raise Refused("not confirmed: nothing changed")
    event = Advance(
        by=str(cockpit.operator),
        gate_blockers=tuple(gate_blockers(list(snapshot.gates))),
        force=args.force,
        reason=args.reason,
    )
    applied = cockpit.apply(seen, event, snapshot.gates)
    print(f"advanced: {_where(cockpit, applied)}")
    return _run_actions(cockpit, args, applied)


def _advance_dry_run(cockpit: Cockpit, phase: int, blockers: tuple[str, ...], force: bool) -> int:
    """What an advance would do now, with placeholders filled and secrets masked; runs nothing."""
    for line in blockers:
        print(f"blocker: {line}")
    allowed = force or not blockers
    target = cockpit.plan.phase(phase + 1)
    goal = f"phase {phase + 1} {target.name} ({target.traffic}%)" if target else "complete"
    print(f"dry run: {'would' if allowed else 'would NOT'} advance to {goal}")
    if target is not None:
        for step in traffic_steps(cockpit.plan, target.traffic, phase + 1):
            print(f"  {step.describe(cockpit.plan.secrets)}")
    return 0 if allowed else 1


def hold(args: argparse.Namespace) -> int:
    cockpit = open_cockpit(args)
    seen = cockpit.load()
    applied = cockpit.apply(seen, Hold(by=str(cockpit.operator), reason=args.reason))
    print(f"held: {_where(cockpit, applied)}")
    return 0


def resume(args: argparse.Namespace) -> int:
    cockpit = open_cockpit(args)
    seen = cockpit.load()
    applied = cockpit.apply(seen, Resume(by=str(cockpit.operator), reason=args.reason))
    print(f"resumed: {_where(cockpit, applied)}")
    return 0


def _tick(args: argparse.Namespace, *, tick: bool) -> int:
    cockpit = open_cockpit(args)
    seen = cockpit.load()
    try:
        item = cockpit.machine.resolve_item(seen.state, args.item)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    by = str(cockpit.operator)
    event = Check(by=by, item=item) if tick else Uncheck(by=by, item=item)
    cockpit.apply(seen, event)
    print(f"{'ticked' if tick else 'unticked'}: {item}")
    return 0


def check(args: argparse.Namespace) -> int:
    return _tick(args, tick=True)


def uncheck(args: argparse.Namespace) -> int:
    return _tick(args, tick=False)


def baseline(args: argparse.Namespace) -> int:
    try:
        window = parse_duration(args.window)
    except DurationError as exc:
        raise UsageError(f"--for: {exc}") from None
    if window <= 0:
        raise UsageError("--for: measure for some time, e.g. 15m")
    cockpit = open_cockpit(args, keep_s=window)
    started = cockpit.clock()
    collect(cockpit.plan, cockpit.metrics, window)
    values = capture_values(cockpit.plan, cockpit.metrics, started, cockpit.clock())
    if not values:
        raise Refused(f"nothing measured in {format_duration(window)}: no baseline captured")
    seen = cockpit.load()
    event = CaptureBaseline(by=str(cockpit.operator), values=values, window_s=window)
    cockpit.apply(seen, event)
    for name, value in sorted(values.items()):
        unit = cockpit.plan.catalog.unit(name) or Unit.NUMBER
        print(f"baseline {name} = {format_value(value, unit)}")
    return 0


def rollback(args: argparse.Namespace) -> int:
    cockpit = open_cockpit(args)
    plan = cockpit.plan
    seen = cockpit.load()
    if args.method is None:
        for method in plan.rollbacks:
            eta = format_duration(method.eta_s) if method.eta_s is not None else "?"
            print(f"{method.name:10} {method.title} (ETA {eta}) — when: {method.when}")
            for step in rollback_steps(plan, method.name, seen.state.phase):
                print(f"    {step.describe(plan.secrets)}")
        return 0
    chosen = plan.rollback(args.method)
    if chosen is None:
        names = ", ".join(m.name for m in plan.rollbacks)
        close = difflib.get_close_matches(args.method, [m.name for m in plan.rollbacks], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UsageError(f"no rollback method '{args.method}'{hint}; methods: {names}")
    method = chosen
    steps = rollback_steps(plan, method.name, seen.state.phase)
    if args.dry_run:
        print(f"dry run: rollback '{method.name}' ({method.title}) would:")
        for step in steps:
            print(f"  {step.describe(plan.secrets)}")
        return 0
    print(f"rollback '{method.name}': {method.title} — {method.when}")
    for step in steps:
        print(f"  {step.describe(plan.secrets)}")
    if not confirm(args, "Roll back now?", typed=method.name):
        raise Refused("not confirmed: nothing changed")
    event = Rollback(by=str(cockpit.operator), method=method.name, reason=args.reason)
    applied = cockpit.apply(seen, event, cockpit.snapshot(seen).gates)
    code = _run_actions(cockpit, args, applied)
    print(f"rollback '{method.name}': {_where_now(cockpit)}")
    return code


def cancel(args: argparse.Namespace) -> int:
    """Stop an armed automatic rollback; its triggers stay quiet for the cooldown."""
    cockpit = open_cockpit(args)
    auto = cockpit.plan.auto_rollback
    if auto is None:
        raise UsageError("the plan has no [auto_rollback]")
    rules = tuple(args.rules)
    if not rules:
        measure(cockpit, args)
        failing = [g for g in cockpit.snapshot().gates if g.kind is GateKind.AUTO_ROLLBACK]
        rules = tuple(g.rule.text for g in failing if g.verdict is Verdict.FAIL)
        if not rules:
            raise Refused("no automatic trigger is failing now; name the rule to cancel")
    seen = cockpit.load()
    until = cockpit.clock() + auto.cooldown_s
    event = CancelAuto(by=str(cockpit.operator), rules=rules, reason=args.reason, until=until)
    cockpit.apply(seen, event)
    print(f"cancelled for {format_duration(auto.cooldown_s)}: {'; '.join(rules)}")
    return 0
