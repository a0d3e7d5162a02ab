"""Properties of rules: the parser never crashes, valid rules read back exactly, and
evaluation never raises nor passes a `for` rule over a failing point."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.core.catalog import Unit
from cockpit.core.durations import parse_duration
from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.quantities import base_number
from cockpit.core.rule_types import Evaluation, Op, Rule, RuleError
from cockpit.core.rules import evaluate, parse_rule

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one_line(message: str) -> bool:
    return bool(message) and len(message.splitlines()) == 1


def _parses_or_refuses(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleError as error:
        message = str(error)
    else:
        assert isinstance(rule, Rule)
        assert rule.metric.count(".") == 1
        assert math.isfinite(rule.threshold)
        assert rule.for_s is None or 0 < rule.for_s < math.inf
        return
    assert _one_line(message), repr(message)


# -- (a) no input crashes the parser -------------------------------------------------------

TOKENS = [
    "http.error_rate",
    "farms.p95",
    "cache.up",
    "my-api_2.p95",
    "a.b.c",
    ".x",
    "x.",
    "x",
    "improvement(",
    "improvement",
    "(",
    ")",
    "improvment(",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "=",
    "!",
    "=<",
    "≥",
    "≠",
    "0",
    "2",
    "-10",
    "+5",
    "0.1",
    ".5",
    "1.2.3",
    "9" * 400,
    "1e5",
    "%",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "sec",
    "for",
    "sfor",
    "msfor",
    "format",
    "5m",
    "1h30m",
    "0s",
    "5x",
    "-5m",
    "٥",
    "1h 30m",
    " ",
    "  ",
    "\t",
    "\n",
    "\u00a0",
    "\u2028",
    "",
    "é",
    "\x00",
    "'",
    '"',
    "\\",
]
token_text = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)), max_size=12).map(
    "".join
)
spaced_token_text = st.lists(st.sampled_from(TOKENS), max_size=10).map(" ".join)


@SETTINGS
@given(st.text())
def test_any_text_parses_or_is_refused_in_one_line(text: str) -> None:
    _parses_or_refuses(text)


@SETTINGS
@given(st.one_of(token_text, spaced_token_text))
def test_grammar_like_text_parses_or_is_refused_in_one_line(text: str) -> None:
    _parses_or_refuses(text)


# -- (b) valid rules read back exactly ----------------------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
name = st.text(alphabet=NAME_CHARS, min_size=1, max_size=12)
ws = st.sampled_from(["", " ", "  ", "\t"])
some_ws = st.sampled_from([" ", "  ", "\t", " \n "])
number_text = st.builds(
    lambda sign, whole, frac: f"{sign}{whole}{'.' + frac if frac else ''}",
    st.sampled_from(["", "-", "+"]),
    st.integers(0, 10**9).map(str),
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=4)),
)
duration_text = st.builds(
    lambda n, unit: f"{n}{unit}", st.integers(1, 10_000), st.sampled_from(["ms", "s", "m", "h"])
)


@st.composite
def written_rules(draw: st.DrawFn) -> tuple[str, str, Op, float, str | None, float | None, bool]:
    metric = f"{draw(name)}.{draw(name)}"
    improvement = draw(st.booleans())
    op = draw(st.sampled_from(list(Op)))
    number = draw(number_text)
    unit = "%" if improvement else draw(st.sampled_from([None, "%", "ms", "s", "m", "h"]))
    duration = draw(st.one_of(st.none(), duration_text))
    subject = f"improvement{draw(ws)}({draw(ws)}{metric}{draw(ws)})" if improvement else metric
    text = f"{draw(ws)}{subject}{draw(ws)}{op.value}{draw(ws)}{number}{draw(ws)}{unit or ''}"
    if duration is not None:
        text += f"{draw(some_ws)}for{draw(ws)}{duration}"
    text += draw(ws)
    threshold = base_number(float(number), unit)
    for_s = None if duration is None else parse_duration(duration)
    return text, metric, op, threshold, unit, for_s, improvement


@st.composite
def mutated_rules(draw: st.DrawFn) -> str:
    """A valid rule with a few slices replaced, so errors come from deep in the grammar."""
    text = draw(written_rules())[0]
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 4)))
        text = (
            text[:start]
            + draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=2)))
            + text[end:]
        )
    return text


@SETTINGS
@given(mutated_rules())
def test_mutated_rules_parse_or_are_refused_in_one_line(text: str) -> None:
    _parses_or_refuses(text)


@SETTINGS
@given(written_rules())
def test_valid_rules_read_back(
    written: tuple[str, str, Op, float, str | None, float | None, bool],
) -> None:
    text, metric, op, threshold, unit, for_s, improvement = written
    rule = parse_rule(text)
    assert rule == Rule(text.strip(), metric, op, threshold, unit, for_s, improvement)


# -- (c) evaluation never raises, and `for` never passes over a failing point -------------

NOW = 1_000_000.0
values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1000, 1000),
    st.sampled_from([0.0, 0.02, 0.5, 800.0]),
)
series = st.lists(
    st.tuples(st.floats(0, 120), values, st.sampled_from([None, "too few", "counter reset"])),
    max_size=60,
)
rules = st.builds(
    lambda op, threshold, for_s, improvement: Rule(
        "generated", "src.field", op, threshold, "%", for_s, improvement
    ),
    st.sampled_from(list(Op)),
    st.one_of(st.floats(-1000, 1000), st.sampled_from([0.0, 0.02, 0.4, 800.0])),
    st.one_of(st.none(), st.floats(0.5, 2000)),
    st.booleans(),
)
baselines = st.one_of(st.just({}), st.builds(lambda b: {"src.field": b}, st.floats(allow_nan=True)))


# Dense series near the threshold: failures inside a well-covered window are common here.
near_series = st.lists(
    st.tuples(
        st.integers(0, 8).map(float),
        st.sampled_from([None, 0.0, 0.01, 0.02, 0.02, 0.03, 0.03, 1.0]),
        st.just("too few"),
    ),
    min_size=15,
    max_size=40,
)
near_rules = st.builds(
    lambda op, threshold, for_s, improvement: Rule(
        "generated", "src.field", op, threshold, "%", for_s, improvement
    ),
    st.sampled_from(list(Op)),
    st.sampled_from([0.01, 0.02, -0.5]),
    st.integers(1, 120).map(float),
    st.booleans(),
)
near_baselines = st.sampled_from([{"src.field": 0.04}, {"src.field": 0.02}])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules,
    series,
    baselines,
    st.floats(0.5, 300),
    st.floats(-50, 2500),
    st.sampled_from([None, True, False]),
    st.sampled_from(list(Unit)),
)
def test_evaluation_never_raises_nor_passes_over_a_failure(
    rule: Rule,
    steps: list[tuple[float, float | None, str | None]],
    baseline: dict[str, float],
    stale_after: float,
    after_last: float,
    up: bool | None,
    unit: Unit,
) -> None:
    _check_evaluation(rule, steps, baseline, stale_after, after_last, up, unit)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_rules, near_series, near_baselines, st.floats(10, 30), st.floats(0, 10))
def test_for_never_passes_over_a_failure_near_the_threshold(
    rule: Rule,
    steps: list[tuple[float, float | None, str | None]],
    baseline: dict[str, float],
    stale_after: float,
    after_last: float,
) -> None:
    _check_evaluation(rule, steps, baseline, stale_after, after_last, True, Unit.RATIO)


def _check_evaluation(
    rule: Rule,
    steps: list[tuple[float, float | None, str | None]],
    baseline: dict[str, float],
    stale_after: float,
    after_last: float,
    up: bool | None,
    unit: Unit,
) -> None:
    store = MetricStore(default_stale_after=stale_after)
    store.set_source("src", SourceStatus(up=up, error="refused" if up is False else None))
    t = NOW
    for gap, value, reason in steps:
        t += gap
        store.record("src.field", t, value, reason)
    now = t + after_last

    got = evaluate(rule, store, baseline, now, unit=unit, held_word="breaching")

    assert isinstance(got, Evaluation)
    assert _one_line(got.reason), repr(got.reason)
    if got.holds is not True:
        return
    base = baseline.get("src.field")

    def passes(value: float) -> bool:
        measured = (base - value) / base if rule.improvement and base else value
        return rule.op.holds(measured, rule.threshold)

    latest = store.point_at("src.field", now)
    assert latest is not None
    assert latest.value is not None
    assert passes(latest.value)
    if rule.for_s is not None:
        for point in store.points("src.field", since=now - rule.for_s, until=now):
            assert point.value is None or passes(point.value), point
