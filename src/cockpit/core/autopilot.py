"""Automatic rollback: arm on a sustained FAIL, count down, fire once; UNKNOWN never fires.

Pure decisions from (state, gate verdicts, now); the engine carries them out. Every cockpit
watching the same state file arms on its own; firing is an AutoRollback event committed by
compare-and-swap, so exactly one of them wins and acts, and the others see it happen.
A cancellation lives in the state file (`auto_cancelled`), so it holds for every cockpit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cockpit.core.durations import format_duration
from cockpit.core.gates import GateKind, GateResult
from cockpit.core.plan import Plan
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.verdict import Verdict

WATCHED = (Status.RUNNING, Status.HOLDING, Status.COMPLETE)


@dataclass(frozen=True)
class Armed:
    rule: str
    why: str  # "http.error_rate > 2% for 5m: 2.4% > 2% for 5m"
    armed_at: float
    fire_at: float

    def left_s(self, now: float) -> float:
        return max(0.0, self.fire_at - now)


@dataclass(frozen=True)
class Arm:
    armed: Armed


@dataclass(frozen=True)
class Disarm:
    rule: str
    why: str  # "trigger cleared", "cancelled by alice: ...", "rollout is rolled_back"


@dataclass(frozen=True)
class Fire:
    method: str
    reason: str


@dataclass(frozen=True)
class Blind:
    """A trigger has been UNKNOWN for longer than `unknown_for`: do what `on_unknown` says."""

    action: str  # hold | page | rollback
    rule: str
    reason: str


Decision = Arm | Disarm | Fire | Blind


@dataclass
class AutoPilot:
    plan: Plan
    armed: Armed | None = None
    unknown_since: dict[str, float] = field(default_factory=dict)
    blind_done: set[str] = field(default_factory=set)

    def step(self, state: RolloutState, gates: Sequence[GateResult], now: float) -> list[Decision]:
        auto = self.plan.auto_rollback
        if auto is None:
            return []
        triggers = [g for g in gates if g.kind is GateKind.AUTO_ROLLBACK]
        if state.status not in WATCHED:
            self.unknown_since.clear()
            self.blind_done.clear()
            return self._disarm(f"rollout is {state.status.value}")
        decisions: list[Decision] = []
        decisions += self._track_unknown(triggers, now)
        failing = [
            g for g in triggers if g.verdict is Verdict.FAIL and not _cancelled(state, g, now)
        ]
        if self.armed is not None:
            still = next((g for g in failing if g.rule.text == self.armed.rule), None)
            if still is None:
                cancel = state.auto_cancelled.get(self.armed.rule)
                gate = next((g for g in triggers if g.rule.text == self.armed.rule), None)
                why = "trigger cleared"
                if gate is not None and gate.verdict is Verdict.UNKNOWN:
                    why = f"trigger unknown: {gate.reason}"  # not known healthy: not "cleared"
                if cancel is not None and cancel.until > now:
                    why = f"cancelled by {cancel.by}: {cancel.reason}"
                return decisions + self._disarm(why)
            if now >= self.armed.fire_at:
                fired = self.armed
                self.armed = None
                return [*decisions, Fire(auto.method, f"automatic: {fired.why}")]
            return decisions
        if failing:
            first = failing[0]
            self.armed = Armed(
                rule=first.rule.text,
                why=f"{first.rule.text}: {first.reason}",
                armed_at=now,
                fire_at=now + auto.grace_s,
            )
            decisions.append(Arm(self.armed))
        return decisions

    def _disarm(self, why: str) -> list[Decision]:
        if self.armed is None:
            return []
        rule, self.armed = self.armed.rule, None
        return [Disarm(rule, why)]

    def _track_unknown(self, triggers: Sequence[GateResult], now: float) -> list[Decision]:
        auto = self.plan.auto_rollback
        assert auto is not None
        decisions: list[Decision] = []
        for gate in triggers:
            rule = gate.rule.text
            if gate.verdict is not Verdict.UNKNOWN:
                self.unknown_since.pop(rule, None)
                self.blind_done.discard(rule)
                continue
            since = self.unknown_since.setdefault(rule, now)
            if now - since >= auto.unknown_for_s and rule not in self.blind_done:
                self.blind_done.add(rule)
                blind_for = format_duration(now - since)
                reason = f"monitoring blind: {rule} unknown for {blind_for} ({gate.reason})"
                decisions.append(Blind(auto.on_unknown, rule, reason))
        return decisions


def _cancelled(state: RolloutState, gate: GateResult, now: float) -> bool:
    cancel = state.auto_cancelled.get(gate.rule.text)
    return cancel is not None and cancel.until > now
