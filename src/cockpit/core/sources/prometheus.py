"""`kind = "prometheus"`: read a /metrics page (`scrape`) or ask a Prometheus server (`server`).

Scrape form: `metrics = { field = 'selector' }`, one field per entry:

    jobs_per_min = 'jobs_processed_total'                # a counter: per-minute rate
    errors       = 'http_requests_total{code=~"5.."}'    # matching series are summed
    latency_p95  = 'http_request_duration_seconds{route="/api/farms"} p95'  # histogram

(details in `cockpit.core.sources.prom_text`). The page is fetched with httpx and parsed
with prometheus_client's text parser; rates and quantiles are over `window`, from this
source's own successive scrapes. A selector that cannot be read makes its field None with
the reason on every poll; the other fields are unaffected.

Server form: `queries = { field = "PromQL" }`, each an instant query through
`/api/v1/query`. Prometheus does the aggregation (how a fleet too big for one prober is
watched), so a query must come down to one number: a scalar, or a vector of exactly one
series. Empty results, several series, NaN and errors from Prometheus make that field None
with the reason; the other fields are unaffected.

`up` is 1 when the page or the server answered; a refused connection, a timeout or an HTTP
error is a `SourceDown`.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown, one_line
from cockpit.core.sources.prom_text import (
    CounterRate,
    Exposition,
    HistogramQuantile,
    Missing,
    Selector,
    SelectorError,
    Value,
    parse_selector,
    select_buckets,
    select_value,
)

# Ask for the classic text format: prometheus_client's parser reads it, and every exporter has it.
SCRAPE_ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"


class PrometheusSource:
    """One `[sources.NAME]` of kind prometheus, in either form."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        settings = spec.settings
        self._window_s = float(_number(settings.get("window_s"), 60.0))
        scrape, server = settings.get("scrape"), settings.get("server")
        self._scrape = str(scrape) if scrape else None
        self._server = str(server).rstrip("/") if server else None
        self._fields = _ScrapeFields(_str_map(settings.get("metrics")), self._window_s)
        self._queries = _str_map(settings.get("queries"))

    async def poll(self, planned_at: float) -> PollResult:
        if self._scrape is not None:
            return await self._poll_scrape(self._scrape)
        if self._server is not None:
            return await self._poll_server(self._server)
        return SourceDown("set scrape (with metrics) or server (with queries)")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.spec.timeout_s), transport=self._transport
            )
        return self._client

    async def _get(self, url: str, **kwargs: Any) -> httpx.Response | SourceDown:
        try:
            return await self._http().get(url, **kwargs)
        except httpx.TimeoutException:
            return SourceDown(f"{url}: timed out after {self.spec.timeout_s:g}s")
        except httpx.HTTPError as err:
            return SourceDown(f"{url}: {_http_error(err)}")

    # -- scrape form ----------------------------------------------------------------------------

    async def _poll_scrape(self, url: str) -> PollResult:
        response = await self._get(url, headers={"Accept": SCRAPE_ACCEPT})
        if isinstance(response, SourceDown):
            return response
        if response.status_code != 200:
            return SourceDown(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        now = self._clock()
        try:  # in a thread: a big page must not stall the event loop (and every probe on it)
            page = await asyncio.to_thread(Exposition, response.text, self._fields.names)
        except ValueError as err:
            return SourceDown(f"{url}: not the Prometheus text format ({one_line(err)})")
        return self._fields.reading(page, now)

    # -- server form ----------------------------------------------------------------------------

    async def _poll_server(self, server: str) -> PollResult:
        url = f"{server}/api/v1/query"
        names = list(self._queries)
        answers = await asyncio.gather(*(self._query(url, self._queries[n]) for n in names))
        values: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        warnings: dict[str, list[str]] = {}
        for name, answer in zip(names, answers, strict=True):
            if isinstance(answer, SourceDown):
                return answer
            result, notes = answer
            values[name] = result.value
            if result.value is None:
                reasons[name] = result.reason
            if notes:
                warnings[name] = notes
        values["up"] = 1.0
        details: dict[str, object] = {"warnings": warnings} if warnings else {}
        return Reading(values, reasons, details)

    async def _query(self, url: str, promql: str) -> tuple[Value, list[str]] | SourceDown:
        # Prometheus' own evaluation timeout, so a slow query fails there with a message.
        # Whole milliseconds: Prometheus durations have no fractions ("0.5s" is refused).
        timeout_ms = max(1, int(self.spec.timeout_s * 1000))
        params = {"query": promql, "timeout": f"{timeout_ms}ms"}
        response = await self._get(url, params=params)
        if isinstance(response, SourceDown):
            return response
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            status = f"HTTP {response.status_code} {response.reason_phrase}"
            return SourceDown(f"{url}: {status}, not a Prometheus API answer")
        warnings = [str(w) for w in body.get("warnings") or ()]
        return query_value(body), warnings


def query_value(body: Mapping[str, Any]) -> Value:
    """One number from an /api/v1/query answer, or None with the reason."""
    if body.get("status") != "success":
        kind = body.get("errorType") or "error"
        return Value(None, f"Prometheus: {kind}: {body.get('error') or 'no message'}")
    data = body.get("data") or {}
    shape, result = data.get("resultType"), data.get("result")
    if shape == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number_value(result[1])
    if shape == "vector" and isinstance(result, list):
        if not result:
            return Value(None, "no series")
        if len(result) > 1:
            return Value(None, f"{len(result)} series: aggregate in the query (sum/avg)")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
        if isinstance(sample, list) and len(sample) == 2:
            return _number_value(sample[1])
        return Value(None, "a histogram sample: use histogram_quantile() in the query")
    if shape == "matrix":
        return Value(None, "a range vector: wrap it, e.g. rate(x[1m]) or avg_over_time(x[1m])")
    return Value(None, f"unexpected {shape or 'unknown'} result: expected one number")


def _number_value(text: object) -> Value:
    try:
        number = float(str(text))
    except ValueError:
        return Value(None, f"not a number: {text!r}")
    if math.isnan(number):
        return Value(None, "NaN (a division by zero, e.g. no traffic in the range)")
    if math.isinf(number):
        return Value(None, f"{number:+} (a division by zero)")
    return Value(number)


class _ScrapeFields:
    """The configured fields of the scrape form, each with its window over past scrapes."""

    def __init__(self, metrics: Mapping[str, str], window_s: float) -> None:
        self.window_s = window_s
        self.selectors: dict[str, Selector | str] = {}
        for name, expression in metrics.items():
            try:
                self.selectors[name] = parse_selector(expression)
            except SelectorError as err:
                self.selectors[name] = str(err)  # reported on every reading, for that field only
        self.names = frozenset(s.name for s in self.selectors.values() if isinstance(s, Selector))
        self.rates: dict[str, CounterRate] = {}
        self.quantiles: dict[str, HistogramQuantile] = {}

    def reading(self, page: Exposition, now: float) -> Reading:
        values: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        notes: dict[str, str] = {}
        for name, selector in self.selectors.items():
            result = (
                Value(None, f"bad selector: {selector}")
                if isinstance(selector, str)
                else self._value(name, selector, page, now)
            )
            values[name] = result.value
            if result.value is None:
                reasons[name] = result.reason
            elif result.reason:
                notes[name] = result.reason
        values["up"] = 1.0
        return Reading(values, reasons, {"notes": notes} if notes else {})

    def _value(self, name: str, selector: Selector, page: Exposition, now: float) -> Value:
        if selector.quantile is not None:
            buckets = select_buckets(page, selector)
            if isinstance(buckets, Missing):
                return Value(None, buckets.reason)
            window = self.quantiles.get(name)
            if window is None:
                window = self.quantiles[name] = HistogramQuantile(self.window_s, selector.quantile)
            return window.add_buckets(now, buckets)
        found = select_value(page, selector)
        if isinstance(found, Missing):
            return Value(None, found.reason)
        total, is_counter = found
        if not is_counter:
            return Value(total)
        rate = self.rates.setdefault(name, CounterRate(self.window_s))
        return rate.add_value(now, total)


def _http_error(err: httpx.HTTPError) -> str:
    """httpx's message, or the OS error under it ("All connection attempts failed" hides it)."""
    cause: BaseException | None = err
    for _ in range(10):  # a chain, not a cycle
        if cause is None:
            break
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return one_line(err)


def _str_map(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default
