"""HTTP probes: latency quantiles and error rates of one URL over a sliding window.

Measured honestly:
- Latency runs from the poll's *planned* time (time.perf_counter) to the end of the body, so a
  late start counts (no coordinated omission). A probe that times out is recorded as an error
  with latency >= the timeout; a probe that cannot connect is recorded as an error with the
  time it took to fail. Nothing is dropped: every attempt is in the window.
- The poll keeps its own deadline (planned time + timeout, minus a small margin) so it returns
  before the scheduler's `wait_for` fires. When the client's clean-up after our deadline
  outlasts the margin (a loaded machine), the scheduler's cancellation is absorbed and the
  poll still answers (wait_for returns it); cancelled from outside at the timeout, the attempt
  is recorded before the cancellation goes on; cancelled earlier (shutdown), it is no attempt.

Classification of an attempt (fractions are over all attempts in the window):
- status in `expect` (default 200-399): ok;
- 429: `rate_limited` - the probes themselves are throttled; never an error, and the reading
  carries advice to slow down or vary the client identity;
- other 4xx: `rate_4xx` (whether expected or not); an unexpected one is also an error (a health
  URL answering 404 is a failing probe);
- 5xx and any other unexpected status, timeouts and connection errors: `error_rate`.

Up and down: the source is down once DOWN_AFTER probes in a row failed at the transport level
(refused, reset, timed out, DNS); until then it answers a Reading (up = 1) whose error_rate
includes those failures. Any HTTP answer, whatever its status, brings it back up.

Too few samples: p50 and mean need MIN_SAMPLES (10), p95 and p99 need 20. At a 1 s probe over
a 1 m window that is 10 s and 20 s of warm-up; with 20 samples p99 is close to the maximum,
which errs on the side of reporting a slow service.

Event-loop lag: `lag_ok()` is asked before and after each probe; a sample taken while it says
no is still recorded (marked "lag", counted in details), and while the latest probe saw the lag
budget blown the latency fields are None: the measured times include our own delay.

Which client probes:
- plain http:// URLs: `http_wire.WireClient`, h11 (httpcore's own HTTP/1.1 parser) over asyncio
  streams on one kept-alive connection per source, the body read and discarded. The target
  is a p50 within 2 ms of the server's own time, and the CPU of each probe bounds how many
  sources one event loop can probe (200 at 1 s). Against a loopback server answering after
  50 ms (bench/delay_server.py), the clients alone added ~1.5-2.1 ms at p50 (httpx), ~1.2 ms
  (httpcore) and ~0.6 ms (h11 over streams). Through HttpSource.poll (5 rounds of 300 probes,
  2 shared cores, Python 3.11) this path's p50 exceeded the server's by 0.3-0.6 ms, at
  0.3-0.6 ms of CPU per poll; through httpx by 0.9-1.5 ms, at 1.0-1.4 ms of CPU.
- https:// URLs (TLS, HTTP/2), URLs with a user and password, URLs a proxy from the
  environment applies to (HTTP_PROXY, ALL_PROXY, NO_PROXY: httpx honours them), and any source
  given a `client`: httpx. Each source has its own httpx client (its own connection pool):
  with one client shared by every probe, httpcore scans every pooled connection for each
  request, which grows with the square of the sources (86% of the engine's time at 200
  sources in bench/scale.py). The clients share one TLS context, so 200 sources load the CA
  bundle once.
Both raise httpx's exceptions, so failures read and count the same.

HTTP/2: httpx offers HTTP/2 over TLS (ALPN) when the `h2` package is installed
(httpx[http2]) and HTTP/1.1 otherwise; plain http:// URLs always use HTTP/1.1 (neither client
upgrades to h2c). `details["protocol"]` says which one the last answer came over.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import importlib.util
import re
import socket
import ssl
import time
from collections.abc import Callable, Collection, Mapping, Sequence

import httpx

from cockpit import __version__
from cockpit.core.metrics.sketch import (
    QuantileWindow,
    WindowView,
    pool_views,
    sketch_mean,
    sketch_quantile,
)
from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown, one_line
from cockpit.core.sources.http_wire import WireClient, request_headers, wire_url

USER_AGENT = f"cockpit/{__version__}"
DEFAULT_EXPECT = range(200, 400)
REFUSED_ERRNO = re.compile(r"\[Errno (\d+)\]")
DOWN_AFTER = 3  # transport failures in a row before the source says it is down
MIN_SAMPLES: Mapping[str, int] = {"p50": 10, "mean": 10, "p95": 20, "p99": 20}
QUANTILES: Mapping[str, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
LAG_REASON = "event loop lag over 10ms: latency not trusted"
POOLED_FIELDS = ("p50", "p95", "p99", "error_rate", "rate_4xx", "rps")
HTTP2 = importlib.util.find_spec("h2") is not None

# Marks counted per attempt in the window.
ERROR, CLIENT_4XX, LIMITED, TRANSPORT, LAG = "error", "4xx", "429", "transport", "lag"


def classify(status: int, expect: Collection[int] = DEFAULT_EXPECT) -> tuple[str, ...]:
    """The marks of an attempt answered with `status`."""
    if status == 429:
        return (LIMITED,)
    marks: list[str] = []
    if 400 <= status < 500:
        marks.append(CLIENT_4XX)
    if status not in expect:
        marks.append(ERROR)
    return tuple(marks)


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """A transport failure as one line for a person."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        what = "connect timed out" if isinstance(exc, httpx.ConnectTimeout) else "timed out"
        return f"{what} after {timeout_s:g}s"
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 5:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
        return "connection refused"
    errnos = REFUSED_ERRNO.findall(text)  # asyncio's "Multiple exceptions: [Errno 111] ..."
    if errnos and all(int(n) == errno.ECONNREFUSED for n in errnos):
        return "connection refused"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"DNS lookup failed: {one_line(exc)}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {one_line(exc)}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return f"bad answer: {one_line(exc)}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"connection reset: {text}" if text else "connection reset by the server"
    return one_line(exc)


def window_values(
    view: WindowView, *, lag_blown: bool
) -> tuple[dict[str, float | None], dict[str, str]]:
    """The windowed fields (all but `up`) of one window or of several pooled ones."""
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    n = view.count
    for name, need in MIN_SAMPLES.items():
        if lag_blown:
            values[name], reasons[name] = None, LAG_REASON
        elif n < need:
            values[name], reasons[name] = None, f"{n} samples < {need} needed"
        elif name == "mean":
            values[name] = sketch_mean(view.sketch)
        else:
            values[name] = sketch_quantile(view.sketch, QUANTILES[name])
    for name, mark in (("error_rate", ERROR), ("rate_4xx", CLIENT_4XX), ("rate_limited", LIMITED)):
        if n == 0:
            values[name], reasons[name] = None, "no probes in the window yet"
        else:
            values[name] = view.marks.get(mark, 0) / n
    values["rps"] = view.rate()
    if values["rps"] is None:
        reasons["rps"] = "needs two probes in the window"
    values["samples"] = float(n)
    return values, reasons


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every probe client (loading the CA bundle is costly)."""
    return httpx.create_ssl_context()


def new_client(*, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """A client configured for probes (each source makes its own; tests pass a CA)."""
    return httpx.AsyncClient(
        http2=HTTP2,
        verify=verify,
        # No cap on connections: a probe waiting for a pooled connection would measure the pool.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        headers={"User-Agent": USER_AGENT},
    )


def _settings(spec: SourceSpec) -> tuple[str, str, dict[str, str], Collection[int], float]:
    s = spec.settings
    expect = s.get("expect")
    headers = s.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise TypeError(f"{spec.name}: headers must be a table")
    return (
        str(s["url"]),
        str(s.get("method") or "GET").upper(),
        {str(k): str(v) for k, v in headers.items()},
        frozenset(int(x) for x in expect) if isinstance(expect, list | tuple) else DEFAULT_EXPECT,
        _seconds(s.get("window_s"), 60.0),
    )


def _seconds(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value > 0 else default


class HttpSource:
    """Probes one URL on the scheduler's clock; see the module docstring for the rules."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
        client: httpx.AsyncClient | None = None,
        lag_ok: Callable[[], bool] | None = None,
        slots: int = 12,
    ) -> None:
        self.spec = spec
        self.url, self.method, self.headers, self.expect, window_s = _settings(spec)
        self.window = QuantileWindow(window_s, slots=slots)
        self._clock = clock
        self._timer = timer
        self._lag_ok = lag_ok or (lambda: True)
        self._injected = client
        self._client: httpx.AsyncClient | WireClient | None = client
        # Plain http:// through h11 unless a client was given (see the module docstring).
        self._wire_url = wire_url(self.url) if client is None else None
        self.failures_in_a_row = 0
        self.lag_blown = False
        self._last: dict[str, object] = {}

    @property
    def client(self) -> httpx.AsyncClient | WireClient | None:
        """The client probes go through: this source's own unless one was injected."""
        return self._client

    def _get_client(self) -> httpx.AsyncClient | WireClient:
        if self._client is None:
            if self._wire_url is not None:
                headers = request_headers(self._wire_url, self.headers, user_agent=USER_AGENT)
                self._client = WireClient(self.method, self._wire_url, headers)
            else:
                self._client = new_client(verify=_tls())
        return self._client

    @property
    def _margin_s(self) -> float:
        # Our deadline fires this much before the scheduler's, so we return instead of
        # being cancelled.
        return min(0.05, 0.05 * self.spec.timeout_s)

    async def poll(self, planned_at: float) -> PollResult:
        client = self._get_client()
        timeout_s = self.spec.timeout_s
        lag_ok = self._lag_ok()
        status: int | None = None
        protocol = ""
        failure: str | None = None
        timed_out = False
        budget = timeout_s - (self._timer() - planned_at) - self._margin_s
        deadline: asyncio.Timeout | None = None
        try:
            if budget <= 0:  # started later than the timeout: it is a timed-out probe
                raise TimeoutError
            async with asyncio.timeout(budget) as deadline:
                if isinstance(client, WireClient):
                    status, protocol = await client.request()
                else:
                    response = await client.request(
                        self.method, self.url, headers=self.headers, timeout=httpx.Timeout(budget)
                    )
                    status, protocol = response.status_code, response.http_version
        except (TimeoutError, httpx.TimeoutException) as exc:
            failure, timed_out = describe_failure(exc, timeout_s), True
        except httpx.RequestError as exc:  # refused, reset, DNS, truncated or undecodable
            failure = describe_failure(exc, timeout_s)
        except asyncio.CancelledError:
            if deadline is None or not deadline.expired():
                # Cancelled from outside: at the timeout it is still a timed-out attempt;
                # earlier it is a shutdown, not an attempt.
                if self._timer() - planned_at >= timeout_s - self._margin_s:
                    self._record(
                        planned_at, None, describe_failure(TimeoutError(), timeout_s), True
                    )
                raise
            # Our deadline fired first but the client's cleanup outlasted the margin, so the
            # scheduler's wait_for cancelled us too: that cancellation is the same timeout.
            # Answer anyway (wait_for returns what a cancelled task returns).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            failure, timed_out = describe_failure(TimeoutError(), timeout_s), True
        lag_ok = self._lag_ok() and lag_ok
        self.lag_blown = not lag_ok
        now = self._record(planned_at, status, failure, timed_out, lag=not lag_ok)
        if protocol:
            self._last["protocol"] = protocol
        if failure is not None and self.failures_in_a_row >= DOWN_AFTER:
            return SourceDown(f"{failure} ({self.failures_in_a_row} probes in a row)")
        return self.reading(now)

    def _record(
        self,
        planned_at: float,
        status: int | None,
        failure: str | None,
        timed_out: bool,
        *,
        lag: bool = False,
    ) -> float:
        """Put one attempt in the window, at its planned time; returns now (wall clock)."""
        elapsed = self._timer() - planned_at
        now = self._clock()
        latency_ms = elapsed * 1000.0
        marks: tuple[str, ...]
        if status is None:
            marks = (ERROR, TRANSPORT)
            self.failures_in_a_row += 1
            if timed_out:
                latency_ms = max(latency_ms, self.spec.timeout_s * 1000.0)
            self._last = {"last_error": failure}
        else:
            marks = classify(status, self.expect)
            self.failures_in_a_row = 0
            self._last = {"last_status": status}
        if lag:
            marks += (LAG,)
        self.window.add(now - elapsed, max(latency_ms, 0.0), marks=marks)
        return now

    def view(self, now: float) -> WindowView:
        return self.window.view(now)

    def reading(self, now: float) -> Reading:
        """The fields over the window at `now`, as the last poll left them."""
        view = self.view(now)
        values, reasons = window_values(view, lag_blown=self.lag_blown)
        values["up"] = 1.0
        details: dict[str, object] = dict(self._last)
        if view.marks.get(LIMITED):
            details["advice"] = (
                f"probes are rate limited (429): slow down (every = {self.spec.every_s:g}s now)"
                " or vary the client identity (User-Agent, source address)"
            )
        if view.marks.get(LAG):
            details["lag_flagged"] = view.marks[LAG]
        if self.failures_in_a_row:
            details["failures_in_a_row"] = self.failures_in_a_row
        return Reading(values=values, reasons=reasons, details=details)

    async def close(self) -> None:
        client = self._client
        self._client = self._injected
        if client is not None and client is not self._injected:
            await client.aclose()


def pooled_reading(sources: Sequence[HttpSource], now: float) -> Reading:
    """`http.*`: every HTTP source's window as one (sketches merged, counts summed)."""
    if not sources:
        reason = "no HTTP sources"
        return Reading(
            values=dict.fromkeys(POOLED_FIELDS), reasons=dict.fromkeys(POOLED_FIELDS, reason)
        )
    views = [source.view(now) for source in sources]
    values, reasons = window_values(
        pool_views(views), lag_blown=any(source.lag_blown for source in sources)
    )
    rates = [rate for rate in (view.rate() for view in views) if rate is not None]
    values["rps"] = sum(rates) if rates else None  # each source's own rate, summed
    if rates:
        reasons.pop("rps", None)
    return Reading(
        values={name: values[name] for name in POOLED_FIELDS},
        reasons={name: text for name, text in reasons.items() if name in POOLED_FIELDS},
    )
