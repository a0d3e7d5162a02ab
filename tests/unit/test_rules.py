"""Rules: parsing, fitting to the catalog, and three-valued evaluation with reasons."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from cockpit.core.catalog import Catalog, Unit, source_fields
from cockpit.core.metrics.store import MetricStore, Point, SourceStatus
from cockpit.core.rule_types import Evaluation, Op, Rule, RuleError
from cockpit.core.rules import check_rule, evaluate, parse_rule

# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(Op))
def test_every_operator(op: Op) -> None:
    rule = parse_rule(f"http.error_rate {op.value} 2%")
    assert rule == Rule(f"http.error_rate {op.value} 2%", "http.error_rate", op, 0.02, "%")


@pytest.mark.parametrize(
    ("written", "threshold", "unit"),
    [("2%", 0.02, "%"), ("0.1%", 0.001, "%"), ("250ms", 250.0, "ms"), ("2s", 2000.0, "s"),
     ("1.5m", 90_000.0, "m"), ("2h", 7_200_000.0, "h"), ("500", 500.0, None), ("0", 0.0, None),
     (".5", 0.5, None), ("-5", -5.0, None), ("+5", 5.0, None), ("2 %", 0.02, "%"),
     ("300 ms", 300.0, "ms")],
)  # fmt: skip
def test_units_convert_to_base(written: str, threshold: float, unit: str | None) -> None:
    rule = parse_rule(f"farms.p95 < {written}")
    assert rule.threshold == pytest.approx(threshold)
    assert rule.unit == unit


@pytest.mark.parametrize(
    "text",
    ["http.error_rate > 2% for 5m", "http.error_rate>2%for 5m", "http.error_rate>2% for5m",
     "  http.error_rate   >   2 %   for   5m  ", "http.error_rate\t>\t2%\tfor\t5m",
     "http.error_rate\n> 2%\nfor 5m", "http.error_rate >\u00a02% for 5m"],
)  # fmt: skip
def test_whitespace_is_tolerated(text: str) -> None:
    rule = parse_rule(text)
    expected = ("http.error_rate", Op.GT, 0.02, "%", 300.0)
    assert (rule.metric, rule.op, rule.threshold, rule.unit, rule.for_s) == expected
    assert rule.text == text.strip()


def test_for_durations() -> None:
    assert parse_rule("db.up == 0 for 1m").for_s == 60.0
    assert parse_rule("db.up == 0 for 90s").for_s == 90.0
    assert parse_rule("db.up == 0 for 1h30m").for_s == 5400.0
    assert parse_rule("db.up == 0 for 1h 30m").for_s == 5400.0
    assert parse_rule("db.up == 0 for 1h\t30m").for_s == 5400.0
    assert parse_rule("db.up == 0 for 250ms").for_s == 0.25
    assert parse_rule("http.p95 > 2sfor 10m") == Rule(
        "http.p95 > 2sfor 10m", "http.p95", Op.GT, 2000.0, "s", 600.0
    )
    assert parse_rule("db.up == 0").for_s is None


def test_improvement_rules() -> None:
    rule = parse_rule("improvement(farms.p95) >= 40%")
    assert rule == Rule("improvement(farms.p95) >= 40%", "farms.p95", Op.GE, 0.4, "%", None, True)
    assert rule.subject == "improvement(farms.p95)"
    spaced = parse_rule(" improvement ( farms.p95 ) >= -10% for 1h ")
    expected = ("farms.p95", -0.1, 3600.0, True)
    assert (spaced.metric, spaced.threshold, spaced.for_s, spaced.improvement) == expected
    assert parse_rule("improvement(farms.p95) >= 0").threshold == 0.0


def test_metric_names_and_subject() -> None:
    rule = parse_rule("my-api_2.p95 < 1s")
    assert rule.metric == "my-api_2.p95"
    assert rule.subject == "my-api_2.p95"
    assert parse_rule("improvement.p95 < 1s").metric == "improvement.p95"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty rule: write e.g. 'http.error_rate > 2%'"),
        ("   ", "empty rule: write e.g. 'http.error_rate > 2%'"),
        ("http.error_rate", "expected an operator (< <= > >= == !=) after 'http.error_rate'"),
        ("http.error_rate 2%", "expected an operator (< <= > >= == !=) after 'http.error_rate'"),
        (
            "http.error_rate = 2%",
            "expected an operator (< <= > >= == !=) after 'http.error_rate': did you mean '=='?",
        ),
        ("x.y =< 2", "expected an operator (< <= > >= == !=) after 'x.y': did you mean '<='?"),
        ("x.y ≥ 2", "expected an operator (< <= > >= == !=) after 'x.y': did you mean '>='?"),
        ("x.y ! 2", "expected an operator (< <= > >= == !=) after 'x.y': did you mean '!='?"),
        (
            "improvement(x.y) 40%",
            "expected an operator (< <= > >= == !=) after 'improvement(x.y)'",
        ),
        ("x.y >", "expected a number after 'x.y >'"),
        ("x.y > farms.p95", "expected a number after 'x.y >', got 'farms.p95'"),
        ("x.y > 2 sec", "unknown unit 'sec' after 'x.y > 2': use %, ms, s, m or h"),
        ("x.y > 1e5", "unknown unit 'e' after 'x.y > 1': use %, ms, s, m or h"),
        ("x.y > 2% for 5x", "bad duration '5x' after 'for': use e.g. 30s, 5m or 1h30m"),
        ("x.y > 2% for -5m", "bad duration '-5m' after 'for': use e.g. 30s, 5m or 1h30m"),
        ("x.y > 2% for ٥m", "bad duration '٥m' after 'for': use e.g. 30s, 5m or 1h30m"),
        ("x.y > 2% for", "expected a duration after 'for', e.g. 5m"),
        ("x.y > 2% for 0s", "'for' needs a duration above 0, got '0s'"),
        ("x.y > 2% for 9999999999" + "9" * 400 + "h", "bad duration '9999999999"),
        ("x.y > 2% and z.w < 1", "unexpected 'and z.w < 1' after 'x.y > 2%': only 'for"),
        ("x.y > 2% format", "unexpected 'format' after 'x.y > 2%': only 'for <duration>'"),
        ("x.y > 1.2.3", "unexpected '.3' after 'x.y > 1.2': only 'for <duration>' may follow"),
        ("improvement(farms.p95) >= 40", "improvement() takes a percentage: write 40%"),
        ("improvement(farms.p95) >= 0.4", "improvement() takes a percentage: write 40%"),
        ("improvement(farms.p95) >= 40ms", "improvement() takes a percentage: write 40%"),
        ("improvement(farms.p95 >= 40%", "expected ')' after 'improvement(farms.p95'"),
        ("improvement() >= 40%", "improvement() needs a metric: write improvement(farms.p95)"),
        ("improvement(improvement(x.y)) > 1%", "improvement() takes a metric name, e.g."),
        ("improvment(x.y) > 4%", "unknown function 'improvment': did you mean 'improvement'?"),
        ("max(x.y) > 4", "unknown function 'max': only improvement(<metric>) exists"),
        ("error_rate > 2%", "metric 'error_rate' needs a source: write <source>.<field>, e.g."),
        ("a.b.c > 1", "metric 'a.b.c' has 2 dots: write <source>.<field>"),
        (".p95 > 1", "metric '.p95' needs a source before the dot"),
        ("farms. > 1", "metric 'farms.' needs a field after the dot"),
        ("> 2%", "expected a metric name like 'http.error_rate', got '> 2%'"),
        (
            "http.érr > 1",
            "unexpected 'é' in metric name 'http.é': use letters, digits, '_' and '-'",
        ),
        ("x.y > " + "9" * 400, "number '" + "9" * 39 + "…' is too large"),
    ],
)
def test_parse_errors_are_specific_and_one_line(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert str(caught.value).startswith(message)
    assert len(str(caught.value).splitlines()) == 1


def test_control_characters_are_escaped_in_messages() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("x.y > 2% and\nmore\u2028lines")
    assert str(caught.value) == (
        "unexpected 'and\\nmore\\u2028lines' after 'x.y > 2%': only 'for <duration>' may follow"
    )


def test_non_text_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="a rule is text"):
        parse_rule(42)  # type: ignore[arg-type]


# -- fitting to the catalog ---------------------------------------------------------------

CATALOG = Catalog(
    {
        "farms": source_fields("http"),
        "farm": source_fields("http"),
        "search": source_fields("http"),
        "cache": source_fields("redis"),
        "db": source_fields("postgres"),
    }
)

ISSUE_RULES = [
    "http.error_rate <= 0.1%", "cache.hit_rate >= 30%", "improvement(farms.p95) >= 40%",
    "http.error_rate > 1%", "cache.hit_rate == 0% for 10m", "cache.up == 0", "db.up == 0",
    "farms.p95 <= 200ms", "improvement(db.queries_per_min) >= 40%", "cache.hit_rate < 30% for 30m",
    "db.pool_used > 80% for 10m", "http.error_rate > 2% for 5m", "http.p95 > 2s for 10m",
    "db.up == 0 for 1m", "cache.up == 0 for 1m", "cockpit.loop_lag_p99 < 250ms",
]  # fmt: skip


@pytest.mark.parametrize("text", ISSUE_RULES)
def test_the_issues_rules_fit(text: str) -> None:
    check_rule(parse_rule(text), CATALOG)


@pytest.mark.parametrize(
    "text",
    ["cache.hit_rate == 0", "farms.p95 > 0", "farms.p95 > 1h", "db.connections < 90"],
)
def test_fitting_units(text: str) -> None:
    check_rule(parse_rule(text), CATALOG)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http.p59 > 1s", "unknown metric 'http.p59' (did you mean 'http.p95'?)"),
        ("cache.hit_rat > 1%", "unknown metric 'cache.hit_rat' (did you mean 'cache.hit_rate'?)"),
        ("zzz.qqq > 1", "unknown metric 'zzz.qqq'"),
        ("improvement(farms.p59) >= 40%", "unknown metric 'farms.p59' (did you mean"),
        ("farms.p95 <= 200", "farms.p95 is a time: write 200ms or 2s"),
        ("farms.p95 <= 20%", "farms.p95 is a time, not '%': write 20ms or 2s"),
        ("cache.hit_rate >= 30", "cache.hit_rate is a percentage: write 30%"),
        ("cache.hit_rate >= 0.3", "cache.hit_rate is a percentage: write 30%"),
        ("cache.hit_rate >= 30s", "cache.hit_rate is a percentage, not 's': write 30%"),
        ("cache.up == 0%", "cache.up takes a plain number, not '%'"),
        ("cache.up == 1%", "cache.up takes a plain number, not '%'"),
        ("db.queries_per_min < 500ms", "db.queries_per_min takes a plain number, not 'ms'"),
    ],
)
def test_misfits_are_refused(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        check_rule(parse_rule(text), CATALOG)
    assert str(caught.value).startswith(message)
    assert str(caught.value) == message or "(did you mean" in message


def test_improvement_needs_a_percentage_even_when_built_by_hand() -> None:
    rule = Rule("x", "farms.p95", Op.GE, 40.0, None, improvement=True)
    with pytest.raises(RuleError, match=r"^improvement\(\) takes a percentage: write 40%$"):
        check_rule(rule, CATALOG)
    check_rule(Rule("x", "farms.p95", Op.GE, 0.0, None, improvement=True), CATALOG)


# -- evaluation ---------------------------------------------------------------------------

NOW = 10_000.0


def store_with(
    metric: str, points: Iterable[tuple[float, float | None]], stale_after: float = 30.0
) -> MetricStore:
    """Points given as (seconds before NOW, value)."""
    store = MetricStore(default_stale_after=stale_after)
    for ago, value in sorted(points, key=lambda p: -p[0]):
        store.record(metric, NOW - ago, value, None if value is not None else "too few")
    return store


def every(step: float, start: float, end: float = 0.0) -> list[float]:
    """Ages from `start` seconds ago down to `end` seconds ago, every `step`."""
    count = int(round((start - end) / step))
    return [start - i * step for i in range(count + 1)]


def run(
    text: str,
    store: MetricStore,
    unit: Unit = Unit.RATIO,
    baseline: dict[str, float] | None = None,
    held_word: str = "held",
) -> Evaluation:
    return evaluate(parse_rule(text), store, baseline or {}, NOW, unit=unit, held_word=held_word)


def test_condition_holds_now() -> None:
    got = run("http.error_rate > 2%", store_with("http.error_rate", [(5, 0.024)]))
    assert got == Evaluation(True, 0.024, "2.4% > 2%")


def test_condition_does_not_hold_now() -> None:
    got = run("http.error_rate > 2%", store_with("http.error_rate", [(5, 0.003)]))
    assert got == Evaluation(False, 0.003, "0.3% not > 2%")


def test_only_the_latest_point_counts_without_for() -> None:
    store = store_with("http.error_rate", [(20, 0.5), (10, 0.5), (1, 0.0)])
    assert run("http.error_rate > 2%", store) == Evaluation(False, 0.0, "0% not > 2%")


def test_times_show_in_their_unit() -> None:
    got = run("farms.p95 <= 200ms", store_with("farms.p95", [(1, 812.0)]), Unit.MS)
    assert got == Evaluation(False, 812.0, "812ms not <= 200ms")
    got = run("http.p95 > 2s", store_with("http.p95", [(1, 2100.0)]), Unit.MS)
    assert got == Evaluation(True, 2100.0, "2.1s > 2s")


def test_more_digits_when_rounding_would_hide_the_difference() -> None:
    got = run("http.error_rate > 2%", store_with("http.error_rate", [(1, 0.020004)]))
    assert got.reason == "2.0004% > 2%"
    got = run("http.p95 <= 2000ms", store_with("http.p95", [(1, 2000.4)]), Unit.MS)
    assert got.reason == "2000.4ms not <= 2000ms"


def test_flags_and_plain_numbers() -> None:
    got = run("db.up == 0", store_with("db.up", [(1, 0.0)]), Unit.FLAG)
    assert got == Evaluation(True, 0.0, "0 == 0")
    got = run("db.connections != 90", store_with("db.connections", [(1, 90.0)]), Unit.COUNT)
    assert got == Evaluation(False, 90.0, "90 not != 90")


def test_improvement_is_against_the_baseline() -> None:
    store = store_with("farms.p95", [(1, 304.0)])
    got = run("improvement(farms.p95) >= 40%", store, Unit.MS, {"farms.p95": 800.0})
    assert got.holds is True
    assert got.value == pytest.approx(0.62)
    assert got.reason == "improvement 62% >= 40%"
    worse = run(
        "improvement(farms.p95) >= 40%",
        store_with("farms.p95", [(1, 880.0)]),
        Unit.MS,
        {"farms.p95": 800.0},
    )
    assert worse.holds is False
    assert worse.reason == "improvement -10% not >= 40%"


def test_improvement_without_a_usable_baseline_is_unknown() -> None:
    store = store_with("farms.p95", [(1, 304.0)])
    rule = "improvement(farms.p95) >= 40%"
    assert run(rule, store, Unit.MS) == Evaluation(None, None, "no baseline for farms.p95")
    got = run(rule, store, Unit.MS, {"farms.p95": 0.0})
    assert got == Evaluation(None, None, "baseline for farms.p95 is 0")
    got = run(rule, store, Unit.MS, {"farms.p95": float("nan")})
    assert got == Evaluation(None, None, "no baseline for farms.p95")


def test_source_down_is_unknown_except_for_its_up_flag() -> None:
    store = store_with("cache.hit_rate", [(1, 0.5)])
    store.record("cache.up", NOW - 1, 0.0)
    store.set_source("cache", SourceStatus(up=False, error="connection refused"))
    got = run("cache.hit_rate >= 30%", store)
    assert got == Evaluation(None, 0.5, "source down: connection refused")
    assert run("cache.up == 0", store, Unit.FLAG) == Evaluation(True, 0.0, "0 == 0")
    store.set_source("cache", SourceStatus(up=False))
    assert run("cache.hit_rate >= 30%", store).reason == "source down: no reason given"
    store.set_source("cache", SourceStatus(up=True))
    assert run("cache.hit_rate >= 30%", store).holds is True


def test_no_data() -> None:
    assert run("http.error_rate > 2%", MetricStore()) == Evaluation(None, None, "no data")


def test_stale_data_is_unknown() -> None:
    store = store_with("http.error_rate", [(14, 0.5)], stale_after=10.0)
    assert run("http.error_rate > 2%", store) == Evaluation(None, 0.5, "stale 14s")
    fresh = store_with("http.error_rate", [(10, 0.5)], stale_after=10.0)
    assert run("http.error_rate > 2%", fresh).holds is True


@pytest.mark.parametrize("reason", ["12 samples < 20 needed", "counter reset"])
def test_an_unknown_latest_value_gives_its_reason(reason: str) -> None:
    store = MetricStore()
    store.record("db.queries_per_min", NOW - 30, 400.0)
    store.record("db.queries_per_min", NOW - 1, None, reason)
    got = run("db.queries_per_min < 500", store, Unit.PER_MINUTE)
    assert got == Evaluation(None, None, reason)
    store.record("db.queries_per_min", NOW, None)
    assert run("db.queries_per_min < 500", store, Unit.PER_MINUTE).reason == "no value"


def test_points_after_now_are_not_seen() -> None:
    store = store_with("http.error_rate", [(5, 0.003), (-5, 0.5)])
    assert run("http.error_rate > 2%", store).holds is False


RATE = "http.error_rate"


def test_for_holds_when_every_point_held_long_enough() -> None:
    store = store_with(RATE, [(ago, 0.024) for ago in every(10, 600)])
    assert run(f"{RATE} > 2% for 5m", store) == Evaluation(True, 0.024, "2.4% > 2% for 5m")


def test_for_fails_when_the_latest_point_fails() -> None:
    points = [(ago, 0.024) for ago in every(10, 600, 10)] + [(0, 0.003)]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points))
    assert got == Evaluation(False, 0.003, "0.3% not > 2%")


def test_for_shows_the_run_since_the_last_failure_in_the_window() -> None:
    points = [(ago, 0.024 if ago != 200 else 0.001) for ago in every(10, 600)]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points), held_word="breaching")
    assert got == Evaluation(False, 0.024, "2.4% > 2%, breaching 3m10s of 5m")


@pytest.mark.parametrize(
    ("op", "good", "bad"),
    [("<", 0.01, 0.03), ("<=", 0.02, 0.03), (">", 0.03, 0.02), (">=", 0.02, 0.01),
     ("==", 0.02, 0.03), ("!=", 0.03, 0.02)],
)  # fmt: skip
def test_for_every_operator_sees_a_failure_in_the_window(op: str, good: float, bad: float) -> None:
    points = [(ago, good) for ago in every(10, 600)]
    assert run(f"{RATE} {op} 2% for 5m", store_with(RATE, points)).holds is True
    points = [(ago, bad if ago == 100 else good) for ago in every(10, 600)]
    got = run(f"{RATE} {op} 2% for 5m", store_with(RATE, points))
    assert (got.holds, got.reason.split(", ")[1]) == (False, "held 1m30s of 5m")


def test_for_run_started_recently() -> None:
    store = store_with(RATE, [(ago, 0.024) for ago in every(10, 60)])
    got = run(f"{RATE} > 2% for 5m", store)
    assert got == Evaluation(False, 0.024, "2.4% > 2%, held 1m of 5m")


def test_for_run_starts_after_a_failure_just_before_the_window() -> None:
    points = [(ago, 0.001) for ago in every(10, 605, 305)]
    points += [(ago, 0.024) for ago in every(10, 295)]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points))
    assert got == Evaluation(False, 0.024, "2.4% > 2%, held 4m55s of 5m")


def test_for_run_that_began_exactly_at_the_window_start_counts() -> None:
    points = [(ago, 0.001) for ago in every(10, 600, 310)]
    points += [(ago, 0.024) for ago in every(10, 300)]
    assert run(f"{RATE} > 2% for 5m", store_with(RATE, points)).holds is True


def test_for_an_unknown_point_after_the_last_failure_starts_the_run() -> None:
    points: list[tuple[float, float | None]] = [(400, 0.001), (310, None)]
    points += [(ago, 0.024) for ago in every(10, 300)]
    assert run(f"{RATE} > 2% for 5m", store_with(RATE, points)).holds is True


def test_for_needs_data_over_most_of_the_window() -> None:
    points = [(ago, 0.024) for ago in every(10, 300, 250)]
    points += [(ago, 0.024) for ago in every(10, 50)]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points))
    # 300..250 ago covered, then 30s more until it went stale; 50..0 ago covered: 130s
    assert got == Evaluation(None, 0.024, "data covers 43% of the last 5m")


def test_for_unknown_points_neither_pass_nor_fail() -> None:
    points: list[tuple[float, float | None]] = [(ago, None) for ago in every(10, 310, 110)]
    points += [(ago, 0.024) for ago in every(10, 100)]
    store = store_with(RATE, [(400, 0.024), *points])
    got = run(f"{RATE} > 2% for 5m", store)
    assert got == Evaluation(None, 0.024, "data covers 33% of the last 5m")


def test_for_coverage_of_exactly_eighty_percent_is_enough() -> None:
    points: list[tuple[float, float | None]] = [(ago, 0.024) for ago in every(10, 400)]
    points = [(ago, None if 60 < ago <= 120 else v) for ago, v in points]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points))
    assert got == Evaluation(True, 0.024, "2.4% > 2% for 5m")
    points = [(ago, None if 60 < ago <= 121 else v) for ago, v in points if ago != 121]
    points.append((121, None))
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, points))
    assert got.holds is None
    assert got.reason == "data covers 79% of the last 5m"


def test_for_the_point_before_the_window_covers_its_start() -> None:
    recent = [(ago, 0.024) for ago in every(5, 235)]
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, [(310, None), *recent]))
    assert got == Evaluation(None, 0.024, "data covers 78% of the last 5m")
    # known at 310s ago, fresh for 30s: covers the window's first 20s
    got = run(f"{RATE} > 2% for 5m", store_with(RATE, [(310, 0.03), *recent]))
    assert got == Evaluation(True, 0.024, "2.4% > 2% for 5m")


def test_for_shorter_than_the_poll_interval() -> None:
    store = store_with(RATE, [(ago, 0.024) for ago in every(10, 100, 10)])
    assert run(f"{RATE} > 2% for 5s", store) == Evaluation(True, 0.024, "2.4% > 2% for 5s")


def test_for_with_improvement() -> None:
    store = store_with("farms.p95", [(ago, 304.0) for ago in every(10, 600)])
    got = run("improvement(farms.p95) >= 40% for 5m", store, Unit.MS, {"farms.p95": 800.0})
    assert got.holds is True
    assert got.reason == "improvement 62% >= 40% for 5m"
    store.record("farms.p95", NOW, 700.0)
    got = run("improvement(farms.p95) >= 40% for 5m", store, Unit.MS, {"farms.p95": 800.0})
    assert got.reason == "improvement 12.5% not >= 40%"


class CountingStore(MetricStore):
    """Records the windows evaluation asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[float, float]] = []

    def window(
        self, metric: str, since: float, until: float
    ) -> tuple[Sequence[float], Sequence[float | None]]:
        self.asked.append((since, until))
        return super().window(metric, since, until)

    def points(self, metric: str, since: float, until: float | None = None) -> Sequence[Point]:
        raise AssertionError("evaluation must not copy whole series")


def test_evaluation_reads_only_the_window() -> None:
    store = CountingStore()
    for i in range(3600):
        store.record(RATE, NOW - 3600 + i + 1, 0.024)
    rule = parse_rule(f"{RATE} > 2% for 5m")
    got = evaluate(rule, store, {}, NOW, unit=Unit.RATIO)
    assert got.holds is True
    assert store.asked == [(NOW - 300, NOW)]


def test_a_broken_for_is_ignored_rather_than_raising() -> None:
    store = store_with(RATE, [(1, 0.024)])
    for bad in (0.0, -5.0, float("nan"), float("inf")):
        rule = Rule("x", RATE, Op.GT, 0.02, "%", for_s=bad)
        assert evaluate(rule, store, {}, NOW, unit=Unit.RATIO).holds is True
