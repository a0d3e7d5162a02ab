"""The words of a notification: the event names and how they read, the one-line message for
Slack (escaped) and the webhook, gate results as plain data, and the periodic summary with the
clock that says when it is due.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cockpit.core.durations import format_duration
from cockpit.core.gates import GateResult
from cockpit.core.snapshot import Snapshot
from cockpit.core.verdict import Verdict

# What the rest of the cockpit sends (the `event` field of the generic webhook).
PHASE_CHANGE = "phase_change"
HOLD = "hold"
RESUME = "resume"
AUTO_ROLLBACK_ARMED = "auto_rollback_armed"
AUTO_ROLLBACK_CANCELLED = "auto_rollback_cancelled"
AUTO_ROLLBACK_FIRED = "auto_rollback_fired"
ROLLBACK_STARTED = "rollback_started"
ROLLBACK_FINISHED = "rollback_finished"
ROLLBACK_FAILED = "rollback_failed"
SUMMARY = "summary"

EVENTS: tuple[str, ...] = (PHASE_CHANGE, HOLD, RESUME, AUTO_ROLLBACK_ARMED, AUTO_ROLLBACK_CANCELLED)
EVENTS += (AUTO_ROLLBACK_FIRED, ROLLBACK_STARTED, ROLLBACK_FINISHED, ROLLBACK_FAILED, SUMMARY)
_LOUD = frozenset({AUTO_ROLLBACK_ARMED, AUTO_ROLLBACK_FIRED, ROLLBACK_FAILED})


def event_label(event: str) -> str:
    """How an event reads in the Slack line: `advance`, `AUTO-ROLLBACK FIRED`, `resume`."""
    if event == PHASE_CHANGE:
        return "advance"
    label = event.replace("auto_rollback", "auto-rollback").replace("_", " ")
    return label.upper() if event in _LOUD else label


def phase_label(phase: int, percent: int, phases: Sequence[str] = ()) -> str:
    """`phase 2/3 Partial 50%`; `pre-flight 0%` before phase 1; `phase 2 50%` without names."""
    if phase <= 0:
        return f"pre-flight {percent}%"
    if phase <= len(phases):
        return f"phase {phase}/{len(phases)} {phases[phase - 1]} {percent}%"
    return f"phase {phase} {percent}%"


def event_line(record: Mapping[str, Any], phases: Sequence[str] = ()) -> str:
    """One readable line from a webhook record: `[rollout] phase 2/3 Partial 50%: advance by
    alice — why | failing: <rule> (<reason>)`; a summary reads `[rollout] summary: <text>`."""
    event, reason, operator = record["event"], record["reason"], record["operator"]
    if event == SUMMARY:
        line = f"[{record['rollout']}] summary: {reason}"
    else:
        where = phase_label(record["phase"], record["percent"], phases)
        line = f"[{record['rollout']}] {where}: {event_label(event)}"
        line += f" by {operator}" if operator else ""
        line += f" — {reason}" if reason else ""
    failing = [g for g in record["gates"] if str(g.get("verdict")) == Verdict.FAIL.value]
    if failing:
        line += " | failing: " + "; ".join(_gate_text(g) for g in failing)
    return " ".join(line.split())  # one line, whatever the reason contained


def _gate_text(gate: Mapping[str, object]) -> str:
    rule, reason = gate.get("rule", "?"), gate.get("reason")
    return f"{rule} ({reason})" if reason else str(rule)


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup; these three (and only these) must be escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def gate_verdicts(results: Iterable[GateResult]) -> list[dict[str, object]]:
    """Gate results as the plain mappings `send` takes (and the webhook carries)."""
    return [
        {
            "phase": r.phase,
            "kind": r.kind.value,
            "rule": r.rule.text,
            "verdict": r.verdict.value,
            "value": r.value,
            "value_text": r.value_text,
            "reason": r.reason,
        }
        for r in results
    ]


def summary_text(snapshot: Snapshot) -> str:
    """The periodic summary: where we are, how long vs the bake, gate counts, blockers."""
    state, plan = snapshot.state, snapshot.plan
    count = len(plan.phases)
    where = snapshot.phase_name
    if 1 <= state.phase <= count:
        where = f"phase {state.phase}/{count} {where}"
    head = f"{where} at {snapshot.traffic}% traffic, {state.status.value}"
    if state.hold_reason:
        head += f" ({state.hold_reason})"
    parts = [head]
    phase = plan.phase(state.phase)
    if phase is not None and state.phase_entered_at is not None:
        in_phase = format_duration(snapshot.taken_at - state.phase_entered_at)
        parts.append(f"{in_phase} in phase of {format_duration(phase.bake_s)} bake")
    verdicts = Counter(g.verdict for g in snapshot.gates)
    parts.append(
        f"gates {verdicts[Verdict.PASS]} pass, {verdicts[Verdict.FAIL]} fail, "
        f"{verdicts[Verdict.UNKNOWN]} unknown"
    )
    blockers = len(snapshot.blockers)
    parts.append("no blockers" if not blockers else f"{blockers} blocker" + "s" * (blockers > 1))
    return "; ".join(parts)


class SummaryClock:
    """When the next periodic summary is due: `every_s` after the last one (or after start).

    A suspended cockpit sends one summary when it wakes, not the ones it missed; a clock that
    went backwards restarts the period instead of silencing summaries until it catches up.
    """

    def __init__(self, every_s: float, clock: Callable[[], float] = time.time) -> None:
        self.every_s = every_s
        self._last = clock()

    def due(self, now: float) -> bool:
        if not (math.isfinite(self.every_s) and self.every_s > 0):
            return False  # summaries are off
        if now < self._last:
            self._last = now
        return now - self._last >= self.every_s

    def sent(self, now: float) -> None:
        self._last = now
