"""The shapes of rules and their evaluations (parsing and evaluating live in `rules`)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class RuleError(ValueError):
    """A rule that cannot be read or does not fit the config; the message is one line."""


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def holds(self, left: float, right: float) -> bool:
        return _OPS[self](left, right)


_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


@dataclass(frozen=True)
class Rule:
    """`<metric> <op> <number>[unit] [for <duration>]` or `improvement(<metric>) <op> <n>%`.

    `threshold` is in the metric's base unit: milliseconds for times, a fraction for
    percentages (2% -> 0.02), the plain number otherwise. `unit` is the unit as written.
    """

    text: str
    metric: str
    op: Op
    threshold: float
    unit: str | None
    for_s: float | None = None
    improvement: bool = False

    @property
    def subject(self) -> str:
        """What the rule measures, as written: `farms.p95` or `improvement(farms.p95)`."""
        return f"improvement({self.metric})" if self.improvement else self.metric


@dataclass(frozen=True)
class Evaluation:
    """Whether a rule's condition holds now: True, False, or None when it cannot be known.

    `value` is the measured value in base units (the improvement fraction for improvement
    rules); `reason` is a line a person can read, e.g. "2.4% > 2%, breaching 3m12s of 5m",
    "stale 14s", "12 samples < 20 needed", "source down: connection refused".
    """

    holds: bool | None
    value: float | None
    reason: str
