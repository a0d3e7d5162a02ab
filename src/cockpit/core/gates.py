"""Gates: the plan's rules judged against the metrics, as three-valued verdicts with reasons.

A success rule passes when its condition holds; a failure or auto-rollback rule fails when
its condition holds (sustained, for `for` rules). UNKNOWN never counts as PASS: an advance is
blocked by a success rule that is not PASS and by a failure or auto-rollback rule that is not
PASS (a failure criterion we cannot judge is not a criterion we know to be clear).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cockpit.core.catalog import Unit
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan
from cockpit.core.quantities import format_value
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.rule_types import Evaluation, Rule
from cockpit.core.rules import evaluate
from cockpit.core.verdict import Verdict


class GateKind(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    AUTO_ROLLBACK = "auto_rollback"


@dataclass(frozen=True)
class GateResult:
    phase: int  # the phase the rule belongs to; 0 for preflight rules
    kind: GateKind
    rule: Rule
    verdict: Verdict
    value: float | None  # base units; the improvement fraction for improvement rules
    value_text: str | None  # the value for people, e.g. "2.4%", "812ms"
    reason: str

    @property
    def blocks_advance(self) -> bool:
        return self.verdict is not Verdict.PASS


def effective_baseline(plan: Plan, state: RolloutState) -> dict[str, float]:
    """Configured baseline, overridden metric by metric by a captured one."""
    merged = dict(plan.baseline)
    if state.baseline is not None:
        merged.update(state.baseline.values)
    return merged


def gate_phase(plan: Plan, state: RolloutState) -> int:
    """Whose success/failure rules apply now: preflight (0) before phase 1, else the phase."""
    if state.status is Status.PENDING:
        return 0
    return min(max(state.phase, 1), len(plan.phases))


def judge(
    kind: GateKind,
    phase: int,
    rule: Rule,
    store: MetricStore,
    baseline: Mapping[str, float],
    now: float,
    unit: Unit,
) -> GateResult:
    held_word = "held" if kind is GateKind.SUCCESS else "breaching"
    evaluation = evaluate(rule, store, baseline, now, unit=unit, held_word=held_word)
    shown_unit = Unit.RATIO if rule.improvement else unit
    return GateResult(
        phase=phase,
        kind=kind,
        rule=rule,
        verdict=_verdict(kind, evaluation),
        value=evaluation.value,
        value_text=None if evaluation.value is None else format_value(evaluation.value, shown_unit),
        reason=evaluation.reason,
    )


def _verdict(kind: GateKind, evaluation: Evaluation) -> Verdict:
    if evaluation.holds is None:
        return Verdict.UNKNOWN
    good = evaluation.holds if kind is GateKind.SUCCESS else not evaluation.holds
    return Verdict.PASS if good else Verdict.FAIL


def evaluate_gates(
    plan: Plan, state: RolloutState, store: MetricStore, now: float
) -> list[GateResult]:
    """Every rule that matters now: the current phase's (or preflight's) and the auto triggers."""
    baseline = effective_baseline(plan, state)
    phase = gate_phase(plan, state)
    rules: list[tuple[GateKind, Rule]] = []
    if phase == 0:
        rules += [(GateKind.SUCCESS, r) for r in plan.preflight_rules]
    else:
        current = plan.phases[phase - 1]
        rules += [(GateKind.SUCCESS, r) for r in current.success]
        rules += [(GateKind.FAILURE, r) for r in current.failure]
    if plan.auto_rollback is not None:
        rules += [(GateKind.AUTO_ROLLBACK, r) for r in plan.auto_rollback.when]
    results = []
    for kind, rule in rules:
        unit = plan.catalog.unit(rule.metric) or Unit.NUMBER
        results.append(judge(kind, phase, rule, store, baseline, now, unit))
    return results


def gate_blockers(results: list[GateResult]) -> list[str]:
    """Readable lines for every gate that stands in the way of an advance."""
    lines = []
    for result in results:
        if not result.blocks_advance:
            continue
        label = {
            GateKind.SUCCESS: "not met",
            GateKind.FAILURE: "failure criterion",
            GateKind.AUTO_ROLLBACK: "rollback trigger",
        }[result.kind]
        state = "unknown" if result.verdict is Verdict.UNKNOWN else result.verdict.value
        lines.append(f"{label} ({state}): {result.rule.text}: {result.reason}")
    return lines
