"""Rules: "http.error_rate > 2% for 5m" -> Rule; does it hold now, and why (three-valued).

Parsing never raises anything but RuleError, with one line a person can act on. `check_rule`
fits a parsed rule to the metrics the config can produce. `evaluate` judges a rule against the
metric store at an injected `now`: True, False, or None (unknown), always with a reason.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence

from cockpit.core.catalog import Catalog, Unit
from cockpit.core.durations import DurationError, format_duration, parse_duration
from cockpit.core.metrics.store import MetricStore
from cockpit.core.quantities import (
    NUMBER,
    TIME_UNITS_MS,
    base_number,
    format_threshold,
    format_value,
    number_text,
    percent_hint,
    quote,
    time_hint,
    written_number,
)
from cockpit.core.rule_types import Evaluation, Op, Rule, RuleError

OPERATORS = "< <= > >= == !="
_OPS_LONGEST_FIRST = (Op.LE, Op.GE, Op.EQ, Op.NE, Op.LT, Op.GT)
_NEAR_OPS = {"=<": "<=", "=>": ">=", "=": "==", "!": "!=", "≤": "<=", "≥": ">=", "≠": "!="}
_WS = re.compile(r"\s*")
_NAME = re.compile(r"[A-Za-z0-9_.-]*", re.ASCII)
_WS_PAREN = re.compile(r"\s*\(")
_WORD = re.compile(r"[A-Za-z]*", re.ASCII)
_NUM = re.compile(NUMBER, re.ASCII)
_IMPROVEMENT = re.compile(r"improvement\s*\(")
_DURATION_TEXT = re.compile(r"[0-9a-z.\s]+", re.ASCII)
_COVERAGE_NEEDED = 0.8  # `for D` needs data over at least this share of D


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def take(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def peek(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        return match.group() if match else ""

    @property
    def rest(self) -> str:
        return self.text[self.pos :].strip()

    @property
    def written(self) -> str:
        """Everything read so far, for "after ..." in messages."""
        return self.text[: self.pos].strip()


def parse_rule(text: str) -> Rule:
    """Read `<metric> <op> <number>[unit] [for <duration>]` or the improvement() form."""
    if not isinstance(text, str):
        raise RuleError("a rule is text, e.g. 'http.error_rate > 2%'")
    s = _Scanner(text)
    s.skip_ws()
    if not s.rest:
        raise RuleError("empty rule: write e.g. 'http.error_rate > 2%'")
    improvement = bool(s.take(_IMPROVEMENT))
    s.skip_ws()
    metric = _metric(s, improvement)
    s.skip_ws()
    if improvement:
        if not s.text.startswith(")", s.pos):
            raise RuleError(f"expected ')' after {quote(s.written)}")
        s.pos += 1
        s.skip_ws()
    op = _operator(s)
    s.skip_ws()
    written_number = s.take(_NUM)
    if not written_number:
        got = f", got {quote(s.rest)}" if s.rest else ""
        raise RuleError(f"expected a number after {quote(s.written)}{got}")
    number = float(written_number)
    if not math.isfinite(number):
        raise RuleError(f"number {quote(written_number)} is too large")
    unit = _unit(s)
    for_s = _for_clause(s)
    if improvement and unit != "%" and not (unit is None and number == 0):
        raise RuleError(f"improvement() takes a percentage: write {percent_hint(number)}")
    threshold = base_number(number, unit)
    return Rule(text.strip(), metric, op, threshold, unit, for_s, improvement)


def _metric(s: _Scanner, improvement: bool) -> str:
    name = s.take(_NAME)
    after = s.text[s.pos] if s.pos < len(s.text) else ""
    if after.isalnum():
        raise RuleError(
            f"unexpected {quote(after)} in metric name {quote(name + after)}: "
            "use letters, digits, '_' and '-'"
        )
    if not name:
        if improvement:
            raise RuleError("improvement() needs a metric: write improvement(farms.p95)")
        raise RuleError(f"expected a metric name like 'http.error_rate', got {quote(s.rest)}")
    if s.peek(_WS_PAREN):
        if name == "improvement" or improvement:
            raise RuleError("improvement() takes a metric name, e.g. improvement(farms.p95)")
        close = difflib.get_close_matches(name, ["improvement"], n=1, cutoff=0.6)
        hint = "did you mean 'improvement'?" if close else "only improvement(<metric>) exists"
        raise RuleError(f"unknown function {quote(name)}: {hint}")
    dots = name.count(".")
    if dots == 0:
        raise RuleError(
            f"metric {quote(name)} needs a source: write <source>.<field>, e.g. http.error_rate"
        )
    if dots > 1:
        raise RuleError(f"metric {quote(name)} has {dots} dots: write <source>.<field>")
    source, field = name.split(".")
    if not source:
        raise RuleError(f"metric {quote(name)} needs a source before the dot")
    if not field:
        raise RuleError(f"metric {quote(name)} needs a field after the dot")
    return name


def _operator(s: _Scanner) -> Op:
    for op in _OPS_LONGEST_FIRST:
        if s.text.startswith(op.value, s.pos):
            s.pos += len(op.value)
            return op
    message = f"expected an operator ({OPERATORS}) after {quote(s.written)}"
    for near, meant in _NEAR_OPS.items():
        if s.text.startswith(near, s.pos):
            raise RuleError(f"{message}: did you mean {quote(meant)}?")
    raise RuleError(message)


def _unit(s: _Scanner) -> str | None:
    s.skip_ws()
    if s.text.startswith("%", s.pos):
        s.pos += 1
        return "%"
    word = s.peek(_WORD)
    if word.endswith("for") and word[:-3] in TIME_UNITS_MS:  # "2sfor 5m"
        s.pos += len(word) - 3
        return word[:-3]
    if word in TIME_UNITS_MS:
        s.pos += len(word)
        return word
    if word and word != "for":
        raise RuleError(
            f"unknown unit {quote(word)} after {quote(s.written)}: use %, ms, s, m or h"
        )
    return None


def _for_clause(s: _Scanner) -> float | None:
    s.skip_ws()
    if not s.rest:
        return None
    if s.peek(_WORD) != "for":
        raise RuleError(
            f"unexpected {quote(s.rest)} after {quote(s.written)}: only 'for <duration>' may follow"
        )
    s.pos += 3
    written = s.rest
    if not written:
        raise RuleError("expected a duration after 'for', e.g. 5m")
    try:
        if not _DURATION_TEXT.fullmatch(written):
            raise DurationError(written)
        seconds = parse_duration(" ".join(written.split()))
    except (DurationError, ValueError, OverflowError):
        raise RuleError(
            f"bad duration {quote(written)} after 'for': use e.g. 30s, 5m or 1h30m"
        ) from None
    if not math.isfinite(seconds):
        raise RuleError(f"duration {quote(written)} after 'for' is too long")
    if seconds <= 0:
        raise RuleError(f"'for' needs a duration above 0, got {quote(written)}")
    return seconds


def check_rule(rule: Rule, catalog: Catalog) -> None:
    """Refuse a rule whose metric the config cannot produce or whose unit does not fit it."""
    unit = catalog.unit(rule.metric)
    if unit is None:
        close = catalog.suggest(rule.metric)
        hint = f" (did you mean {quote(close)}?)" if close else ""
        raise RuleError(f"unknown metric {quote(rule.metric)}{hint}")
    bare_zero = rule.unit is None and rule.threshold == 0
    if bare_zero:
        return  # "== 0" is clear in any unit
    written = written_number(rule.threshold, rule.unit)
    if rule.improvement:
        if rule.unit != "%":
            raise RuleError(f"improvement() takes a percentage: write {percent_hint(written)}")
        return
    if unit is Unit.MS:
        if rule.unit is None:
            raise RuleError(f"{rule.metric} is a time: {time_hint(written)}")
        if rule.unit not in TIME_UNITS_MS:
            raise RuleError(
                f"{rule.metric} is a time, not {quote(rule.unit)}: {time_hint(written)}"
            )
    elif unit is Unit.RATIO:
        if rule.unit is None:
            raise RuleError(f"{rule.metric} is a percentage: write {percent_hint(written)}")
        if rule.unit != "%":
            hint = f"write {number_text(written)}%"
            raise RuleError(f"{rule.metric} is a percentage, not {quote(rule.unit)}: {hint}")
    elif rule.unit is not None:
        raise RuleError(f"{rule.metric} takes a plain number, not {quote(rule.unit)}")


def evaluate(
    rule: Rule,
    store: MetricStore,
    baseline: Mapping[str, float],
    now: float,
    *,
    unit: Unit,
    held_word: str = "held",
) -> Evaluation:
    """Whether `rule` holds at `now`, from the points the store has up to `now`.

    `unit` is the metric's unit (for showing values); `held_word` names a run in the reason
    ("held 3m12s of 5m", or "breaching ..." for rollback triggers). The value is the latest
    value (the improvement fraction for improvement rules), also when it is too old to judge.
    """
    metric = rule.metric
    base: float | None = None
    if rule.improvement:
        base = baseline.get(metric)
        if base is None or math.isnan(base):
            return Evaluation(None, None, f"no baseline for {metric}")
        if base == 0 or not math.isfinite(base):
            return Evaluation(None, None, f"baseline for {metric} is {number_text(base)}")
    measure = _measure(base)
    latest = store.point_at(metric, now)
    value = None if latest is None or latest.value is None else measure(latest.value)

    source, _, field = metric.partition(".")
    status = store.source(source)
    if status.up is False and field != "up":
        return Evaluation(None, value, f"source down: {status.error or 'no reason given'}")
    if latest is None:
        return Evaluation(None, None, "no data")
    stale_after = store.stale_after(metric)
    age = now - latest.t
    if age > stale_after:
        return Evaluation(None, value, f"stale {format_duration(age)}")
    if value is None:
        return Evaluation(None, None, latest.reason or "no value")

    passes = rule.op.holds
    threshold = rule.threshold
    holds_now = passes(value, threshold)
    said = _describe(rule, value, holds_now, unit)
    duration = rule.for_s
    if duration is None or not 0 < duration < math.inf:  # not a `for` rule (or a broken one)
        return Evaluation(holds_now, value, said)
    if not holds_now:
        return Evaluation(False, value, said)

    start = now - duration
    times, values = store.window(metric, since=start, until=now)
    if not _all_pass(rule.op, _measured(values, base), threshold):
        for i in range(len(values) - 1, -1, -1):
            v = values[i]
            if v is not None and not passes(measure(v), threshold):
                # the latest point holds, so another follows this one
                run = now - times[i + 1]
                return Evaluation(False, value, _held(said, held_word, run, duration))

    before = store.point_before(metric, start)
    if before is None or (
        before.value is not None and not passes(measure(before.value), threshold)
    ):
        run_start = times[0]  # the run began inside the window
        if now - run_start < duration:
            return Evaluation(False, value, _held(said, held_word, now - run_start, duration))
    covered = store.coverage(metric, start, now)
    if covered >= _COVERAGE_NEEDED * duration - 1e-9:
        return Evaluation(True, value, f"{said} for {format_duration(duration)}")
    share = math.floor(100 * covered / duration)
    return Evaluation(None, value, f"data covers {share}% of the last {format_duration(duration)}")


def _measure(base: float | None) -> Callable[[float], float]:
    """What a rule compares: the value itself, or its improvement over the baseline."""
    if base is None:
        return lambda v: v
    return lambda v: (base - v) / base


def _measured(values: Sequence[float | None], base: float | None) -> list[float]:
    """`_measure` over the known values, as one comprehension (this is the hot loop)."""
    if base is None:
        return [v for v in values if v is not None]
    return [(base - v) / base for v in values if v is not None]


def _all_pass(op: Op, measured: list[float], threshold: float) -> bool:
    """Whether `measured <op> threshold` for every value, with C-speed builtins."""
    if not measured:
        return True
    if op is Op.LT:
        return max(measured) < threshold
    if op is Op.LE:
        return max(measured) <= threshold
    if op is Op.GT:
        return min(measured) > threshold
    if op is Op.GE:
        return min(measured) >= threshold
    if op is Op.EQ:
        return measured.count(threshold) == len(measured)
    return threshold not in measured


def _describe(rule: Rule, value: float, holds: bool, unit: Unit) -> str:
    """ "2.4% > 2%" or "0.3% not > 2%"; more digits when rounding would hide the difference."""
    shown_unit = Unit.RATIO if rule.improvement else unit
    shown = format_value(value, shown_unit)
    if value != rule.threshold and shown == format_value(rule.threshold, shown_unit):
        shown = format_value(value, shown_unit, precise=True)
    prefix = "improvement " if rule.improvement else ""
    negation = "" if holds else "not "
    return f"{prefix}{shown} {negation}{rule.op.value} {format_threshold(rule)}"


def _held(said: str, held_word: str, run: float, duration: float) -> str:
    return f"{said}, {held_word} {format_duration(run)} of {format_duration(duration)}"
