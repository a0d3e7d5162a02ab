"""Prometheus source logic without servers: selectors, the text format, rates, quantiles,
PromQL answer shapes, and whole polls over httpx's MockTransport with an injected clock."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import httpx
import pytest

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import Reading, SourceDown
from cockpit.core.sources.prom_text import (
    CounterRate,
    Exposition,
    HistogramQuantile,
    Matcher,
    Missing,
    Selector,
    SelectorError,
    histogram_quantile,
    parse_selector,
    quantile_value,
    select_buckets,
    select_value,
)
from cockpit.core.sources.prometheus import PrometheusSource, query_value

INF = math.inf

# -- selectors ---------------------------------------------------------------------------------


def test_selector_name_only() -> None:
    assert parse_selector("  jobs_total ") == Selector("jobs_total")


def test_selector_with_every_matcher_kind_and_a_quantile() -> None:
    selector = parse_selector(
        'http_seconds{route="/api/farms", code=~"5..",method!="GET",pod!~"canary-.*",} p95'
    )
    assert selector == Selector(
        "http_seconds",
        (
            Matcher("route", "=", "/api/farms"),
            Matcher("code", "=~", "5.."),
            Matcher("method", "!=", "GET"),
            Matcher("pod", "!~", "canary-.*"),
        ),
        0.95,
    )


def test_selector_quantile_with_decimals_and_escaped_values() -> None:
    selector = parse_selector(r'x{msg="say \"hi\"\n",path="a\\b"} p99.9')
    assert selector.matchers == (Matcher("msg", "=", 'say "hi"\n'), Matcher("path", "=", "a\\b"))
    assert selector.quantile == pytest.approx(0.999)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a metric name"),
        ("9lives", "expected a metric name"),
        ("x{a=b}", "expected a double-quoted value after a"),
        ('x{a="b"', "expected , or }"),
        ('x{a="b" c="d"}', "expected , or }"),
        ("x{=}", 'expected label="value"'),
        ('x{a=~"("}', "bad regular expression"),
        ("x p100", "a histogram quantile is written p50"),
        ("x p0", "a histogram quantile is written p50"),
        ("x rate", "unexpected 'rate'"),
    ],
)
def test_selector_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)):
        parse_selector(text)


def test_matchers_treat_a_missing_label_as_empty_and_anchor_regexes() -> None:
    assert Matcher("code", "=", "").matches({})
    assert not Matcher("code", "!=", "").matches({})
    assert Matcher("code", "=~", "5..").matches({"code": "503"})
    assert not Matcher("code", "=~", "5..").matches({"code": "5030"})
    assert Matcher("code", "!~", "5..").matches({"code": "200"})


# -- the text format ---------------------------------------------------------------------------

PAGE = """\
# TYPE jobs counter
jobs_total{queue="mail"} 5
jobs_total{queue="sms"} 7
jobs_created{queue="mail"} 1.7e9
# TYPE depth gauge
depth{queue="mail"} 3
depth{queue="sms"} 4.5
# TYPE lat histogram
lat_bucket{route="/a",le="0.1"} 1
lat_bucket{route="/a",le="1"} 3
lat_bucket{route="/a",le="+Inf"} 4
lat_count{route="/a"} 4
lat_sum{route="/a"} 2.5
lat_bucket{route="/b",le="0.1"} 2
lat_bucket{route="/b",le="1"} 2
lat_bucket{route="/b",le="+Inf"} 2
# TYPE rpc summary
rpc{quantile="0.5"} 0.2
rpc_count 10
untyped_total 9
temperature 21
"""


def test_exposition_knows_which_samples_are_counters() -> None:
    page = Exposition(PAGE)
    assert page.counters == {"jobs_total", "lat_bucket", "lat_count", "lat_sum", "rpc_count"} | {
        "untyped_total"
    }
    assert "jobs_created" in page.series
    assert "temperature" in page.series


def test_old_style_counter_without_total_is_found_by_its_name() -> None:
    page = Exposition("# TYPE hits counter\nhits 12\n")
    assert select_value(page, Selector("hits")) == (12.0, True)


def test_select_value_sums_matching_series() -> None:
    page = Exposition(PAGE)
    assert select_value(page, parse_selector("jobs_total")) == (12.0, True)
    assert select_value(page, parse_selector('jobs_total{queue="sms"}')) == (7.0, True)
    assert select_value(page, parse_selector("jobs")) == (12.0, True)  # family name
    assert select_value(page, parse_selector("depth")) == (7.5, False)
    assert select_value(page, parse_selector('lat_count{route="/a"}')) == (4.0, True)


def test_select_value_explains_what_is_missing() -> None:
    page = Exposition(PAGE)
    assert select_value(page, parse_selector("dept")) == Missing(
        "no metric named 'dept' on the page (did you mean 'depth'?)"
    )
    assert select_value(page, parse_selector('depth{queue="fax"}')) == Missing(
        "no depth series match the labels"
    )
    missing = select_value(page, parse_selector("lat_bucket"))
    assert isinstance(missing, Missing)
    assert "with a quantile" in missing.reason


def test_select_buckets_sums_series_per_bound() -> None:
    page = Exposition(PAGE)
    assert select_buckets(page, parse_selector("lat p50")) == ((0.1, 3.0), (1.0, 5.0), (INF, 6.0))
    assert select_buckets(page, parse_selector('lat{route="/b"} p50')) == (
        (0.1, 2.0),
        (1.0, 2.0),
        (INF, 2.0),
    )
    assert select_buckets(page, parse_selector("depth p50")) == Missing(
        "no histogram named 'depth' (no depth_bucket on the page)"
    )


def test_text_that_is_not_the_format_raises_value_error() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        Exposition("<html><body>login</body></html>")
    with pytest.raises(ValueError, match="not a metric line: '<html>"):
        Exposition("<html><body>login</body></html>", wanted={"jobs"})


@pytest.mark.parametrize(
    "selector", ["jobs", "jobs_total", 'jobs_total{queue="sms"}', "depth", "lat p50", "lat_count"]
)
def test_parsing_only_the_wanted_lines_gives_the_same_answers(selector: str) -> None:
    parsed = parse_selector(selector)
    full, only = Exposition(PAGE), Exposition(PAGE, wanted={parsed.name})
    assert select_value(only, parsed) == select_value(full, parsed)
    assert select_buckets(only, parsed) == select_buckets(full, parsed)
    assert len(only.series) < len(full.series)


def test_did_you_mean_knows_lines_that_were_not_parsed() -> None:
    page = Exposition(PAGE, wanted={"dept"})
    assert page.series == {}
    assert page.missing("dept") == "no metric named 'dept' on the page (did you mean 'depth'?)"


# -- counter rates -----------------------------------------------------------------------------


def test_counter_rate_needs_two_samples_then_is_per_minute() -> None:
    rate = CounterRate(window_s=60)
    first = rate.add_value(1000.0, 100.0)
    assert (first.value, first.reason) == (None, "first sample")
    assert rate.add_value(1010.0, 130.0).value == pytest.approx(180.0)  # 30 in 10 s
    assert rate.add_value(1020.0, 130.0).value == pytest.approx(90.0)  # 30 in 20 s


def test_counter_rate_keeps_one_point_at_or_before_the_window_start() -> None:
    rate = CounterRate(window_s=60)
    for second in range(0, 130, 10):
        rate.add_value(float(second), float(second * 2))  # 2 per second throughout
    assert [t for t, _ in rate.points][0] == 60.0  # 120 - 60: the window's start
    assert len(rate.points) == 7
    # 60 in the last 10 s after a steady minute: the rate spans the whole window.
    assert rate.add_value(130.0, 300.0).value == pytest.approx((300 - 140) / 60 * 60)


def test_counter_going_backwards_is_a_reset_then_rates_resume() -> None:
    rate = CounterRate(window_s=60)
    rate.add_value(0.0, 500.0)
    rate.add_value(10.0, 600.0)
    reset = rate.add_value(20.0, 5.0)
    assert (reset.value, reset.reason) == (None, "counter reset")
    assert rate.add_value(30.0, 25.0).value == pytest.approx(120.0)  # 20 in 10 s


# -- histogram quantiles -----------------------------------------------------------------------

BUCKETS = ((0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (INF, 100.0))


@pytest.mark.parametrize(
    ("quantile", "expected"),
    [
        (0.05, 0.05),  # first bucket starts at 0
        (0.10, 0.1),
        (0.50, 0.1 + 0.4 * 40 / 50),
        (0.75, 0.5 + 0.5 * 15 / 30),
        (0.95, 1.0),  # in the +Inf bucket: the highest finite bound
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(quantile: float, expected: float) -> None:
    assert histogram_quantile(quantile, BUCKETS) == pytest.approx(expected)


def test_histogram_quantile_of_uniform_observations_is_close_to_exact() -> None:
    values = [i / 1000 for i in range(1, 1001)]
    bounds = [b / 10 for b in range(1, 11)] + [INF]
    buckets = tuple((b, float(sum(v <= b for v in values))) for b in bounds)
    for quantile in (0.5, 0.9, 0.95, 0.99):
        exact = sorted(values)[math.ceil(quantile * len(values)) - 1]
        assert histogram_quantile(quantile, buckets) == pytest.approx(exact, abs=0.002)


def test_histogram_quantile_evens_out_non_monotonic_buckets() -> None:
    buckets = ((1.0, 10.0), (2.0, 8.0), (INF, 10.0))  # scraped mid-update
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)


def test_negative_first_bound_is_returned_as_is() -> None:
    assert histogram_quantile(0.1, ((-1.0, 5.0), (0.0, 10.0), (INF, 10.0))) == -1.0


def test_quantile_value_reasons() -> None:
    assert quantile_value(0.5, ((1.0, 3.0),)).reason == "the histogram has no +Inf bucket"
    assert quantile_value(0.5, ((INF, 3.0),)).reason == "the histogram has fewer than 2 buckets"
    assert quantile_value(0.5, ((1.0, 0.0), (INF, 0.0))).reason == "no observations in the window"
    above = quantile_value(0.99, BUCKETS)
    assert above.value == 1.0
    assert "above the highest bucket bound (1)" in above.reason
    assert quantile_value(0.5, BUCKETS).reason == ""


def test_histogram_window_uses_only_observations_made_in_it() -> None:
    window = HistogramQuantile(window_s=60, quantile=0.5)
    first = window.add_buckets(0.0, ((0.1, 1000.0), (1.0, 1000.0), (INF, 1000.0)))
    assert (first.value, first.reason) == (None, "first sample")
    # Since then: 10 new observations, all between 0.1 and 1: old fast ones must not count.
    later = window.add_buckets(10.0, ((0.1, 1000.0), (1.0, 1010.0), (INF, 1010.0)))
    assert later.value == pytest.approx(0.1 + 0.9 * 5 / 10)
    quiet = HistogramQuantile(window_s=60, quantile=0.5)
    quiet.add_buckets(0.0, BUCKETS)
    assert quiet.add_buckets(5.0, BUCKETS).reason == "no observations in the window"


def test_histogram_window_detects_resets_and_new_buckets() -> None:
    window = HistogramQuantile(window_s=60, quantile=0.5)
    window.add_buckets(0.0, BUCKETS)
    assert window.add_buckets(1.0, ((0.1, 1.0), (0.5, 1.0), (1.0, 1.0), (INF, 2.0))).reason == (
        "counter reset"
    )
    changed = window.add_buckets(2.0, ((0.2, 1.0), (INF, 2.0)))
    assert (changed.value, changed.reason) == (None, "the histogram's buckets changed")
    assert window.add_buckets(3.0, ((0.2, 3.0), (INF, 4.0))).value == pytest.approx(0.1)


# -- PromQL answers ----------------------------------------------------------------------------


def vector(*values: str) -> dict[str, object]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1.7e9, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("body", "value", "reason"),
    [
        (vector("42.5"), 42.5, ""),
        (vector(), None, "no series"),
        (vector("1", "2", "3"), None, "3 series: aggregate in the query (sum/avg)"),
        (vector("NaN"), None, "NaN (a division by zero, e.g. no traffic in the range)"),
        (vector("+Inf"), None, "+inf (a division by zero)"),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "2"]}},
            2.0,
            "",
        ),
        (
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            None,
            "a range vector: wrap it, e.g. rate(x[1m]) or avg_over_time(x[1m])",
        ),
        (
            {"status": "success", "data": {"resultType": "string", "result": [1.7e9, "s"]}},
            None,
            "unexpected string result: expected one number",
        ),
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error: unclosed ("},
            None,
            "Prometheus: bad_data: parse error: unclosed (",
        ),
    ],
)
def test_query_value_shapes(body: dict[str, object], value: float | None, reason: str) -> None:
    answer = query_value(json.loads(json.dumps(body)))
    assert (answer.value, answer.reason) == (value, reason)


# -- whole polls over a mock transport ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(
    handler: Callable[[httpx.Request], httpx.Response], clock: Clock, **settings: object
) -> PrometheusSource:
    spec = SourceSpec("prom", "prometheus", 2.0, 1.0, {"window_s": 60.0, **settings})
    return PrometheusSource(spec, clock=clock, transport=httpx.MockTransport(handler))


async def test_scrape_poll_reports_rates_gauges_and_bad_selectors() -> None:
    clock, pages = (
        Clock(),
        [PAGE, PAGE.replace('jobs_total{queue="sms"} 7', 'jobs_total{queue="sms"} 17')],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"].startswith("text/plain;version=0.0.4")
        return httpx.Response(200, text=pages.pop(0))

    metrics = {"jobs": "jobs_total", "depth": "depth", "broken": "depth{queue=}"}
    prom = source(handler, clock, scrape="http://exporter/metrics", metrics=metrics)
    try:
        first = await prom.poll(0.0)
        assert isinstance(first, Reading)
        assert first.values == {"jobs": None, "depth": 7.5, "broken": None, "up": 1.0}
        assert first.reasons["jobs"] == "first sample"
        assert first.reasons["broken"].startswith("bad selector: expected a double-quoted value")
        clock.now += 5
        second = await prom.poll(0.0)
        assert isinstance(second, Reading)
        assert second.values["jobs"] == pytest.approx(120.0)  # 10 in 5 s
    finally:
        await prom.close()
        await prom.close()


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(503, text="down"), "http://exporter/metrics: HTTP 503 Service Unavailable"),
        (httpx.Response(200, text="<html>"), "not the Prometheus text format"),
    ],
)
async def test_scrape_failures_are_source_down(response: httpx.Response, error: str) -> None:
    prom = source(lambda _: response, Clock(), scrape="http://exporter/metrics", metrics={"a": "a"})
    try:
        result = await prom.poll(0.0)
    finally:
        await prom.close()
    assert isinstance(result, SourceDown)
    assert error in result.error


async def test_connection_errors_name_the_url_and_the_os_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed") from ConnectionRefusedError(
            111, "Connect call failed"
        )

    prom = source(refuse, Clock(), server="http://prom:9090/", queries={"a": "up"})
    try:
        result = await prom.poll(0.0)
    finally:
        await prom.close()
    assert result == SourceDown("http://prom:9090/api/v1/query: Connection refused")


async def test_server_poll_answers_each_query_on_its_own() -> None:
    answers = {
        "sum(up)": (200, vector("3")),
        "up": (200, vector("1", "1", "1")),
        "sum(": (400, {"status": "error", "errorType": "bad_data", "error": "unclosed ("}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        assert request.url.params["timeout"] == "1000ms"
        status, body = answers[request.url.params["query"]]
        return httpx.Response(status, json=body)

    queries = {"targets": "sum(up)", "each": "up", "bad": "sum("}
    prom = source(handler, Clock(), server="http://prom:9090", queries=queries)
    try:
        result = await prom.poll(0.0)
    finally:
        await prom.close()
    assert isinstance(result, Reading)
    assert result.values == {"targets": 3.0, "each": None, "bad": None, "up": 1.0}
    assert result.reasons == {
        "each": "3 series: aggregate in the query (sum/avg)",
        "bad": "Prometheus: bad_data: unclosed (",
    }


async def test_server_answer_that_is_not_the_api_is_source_down() -> None:
    prom = source(
        lambda _: httpx.Response(502, text="Bad Gateway"),
        Clock(),
        server="http://prom:9090",
        queries={"a": "up"},
    )
    try:
        result = await prom.poll(0.0)
    finally:
        await prom.close()
    assert result == SourceDown(
        "http://prom:9090/api/v1/query: HTTP 502 Bad Gateway, not a Prometheus API answer"
    )
