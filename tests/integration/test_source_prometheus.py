"""The Prometheus source against a real /metrics exporter and a real Prometheus server.

Ground truth is what the test itself put in the exporter's registry: counts added, gauge
values set, observations made. Fault tests call poll() under a timeout as the scheduler does.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.prometheus import PrometheusSource
from tests.servers.prometheus_server import Exporter, PrometheusServer

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5


class Clock:
    """Scrape-form rates are checked against the time the test says has passed."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_source(clock: Callable[[], float] = time.time, **settings: object) -> PrometheusSource:
    spec = SourceSpec("prom", "prometheus", 1.0, TIMEOUT_S, {"window_s": 60.0, **settings})
    return PrometheusSource(spec, clock=clock)


async def poll(source: PrometheusSource) -> PollResult:
    """One poll the way the scheduler runs it: under a timeout, timeouts become SourceDown."""
    try:
        return await asyncio.wait_for(source.poll(time.perf_counter()), TIMEOUT_S + 1.0)
    except TimeoutError:
        return SourceDown("scheduler timeout")


async def poll_until(
    source: PrometheusSource, done: Callable[[PollResult], bool], within_s: float = 10.0
) -> PollResult:
    deadline = time.monotonic() + within_s
    while True:
        result = await poll(source)
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


def reading(result: PollResult) -> Reading:
    assert isinstance(result, Reading), result
    return result


# -- scrape form ---------------------------------------------------------------------------------


async def test_scrape_counter_rate_is_what_the_test_added_per_minute(
    prom_exporter: Exporter,
) -> None:
    jobs = Counter("jobs", "jobs done", ["queue"], registry=prom_exporter.registry)
    jobs.labels("mail").inc(500)
    jobs.labels("sms").inc(3)
    clock = Clock()
    metrics = {"mail_per_min": 'jobs_total{queue="mail"}', "all_per_min": "jobs_total"}
    source = make_source(clock, scrape=prom_exporter.url, metrics=metrics)
    try:
        first = reading(await poll(source))
        assert first.values == {"mail_per_min": None, "all_per_min": None, "up": 1.0}
        assert first.reasons["mail_per_min"] == "first sample"
        jobs.labels("mail").inc(30)
        jobs.labels("sms").inc(12)
        jobs.labels("fax").inc(3)  # a series that appears between scrapes counts from 0
        clock.now += 10
        second = reading(await poll(source))
    finally:
        await source.close()
    assert second.values["mail_per_min"] == pytest.approx(30 / 10 * 60)
    assert second.values["all_per_min"] == pytest.approx(45 / 10 * 60)


async def test_scrape_gauges_sum_the_matching_series(prom_exporter: Exporter) -> None:
    depth = Gauge("queue_depth", "waiting", ["queue", "region"], registry=prom_exporter.registry)
    depth.labels("mail", "eu").set(4)
    depth.labels("mail", "us").set(2.5)
    depth.labels("sms", "eu").set(100)
    metrics = {"mail": 'queue_depth{queue="mail"}', "eu": 'queue_depth{region="eu"}'}
    source = make_source(scrape=prom_exporter.url, metrics=metrics)
    try:
        result = reading(await poll(source))
    finally:
        await source.close()
    assert result.values == {"mail": 6.5, "eu": 104.0, "up": 1.0}


async def test_scrape_histogram_quantiles_of_the_observations_in_the_window(
    prom_exporter: Exporter,
) -> None:
    latency = Histogram(
        "request_seconds",
        "latency",
        ["route"],
        buckets=[b / 10 for b in range(1, 11)],
        registry=prom_exporter.registry,
    )
    for _ in range(5000):
        latency.labels("/api/farms").observe(0.01)  # before the window: must not count
    clock = Clock()
    metrics = {f"p{q}": f'request_seconds{{route="/api/farms"}} p{q}' for q in (50, 95, 99)}
    source = make_source(clock, scrape=prom_exporter.url, metrics=metrics)
    observed = [i / 1000 for i in range(1, 1001)]
    try:
        reading(await poll(source))
        for value in observed:
            latency.labels("/api/farms").observe(value)
            latency.labels("/other").observe(5.0)  # another route: not selected
        clock.now += 10
        result = reading(await poll(source))
    finally:
        await source.close()
    for q in (50, 95, 99):
        exact = sorted(observed)[math.ceil(q / 100 * len(observed)) - 1]
        assert result.values[f"p{q}"] == pytest.approx(exact, abs=0.002)


async def test_scrape_counter_reset_is_unknown_then_rates_resume(prom_exporter: Exporter) -> None:
    Counter("jobs", "jobs", registry=prom_exporter.registry).inc(1000)
    clock = Clock()
    source = make_source(clock, scrape=prom_exporter.url, metrics={"jobs": "jobs_total"})
    try:
        reading(await poll(source))
        prom_exporter.registry = CollectorRegistry()  # the exporter restarted
        restarted = Counter("jobs", "jobs", registry=prom_exporter.registry)
        restarted.inc(4)
        clock.now += 5
        reset = reading(await poll(source))
        restarted.inc(20)
        clock.now += 5
        resumed = reading(await poll(source))
    finally:
        await source.close()
    assert (reset.values["jobs"], reset.reasons["jobs"]) == (None, "counter reset")
    assert resumed.values["jobs"] == pytest.approx(20 / 5 * 60)


async def test_scrape_exporter_down_slow_or_failing_then_back(prom_exporter: Exporter) -> None:
    Gauge("temperature", "t", registry=prom_exporter.registry).set(21)
    source = make_source(scrape=prom_exporter.url, metrics={"temp": "temperature"})
    try:
        assert reading(await poll(source)).values["temp"] == 21.0
        prom_exporter.stop()
        assert await poll(source) == SourceDown(f"{prom_exporter.url}: Connection refused")
        prom_exporter.start()
        assert reading(await poll(source)).values == {"temp": 21.0, "up": 1.0}
        prom_exporter.delay_s = 3.0
        started = time.monotonic()
        slow = await poll(source)
        assert time.monotonic() - started < TIMEOUT_S + 0.5
        assert slow == SourceDown(f"{prom_exporter.url}: timed out after {TIMEOUT_S:g}s")
        prom_exporter.delay_s = 0.0
        prom_exporter.status = 500
        failing = await poll(source)
        assert failing == SourceDown(f"{prom_exporter.url}: HTTP 500 Internal Server Error")
        prom_exporter.status = 200
        assert reading(await poll(source)).values["temp"] == 21.0
    finally:
        await source.close()


# -- server form ---------------------------------------------------------------------------------


async def test_server_queries_read_what_prometheus_scraped(
    prom_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    registry = prom_exporter.registry
    Gauge("cockpit_test_depth", "depth", registry=registry).set(42.5)
    per_pod = Gauge("cockpit_test_pod_load", "load", ["pod"], registry=registry)
    per_pod.labels("a").set(1)
    per_pod.labels("b").set(2)
    Counter("cockpit_test_jobs", "jobs", registry=registry).inc(17)
    queries = {
        "depth": "cockpit_test_depth",
        "jobs": "sum(cockpit_test_jobs_total)",
        "doubled": "scalar(sum(cockpit_test_jobs_total)) * 2",
        "loads": "cockpit_test_pod_load",
        "missing": "cockpit_test_nothing",
        "broken": "sum(",
    }
    source = make_source(server=prometheus.url, queries=queries)
    try:
        result = reading(
            await poll_until(source, lambda r: isinstance(r, Reading) and r.values["jobs"] == 17)
        )
    finally:
        await source.close()
    assert result.values == {
        "depth": 42.5,
        "jobs": 17.0,
        "doubled": 34.0,
        "loads": None,
        "missing": None,
        "broken": None,
        "up": 1.0,
    }
    assert result.reasons["loads"] == "2 series: aggregate in the query (sum/avg)"
    assert result.reasons["missing"] == "no series"
    assert result.reasons["broken"].startswith("Prometheus: bad_data: invalid parameter")


async def test_server_rate_query_matches_a_steady_increment(
    prom_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    jobs = Counter("cockpit_test_steady", "jobs", registry=prom_exporter.registry)
    stop = threading.Event()
    added = {"count": 0}

    def produce() -> None:  # 50 per second, as evenly as sleep allows
        while not stop.wait(0.02):
            jobs.inc()
            added["count"] += 1

    started = time.monotonic()
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    queries = {
        "rps": "sum(rate(cockpit_test_steady_total[3s]))",
        "scrapes": "count_over_time(cockpit_test_steady_total[3s])",
    }
    source = make_source(server=prometheus.url, queries=queries)

    def enough(result: PollResult) -> bool:  # rate() needs 3 scrapes to stop extrapolating
        return isinstance(result, Reading) and (result.values["scrapes"] or 0) >= 3

    try:
        result = reading(await poll_until(source, enough, within_s=15.0))
    finally:
        stop.set()
        producer.join()
        await source.close()
    truth = added["count"] / (time.monotonic() - started)
    assert result.values["rps"] == pytest.approx(truth, rel=0.25)


async def test_server_killed_is_down_and_recovers_after_restart(
    prometheus: PrometheusServer,
) -> None:
    source = make_source(server=prometheus.url, queries={"seven": "vector(7)"})

    def answered(result: PollResult) -> bool:
        return isinstance(result, Reading) and result.values == {"seven": 7.0, "up": 1.0}

    try:
        assert answered(await poll(source))
        prometheus.kill()
        down = await poll(source)
        assert down == SourceDown(f"{prometheus.url}/api/v1/query: Connection refused")
        prometheus.start()
        assert answered(await poll_until(source, answered, within_s=5.0))
    finally:
        await source.close()


async def test_server_hung_times_out_and_recovers(prometheus: PrometheusServer) -> None:
    source = make_source(server=prometheus.url, queries={"targets": "sum(up)"})
    try:
        assert reading(await poll(source)).values["up"] == 1.0
        prometheus.pause()
        try:
            started = time.monotonic()
            hung = await poll(source)
            assert time.monotonic() - started < TIMEOUT_S + 0.5
            assert hung == SourceDown(f"{prometheus.url}/api/v1/query: timed out after 0.5s")
        finally:
            prometheus.resume()
        assert reading(await poll(source)).values["up"] == 1.0
    finally:
        await source.close()
