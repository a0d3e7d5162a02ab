"""`cockpit validate` and `cockpit status`: what the plan says, and where the rollout stands."""

from __future__ import annotations

import argparse
import json

from cockpit.commands.common import clock_time, load, measure, open_cockpit, printable
from cockpit.core.actions import mask
from cockpit.core.catalog import Unit
from cockpit.core.durations import format_duration
from cockpit.core.plan import Plan
from cockpit.core.quantities import format_value
from cockpit.core.snapshot import Snapshot, describe_age, exit_status, snapshot_to_json


def validate(args: argparse.Namespace) -> int:
    plan = load(args)
    for line in describe_plan(plan):
        print(line)
    return 0


def describe_plan(plan: Plan) -> list[str]:
    lines = [f"{plan.config_path}: ok — {plan.name}"]
    lines.append(f"  sources: {', '.join(f'{s.name} ({s.kind})' for s in plan.sources.values())}")
    if plan.preflight_checks or plan.preflight_rules:
        lines.append(
            f"  preflight: {len(plan.preflight_checks)} checks, {len(plan.preflight_rules)} rules"
        )
    for number, phase in enumerate(plan.phases, 1):
        lines.append(
            f"  phase {number} {phase.name}: {phase.traffic}% for {format_duration(phase.bake_s)}"
            f", {len(phase.success)} success / {len(phase.failure)} failure rules"
            f", {len(phase.checks)} checks"
        )
    methods = ", ".join(m.name for m in plan.rollbacks) or "none"
    lines.append(f"  rollback methods: {methods}")
    if plan.auto_rollback is not None:
        auto = plan.auto_rollback
        lines.append(
            f"  automatic rollback by '{auto.method}' after {format_duration(auto.grace_s)}"
            f" when: {'; '.join(r.text for r in auto.when)}"
        )
    lines.append(f"  state: {plan.state_path}")
    lines.append(f"  audit: {plan.audit_path}")
    return lines


def status(args: argparse.Namespace) -> int:
    cockpit = open_cockpit(args)
    measure(cockpit, args)
    seen = cockpit.store.load()
    snapshot = cockpit.snapshot(seen)
    interrupted = cockpit.interrupted(seen)
    if args.json:
        doc = snapshot_to_json(snapshot)
        if doc["rollout"]["rollback"] is not None:
            doc["rollout"]["rollback"]["interrupted"] = interrupted
        print(mask(json.dumps(doc, indent=2), cockpit.plan.secrets))
    else:
        for line in describe_snapshot(snapshot, cockpit.machine.checklist(snapshot.state)):
            if interrupted and line.startswith("  rollback "):
                line = line.replace("in progress or interrupted", "INTERRUPTED: pick a method")
            print(printable(mask(line, cockpit.plan.secrets)))
    return exit_status(snapshot)


def describe_snapshot(snapshot: Snapshot, checklist: tuple[str, tuple[str, ...]]) -> list[str]:
    state, plan = snapshot.state, snapshot.plan
    where = state.status.value.upper().replace("_", " ")
    if state.phase:
        where += f" phase {state.phase}/{len(plan.phases)} {snapshot.phase_name}"
    lines = [f"{plan.name}: {where}, traffic {snapshot.traffic}%"]
    phase = plan.phase(state.phase)
    if phase is not None and state.phase_entered_at is not None:
        in_phase = snapshot.taken_at - state.phase_entered_at
        lines.append(
            f"  in phase {format_duration(in_phase)} of {format_duration(phase.bake_s)} bake"
        )
    if state.hold_reason:
        lines.append(f"  held: {state.hold_reason}")
    if state.rollback is not None:
        rb = state.rollback
        outcome = {True: "done", False: f"FAILED: {rb.detail}", None: "in progress or interrupted"}
        lines.append(f"  rollback '{rb.method}' by {rb.by}: {outcome[rb.ok]}")
    lines += _baseline_lines(snapshot)
    lines.append("gates:")
    for gate in snapshot.gates:
        value = gate.value_text or "-"
        lines.append(
            f"  {gate.verdict.value.upper():7} {gate.kind.value:13} {gate.rule.text}"
            f"  [{value}] {gate.reason}"
        )
    if not snapshot.gates:
        lines.append("  (no rules for this phase)")
    lines.append("sources:")
    for source in snapshot.sources:
        up = {True: "up", False: "DOWN", None: "not polled"}[source.up]
        error = f": {source.error}" if source.error else ""
        lines.append(f"  {source.name:12} {up}{error} (last ok {describe_age(source.last_ok_s)})")
    key, items = checklist
    if items:
        lines.append(f"checklist ({key}):")
        ticks = state.ticks.get(key, {})
        for number, item in enumerate(items, 1):
            tick = ticks.get(item)
            mark = f"[x] {item}  ({tick.by}, {clock_time(tick.at)})" if tick else f"[ ] {item}"
            lines.append(f"  {number:2}. {mark}")
    if snapshot.blockers:
        lines.append("not ready to advance:")
        lines += [f"  - {b}" for b in snapshot.blockers]
    elif state.status.value in ("pending", "running"):
        lines.append("ready to advance")
    return lines


def _baseline_lines(snapshot: Snapshot) -> list[str]:
    """Configured and captured baselines side by side; the captured one is what gates use."""
    plan, captured = snapshot.plan, snapshot.state.baseline
    names = sorted(set(plan.baseline) | set(captured.values if captured else {}))
    if not names:
        return []
    when = f" (captured {clock_time(captured.captured_at)} by {captured.by})" if captured else ""
    lines = [f"baseline{when}:"]
    for name in names:
        unit = plan.catalog.unit(name) or Unit.NUMBER
        parts = []
        if name in plan.baseline:
            parts.append(f"configured {format_value(plan.baseline[name], unit)}")
        if captured and name in captured.values:
            parts.append(f"captured {format_value(captured.values[name], unit)} (used)")
        lines.append(f"  {name:22} {', '.join(parts)}")
    return lines
