"""The decision and every rule of the current phase with its verdict, value and reason."""

from __future__ import annotations

from textual.content import Content

from cockpit.core.durations import format_duration
from cockpit.core.gates import GateKind
from cockpit.core.rollout import RolloutMachine
from cockpit.core.snapshot import Snapshot
from cockpit.core.verdict import Verdict
from cockpit.tui.widgets.pane import Pane

MARK = {
    Verdict.PASS: ("✔", "$success"),
    Verdict.FAIL: ("✘", "bold $error"),
    Verdict.UNKNOWN: ("?", "$warning"),
}
KIND = {GateKind.SUCCESS: "ok ", GateKind.FAILURE: "bad", GateKind.AUTO_ROLLBACK: "rb "}


def decision(snapshot: Snapshot) -> tuple[str, str]:
    """(one line, style): what a person should do now, in the gates' own words."""
    failing = [
        g for g in snapshot.gates if g.kind is not GateKind.SUCCESS and g.verdict is Verdict.FAIL
    ]
    if failing:
        return f"Failure criteria met: roll back ({failing[0].rule.text})", "bold $error"
    if not snapshot.blockers:
        return "Ready to advance", "bold $success"
    parts = []
    left = RolloutMachine(snapshot.plan).bake_left(snapshot.state, snapshot.taken_at)
    if left > 0:
        parts.append(f"bake {format_duration(left)} left")
    checks = sum(b.startswith("check open:") for b in snapshot.blockers)
    if checks:
        parts.append(f"{checks} check{'s' if checks > 1 else ''} open")
    gates = sum(g.blocks_advance for g in snapshot.gates)
    if gates:
        parts.append(f"{gates} gate{'s' if gates > 1 else ''} not passing")
    if not parts:
        parts.append(snapshot.blockers[0])
    return "Waiting: " + ", ".join(parts), "bold $warning"


ORDER = {Verdict.FAIL: 0, Verdict.UNKNOWN: 1, Verdict.PASS: 2}


class DecisionLine(Pane):
    """One line: ready, waiting for what, or roll back."""

    DEFAULT_CSS = "DecisionLine { height: 1; padding: 0 1; }"

    def draw(self, snapshot: Snapshot) -> Content:
        line, style = decision(snapshot)
        return Content.styled(line, style)


class GatesPane(Pane):
    """Every gate, failing first: a person at 3 a.m. reads the top lines only."""

    DEFAULT_CSS = "GatesPane { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }"

    def draw(self, snapshot: Snapshot) -> Content:
        lines = []
        for gate in sorted(snapshot.gates, key=lambda g: ORDER[g.verdict]):
            mark, mark_style = MARK[gate.verdict]
            lines.append(
                Content.assemble(
                    (mark, mark_style),
                    (f" {KIND[gate.kind]} ", "dim"),
                    gate.rule.text,
                    (f"  {gate.value_text or '-'}", "bold"),
                    (f"  {gate.reason}", "dim"),
                )
            )
        return Content("\n").join(lines)
