"""The redis source without a server: INFO parsing, windowed deltas, resets, REST answers."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping

import httpx
import pytest
import redis.exceptions

from cockpit.core.catalog import KIND_FIELDS
from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import Reading, SourceDown
from cockpit.core.sources.redis import RedisSource, describe
from cockpit.core.sources.redis_info import (
    COUNTER_RESET,
    FIRST_SAMPLE,
    NO_MEMORY_LIMIT,
    NO_READS,
    CounterWindow,
    Delta,
    NoDelta,
    Sample,
    number,
    parse_info,
    redis_reading,
)

INFO_TEXT = (
    "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nuptime_in_seconds:100\r\n"
    "executable:/usr/bin/redis-server\r\n\r\n# Clients\r\nconnected_clients:3\r\n\r\n"
    "# Memory\r\nused_memory:1000\r\nmaxmemory:4000\r\n\r\n# Stats\r\n"
    "total_commands_processed:50\r\nkeyspace_hits:10\r\nkeyspace_misses:5\r\n"
    "evicted_keys:0\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
)


def info(**changes: object) -> dict[str, str]:
    """A parsed INFO with the counters this source reads; keyword None removes a key."""
    base = {
        "redis_version": "7.0.15",
        "run_id": "abc123",
        "uptime_in_seconds": "100",
        "connected_clients": "3",
        "used_memory": "1000",
        "maxmemory": "4000",
        "total_commands_processed": "50",
        "keyspace_hits": "10",
        "keyspace_misses": "5",
        "evicted_keys": "0",
        "total_connections_received": "7",
        "total_net_input_bytes": "900",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = str(value)
    return base


def sample(t: float, **changes: object) -> Sample:
    return Sample.from_info(t, info(**changes))


def reading_after(*steps: tuple[float, Mapping[str, str]], window_s: float = 60.0) -> Reading:
    window = CounterWindow(window_s)
    delta: Delta | NoDelta = NoDelta("no samples")
    for t, parsed in steps:
        delta = window.add(Sample.from_info(t, parsed))
    return redis_reading(steps[-1][1], delta, latency_ms=0.5)


# -- parsing ----------------------------------------------------------------------------------


def test_parse_info_reads_key_values_and_skips_headers_and_blanks() -> None:
    parsed = parse_info(INFO_TEXT)
    assert parsed["redis_version"] == "7.0.15"
    assert parsed["keyspace_hits"] == "10"
    assert parsed["executable"] == "/usr/bin/redis-server"  # split at the first colon only
    assert parsed["db0"] == "keys=1,expires=0,avg_ttl=0"
    assert not any(key.startswith("#") or key == "" for key in parsed)


def test_parse_info_ignores_lines_without_a_colon() -> None:
    assert parse_info("garbage\nkeyspace_hits:3\n") == {"keyspace_hits": "3"}


def test_number_is_none_when_missing_or_not_numeric() -> None:
    parsed = {"a": "12", "b": "1.5", "c": "x"}
    assert number(parsed, "a") == 12.0
    assert number(parsed, "b") == 1.5
    assert number(parsed, "c") is None
    assert number(parsed, "d") is None


def test_sample_takes_counters_run_id_and_uptime() -> None:
    taken = Sample.from_info(5.0, parse_info(INFO_TEXT))
    assert taken.run_id == "abc123"
    assert taken.uptime_s == 100.0
    assert taken.counters["keyspace_hits"] == 10
    assert taken.counters["total_commands_processed"] == 50


# -- fields -----------------------------------------------------------------------------------


def test_first_sample_gives_no_delta_fields_but_gauges() -> None:
    result = reading_after((0.0, info()))
    assert set(result.values) == set(KIND_FIELDS["redis"])
    for field in ("hit_rate", "ops_per_sec", "evicted_per_min"):
        assert result.values[field] is None
        assert result.reasons[field] == FIRST_SAMPLE
    assert result.values["memory_used"] == 0.25
    assert result.values["memory_bytes"] == 1000.0
    assert result.values["clients"] == 3.0
    assert result.values["latency_ms"] == 0.5
    assert result.values["up"] == 1.0


def test_hit_rate_ops_and_evictions_from_deltas() -> None:
    result = reading_after(
        (0.0, info()),
        (
            10.0,
            info(
                keyspace_hits=10 + 30,
                keyspace_misses=5 + 10,
                total_commands_processed=50 + 2 + 100,  # our INFO and PING, then 100 others
                evicted_keys=4,
            ),
        ),
    )
    assert result.values["hit_rate"] == 0.75
    assert result.values["ops_per_sec"] == 10.0
    assert result.values["evicted_per_min"] == 24.0
    assert result.reasons == {}
    assert result.details["hits"] == 30
    assert result.details["misses"] == 10
    assert result.details["window_s"] == 10.0


def test_an_idle_server_reads_zero_ops_after_our_own_commands_are_subtracted() -> None:
    result = reading_after(
        (0.0, info()),
        (2.0, info(total_commands_processed=52)),
        (4.0, info(total_commands_processed=54)),
    )
    assert result.values["ops_per_sec"] == 0.0


def test_no_reads_in_the_window_is_unknown_not_zero() -> None:
    result = reading_after((0.0, info()), (2.0, info(total_commands_processed=60)))
    assert result.values["hit_rate"] is None
    assert result.reasons["hit_rate"] == NO_READS


def test_maxmemory_zero_means_no_limit() -> None:
    result = reading_after((0.0, info(maxmemory=0)))
    assert result.values["memory_used"] is None
    assert result.reasons["memory_used"] == NO_MEMORY_LIMIT
    assert result.values["memory_bytes"] == 1000.0


def test_missing_info_keys_are_unknown_with_the_key_named() -> None:
    partial = info(maxmemory=None, keyspace_misses=None, evicted_keys=None, connected_clients=None)
    result = reading_after((0.0, partial), (2.0, partial))
    assert result.reasons["memory_used"] == "INFO has no maxmemory"
    assert result.reasons["hit_rate"] == "INFO has no keyspace_misses"
    assert result.reasons["evicted_per_min"] == "INFO has no evicted_keys"
    assert result.reasons["clients"] == "INFO has no connected_clients"
    assert result.values["ops_per_sec"] == 0.0  # 50 -> 50 with 2 own commands: clamped at 0


# -- resets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "after_reset",
    [
        pytest.param({"keyspace_hits": 3}, id="counter-backwards"),
        pytest.param({"run_id": "new", "keyspace_hits": 900}, id="run-id-changed"),
        pytest.param({"uptime_in_seconds": 4, "keyspace_hits": 900}, id="uptime-went-down"),
        pytest.param({"total_connections_received": 1, "keyspace_hits": 900}, id="witness"),
    ],
)
def test_a_reset_makes_delta_fields_unknown_and_restarts_the_window(
    after_reset: dict[str, object],
) -> None:
    window = CounterWindow(60.0)
    window.add(sample(0.0))
    window.add(sample(2.0, keyspace_hits=20))
    reset = window.add(sample(4.0, **after_reset))
    assert reset == NoDelta(COUNTER_RESET)
    assert len(window) == 1
    hits_then = int(str(after_reset["keyspace_hits"]))
    later = window.add(
        sample(6.0, **{**after_reset, "keyspace_hits": hits_then + 4, "keyspace_misses": 9})
    )
    assert isinstance(later, Delta)
    assert later.counts["keyspace_hits"] == 4  # counted from the reset sample, not before it
    assert later.counts["keyspace_misses"] == 4
    assert later.span_s == 2.0


def test_reset_reason_reaches_the_reading() -> None:
    result = reading_after((0.0, info()), (2.0, info(keyspace_hits=0)))
    for field in ("hit_rate", "ops_per_sec", "evicted_per_min"):
        assert result.reasons[field] == COUNTER_RESET


def test_clock_going_backwards_restarts_the_window() -> None:
    window = CounterWindow(60.0)
    window.add(sample(10.0))
    assert isinstance(window.add(sample(5.0)), NoDelta)
    assert isinstance(window.add(sample(7.0)), Delta)


# -- the window -------------------------------------------------------------------------------


def test_deltas_run_from_the_oldest_sample_inside_the_window() -> None:
    window = CounterWindow(10.0)
    for t in range(0, 21, 2):  # hits grow by 1 per second
        delta = window.add(sample(float(t), keyspace_hits=t, total_commands_processed=100 + t))
    assert isinstance(delta, Delta)
    assert delta.span_s == 10.0  # 10 -> 20; the samples before 10 s were dropped
    assert delta.counts["keyspace_hits"] == 10
    assert delta.polls == 5
    assert len(window) == 6


def test_memory_stays_bounded_over_a_long_run() -> None:
    window = CounterWindow(10.0)
    for t in range(10_000):
        window.add(sample(float(t), keyspace_hits=t))
    assert len(window) == 11


def test_polls_further_apart_than_the_window_still_have_a_baseline() -> None:
    window = CounterWindow(5.0, max_span_s=2 * 30.0)
    window.add(sample(0.0))
    delta = window.add(sample(30.0, keyspace_hits=40))
    assert isinstance(delta, Delta)
    assert delta.span_s == 30.0
    assert delta.counts["keyspace_hits"] == 30


def test_a_long_gap_restarts_the_window_instead_of_averaging_over_it() -> None:
    window = CounterWindow(60.0, max_span_s=4.0)
    window.add(sample(0.0))
    gap = window.add(sample(600.0, keyspace_hits=99))
    assert gap == NoDelta("previous sample is 600 s old (window 60 s)")
    assert isinstance(window.add(sample(602.0, keyspace_hits=100)), Delta)


# -- failures in one line ---------------------------------------------------------------------


def chained(error: Exception, cause: BaseException) -> Exception:
    error.__context__ = cause  # as when raised while handling `cause`, the way redis-py does
    return error


REFUSED = ConnectionRefusedError(111, "Connect call failed")
WRONGPASS = "invalid username-password pair or user is disabled."
NOAUTH = "auth failed (NOAUTH: the server wants a password and the url has none)"
TIMED_OUT = "timed out after 0.5 s (127.0.0.1:6379)"
DNS = socket.gaierror(-2, "Name or service not known")
NOPERM = "NOPERM no permissions to run 'info'"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.exceptions.AuthenticationError(WRONGPASS), f"auth failed (WRONGPASS {WRONGPASS})"),
        (redis.exceptions.AuthenticationError("Authentication required."), NOAUTH),
        (redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:6379"), TIMED_OUT),
        (TimeoutError(), TIMED_OUT),
        (httpx.ReadTimeout("read"), TIMED_OUT),
        (
            chained(redis.exceptions.ConnectionError("Error 111"), REFUSED),
            "connection refused (127.0.0.1:6379)",
        ),
        (
            chained(httpx.ConnectError("All attempts failed"), REFUSED),
            "connection refused (127.0.0.1:6379)",
        ),
        (
            chained(redis.exceptions.ConnectionError("Error -2"), DNS),
            "DNS lookup failed for 127.0.0.1 (Name or service not known)",
        ),
        (redis.exceptions.NoPermissionError(NOPERM), f"permission denied ({NOPERM})"),
        (
            redis.exceptions.ConnectionError("Connection closed by server."),
            "Connection closed by server. (127.0.0.1:6379)",
        ),
    ],
)
def test_describe_words_each_failure_in_one_line(error: Exception, expected: str) -> None:
    assert describe(error, "127.0.0.1:6379", 0.5) == expected


# -- the REST path, against httpx's MockTransport ------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
REST_URL = "https://eu1-example.upstash.io"


def rest_spec(token: str | None = "tok") -> SourceSpec:
    settings = {"window_s": 60.0, "url": REST_URL, "token": token}
    return SourceSpec("cache", "redis", every_s=2.0, timeout_s=0.5, settings=settings)


async def poll_rest(handler: Handler, *, token: str | None = "tok", polls: int = 1) -> list[object]:
    times = iter([100.0, 110.0, 120.0, 130.0])
    results: list[object] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        source = RedisSource(rest_spec(token), clock=lambda: next(times), http_client=client)
        try:
            for _ in range(polls):
                results.append(await source.poll(0.0))
        finally:
            await source.close()
            await source.close()  # twice is fine
        assert not client.is_closed  # borrowed, not ours to close
    return results


async def test_rest_poll_posts_json_commands_with_the_bearer_token() -> None:
    seen: list[tuple[str, str, str | None, object]] = []
    hits = iter([10, 40])

    def handler(request: httpx.Request) -> httpx.Response:
        command = json.loads(request.content)
        seen.append(
            (request.method, str(request.url), request.headers.get("authorization"), command)
        )
        if command == ["PING"]:
            return httpx.Response(200, json={"result": "PONG"})
        text = INFO_TEXT.replace("keyspace_hits:10", f"keyspace_hits:{next(hits)}")
        return httpx.Response(200, json={"result": text})

    first, second = await poll_rest(handler, polls=2)
    assert seen[:2] == [
        ("POST", REST_URL, "Bearer tok", ["INFO"]),
        ("POST", REST_URL, "Bearer tok", ["PING"]),
    ]
    assert isinstance(first, Reading)
    assert first.reasons["hit_rate"] == FIRST_SAMPLE
    assert isinstance(second, Reading)
    assert second.values["hit_rate"] == 1.0  # 30 more hits, no more misses
    assert second.values["memory_used"] == 0.25
    latency = second.values["latency_ms"]
    assert latency is not None
    assert latency >= 0.0


Answer = httpx.Response
HTTP_401 = "HTTP 401 from Upstash"


@pytest.mark.parametrize(
    ("token", "response", "expected"),
    [
        ("bad", Answer(401, text="Unauthorized"), f"{HTTP_401} (check the token)"),
        (None, Answer(401, text="Unauthorized"), f"{HTTP_401} (no token configured)"),
        ("tok", Answer(400, json={"error": "ERR unknown"}), "HTTP 400 from Upstash: ERR unknown"),
        ("tok", Answer(502, text="<html>oops</html>"), "HTTP 502 from Upstash: Bad Gateway"),
        ("tok", Answer(200, json={"error": "ERR max requests"}), "Upstash: ERR max requests"),
        ("tok", Answer(200, text="hello"), "unexpected answer from Upstash: hello"),
        ("tok", Answer(200, json={"result": 42}), "INFO answered int, not text"),
    ],
)
async def test_rest_failures_are_one_line(
    token: str | None, response: httpx.Response, expected: str
) -> None:
    (result,) = await poll_rest(lambda request: response, token=token)
    assert result == SourceDown(expected)


async def test_rest_connection_refused_is_source_down() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as refused:
            raise httpx.ConnectError("All connection attempts failed") from refused

    (result,) = await poll_rest(handler)
    assert result == SourceDown("connection refused (eu1-example.upstash.io)")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis://:secret@cache:port/0",
            "bad url 'redis://…@cache:port/0': Port could not be cast to integer value as 'port'",
        ),
        ("https://cache:port", "bad url 'https://cache:port': Invalid port: 'port'"),
    ],
)
async def test_a_url_no_client_can_use_is_down_with_the_reason_and_no_password(
    url: str, expected: str
) -> None:
    spec = SourceSpec("cache", "redis", every_s=2.0, timeout_s=0.5, settings={"url": url})
    source = RedisSource(spec)
    try:
        assert await source.poll(0.0) == SourceDown(expected)
    finally:
        await source.close()
