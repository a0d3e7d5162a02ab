"""HttpSource logic through httpx's MockTransport and an injected clock: no network, no sleep."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import httpx
import pytest

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import Reading, SourceDown
from cockpit.core.sources.http import (
    LAG_REASON,
    HttpSource,
    classify,
    describe_failure,
    pooled_reading,
)

WALL = 1_700_000_000.0


@dataclass
class FakeTime:
    """perf_counter and wall clock moving together; the transport advances them."""

    t: float = 100.0

    def timer(self) -> float:
        return self.t

    def clock(self) -> float:
        return WALL + self.t


@dataclass
class Server:
    """A scripted transport: each request takes `took` seconds and answers the next item."""

    time: FakeTime
    script: list[int | Exception]
    took: float = 0.020
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.time.t += self.took
        item = self.script[(len(self.requests) - 1) % len(self.script)]
        if isinstance(item, Exception):
            raise item
        return httpx.Response(item, text="ok")


def spec(**settings: object) -> SourceSpec:
    base: dict[str, object] = {
        "window_s": 60.0,
        "url": "http://app.test/health",
        "method": "GET",
        "headers": {"X-Probe": "cockpit"},
        "expect": None,
    }
    base.update(settings)
    return SourceSpec("api", "http", every_s=1.0, timeout_s=1.0, settings=base)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[HttpSource, Server, FakeTime]]]:
    clients: list[httpx.AsyncClient] = []

    def build(
        script: Iterable[int | Exception], took: float = 0.020, **kwargs: object
    ) -> tuple[HttpSource, Server, FakeTime]:
        fake = FakeTime()
        server = Server(fake, list(script), took)
        client = httpx.AsyncClient(transport=httpx.MockTransport(server))
        clients.append(client)
        settings = kwargs.pop("settings", {})
        assert isinstance(settings, dict)
        source = HttpSource(
            spec(**settings),
            clock=fake.clock,
            timer=fake.timer,
            client=client,
            **kwargs,  # type: ignore[arg-type]
        )
        return source, server, fake

    yield build
    for client in clients:
        await client.aclose()


async def run(source: HttpSource, fake: FakeTime, polls: int, every: float = 1.0) -> list[object]:
    results: list[object] = []
    for _ in range(polls):
        planned = fake.t
        results.append(await source.poll(planned))
        fake.t = planned + every
    return results


def reading(result: object) -> Reading:
    assert isinstance(result, Reading), result
    return result


@pytest.mark.parametrize(
    ("status", "marks"),
    [
        (200, ()),
        (204, ()),
        (302, ()),
        (404, ("4xx", "error")),
        (401, ("4xx", "error")),
        (429, ("429",)),
        (500, ("error",)),
        (503, ("error",)),
        (101, ("error",)),
    ],
)
def test_classify_with_the_default_expect(status: int, marks: tuple[str, ...]) -> None:
    assert classify(status) == marks


def test_an_expected_4xx_is_still_a_4xx_but_not_an_error() -> None:
    assert classify(404, frozenset({200, 404})) == ("4xx",)
    assert classify(200, frozenset({204})) == ("error",)
    assert classify(429, frozenset({200})) == ("429",)


async def test_fractions_over_all_attempts(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    # 20 attempts: 12 ok, 3 x 500, 2 x 404, 3 x 429
    script = [200] * 12 + [500] * 3 + [404] * 2 + [429] * 3
    source, server, fake = make(script)
    last = reading((await run(source, fake, 20))[-1])
    assert last.values["samples"] == 20
    assert last.values["error_rate"] == pytest.approx(5 / 20)  # 500s and the unexpected 404s
    assert last.values["rate_4xx"] == pytest.approx(2 / 20)
    assert last.values["rate_limited"] == pytest.approx(3 / 20)
    assert last.values["up"] == 1.0
    assert last.values["rps"] == pytest.approx(1.0)
    assert "slow down" in str(last.details["advice"])
    assert server.requests[0].method == "GET"
    assert server.requests[0].headers["X-Probe"] == "cockpit"


async def test_expect_setting_changes_what_is_an_error(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, _, fake = make([200, 404], settings={"expect": (200, 404), "method": "head"})
    last = reading((await run(source, fake, 10))[-1])
    assert last.values["error_rate"] == 0.0
    assert last.values["rate_4xx"] == pytest.approx(0.5)
    assert "advice" not in last.details


async def test_latency_runs_from_the_planned_time(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, _, fake = make([200], took=0.050)
    for _ in range(20):
        planned = fake.t
        fake.t += 0.200  # the poll started 200 ms late
        result = reading(await source.poll(planned))
        fake.t = planned + 1.0
    assert result.values["p50"] == pytest.approx(250.0, rel=0.01)
    assert result.values["p99"] == pytest.approx(250.0, rel=0.01)
    assert result.values["mean"] == pytest.approx(250.0)


async def test_too_few_samples_say_how_many(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, _, fake = make([200])
    first = reading((await run(source, fake, 1))[0])
    assert first.values["p50"] is None
    assert first.reasons["p50"] == "1 samples < 10 needed"
    assert first.values["rps"] is None
    assert first.values["error_rate"] == 0.0
    twelfth = reading((await run(source, fake, 11))[-1])
    assert twelfth.values["p50"] == pytest.approx(20.0, rel=0.01)
    assert twelfth.values["mean"] == pytest.approx(20.0)
    assert twelfth.values["p95"] is None
    assert twelfth.reasons["p99"] == "12 samples < 20 needed"
    assert twelfth.values["samples"] == 12


async def test_three_transport_failures_make_it_down_and_all_are_counted(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    source, _, fake = make([200] * 5 + [refused] * 4 + [503, 200])
    results = await run(source, fake, 11)
    second_failure = reading(results[6])
    assert second_failure.values["up"] == 1.0
    assert second_failure.values["error_rate"] == pytest.approx(2 / 7)
    assert second_failure.details["last_error"] == "connection refused"
    assert results[7] == SourceDown("connection refused (3 probes in a row)")
    assert results[8] == SourceDown("connection refused (4 probes in a row)")
    back = reading(results[9])  # a 503 is an HTTP answer: up, with an error
    assert back.values["samples"] == 10
    assert back.values["error_rate"] == pytest.approx(5 / 10)
    assert "failures_in_a_row" not in back.details
    assert reading(results[10]).values["error_rate"] == pytest.approx(5 / 11)


async def test_a_timeout_is_an_error_with_latency_of_at_least_the_timeout(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, _, fake = make([httpx.ReadTimeout("timed out")] * 3 + [200] * 20, took=0.010)
    results = await run(source, fake, 23)
    assert results[2] == SourceDown("timed out after 1s (3 probes in a row)")
    last = reading(results[-1])
    assert last.values["error_rate"] == pytest.approx(3 / 23)
    assert last.values["p99"] == pytest.approx(1000.0, rel=0.01)
    assert last.values["p50"] == pytest.approx(10.0, rel=0.01)


async def test_a_probe_due_longer_ago_than_the_timeout_is_a_timeout_not_a_request(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, server, fake = make([200])
    result = reading(await source.poll(fake.t - 1.5))
    assert server.requests == []
    assert result.values["error_rate"] == 1.0
    assert source.view(fake.clock()).sketch.get_quantile_value(1.0) == pytest.approx(
        1500.0, rel=0.01
    )


async def test_cancelled_at_the_timeout_still_records_the_attempt() -> None:
    fake = FakeTime()
    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as client:
        source = HttpSource(spec(), clock=fake.clock, timer=fake.timer, client=client)
        task = asyncio.create_task(source.poll(fake.t))
        await arrived.wait()
        fake.t += 1.0  # the scheduler's wait_for fires at the timeout
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert source.view(fake.clock()).count == 1
        assert source.reading(fake.clock()).values["error_rate"] == 1.0
        # Cancelled early (shutdown) is not an attempt.
        arrived.clear()
        task = asyncio.create_task(source.poll(fake.t))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert source.view(fake.clock()).count == 1
        await source.close()
        assert not client.is_closed  # injected: the test owns it


async def test_loop_lag_flags_samples_and_hides_latency_while_blown(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    lag = {"ok": True}
    source, _, fake = make([200], lag_ok=lambda: lag["ok"])
    await run(source, fake, 20)
    lag["ok"] = False
    blown = reading((await run(source, fake, 1))[0])
    assert blown.values["p50"] is None
    assert blown.reasons["p99"] == LAG_REASON
    assert blown.values["error_rate"] == 0.0
    assert blown.values["samples"] == 21
    assert blown.details["lag_flagged"] == 1
    lag["ok"] = True
    calm = reading((await run(source, fake, 1))[0])
    assert calm.values["p50"] == pytest.approx(20.0, rel=0.01)
    assert calm.details["lag_flagged"] == 1


async def test_the_window_forgets_old_attempts(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    source, _, fake = make([500])
    await run(source, fake, 5)
    later = source.reading(fake.clock() + 120.0)
    assert later.values["samples"] == 0
    assert later.values["error_rate"] is None
    assert later.reasons["error_rate"] == "no probes in the window yet"


async def test_pooled_reading_merges_sketches_and_sums_counts(
    make: Callable[..., tuple[HttpSource, Server, FakeTime]],
) -> None:
    fast, _, fast_time = make([200], took=0.010)
    slow, _, slow_time = make([500] + [200] * 4, took=0.400)
    await run(fast, fast_time, 40, every=0.5)
    await run(slow, slow_time, 10, every=2.0)
    now = max(fast_time.clock(), slow_time.clock())
    pooled = pooled_reading([fast, slow], now)
    assert set(pooled.values) == {"p50", "p95", "p99", "error_rate", "rate_4xx", "rps"}
    assert pooled.values["rate_4xx"] == 0.0
    assert pooled.values["p50"] == pytest.approx(10.0, rel=0.01)
    assert pooled.values["p95"] == pytest.approx(400.0, rel=0.01)
    assert pooled.values["error_rate"] == pytest.approx(2 / 50)  # not the max of 0 and 0.2
    assert pooled.values["rps"] == pytest.approx(2.0 + 0.5)
    empty = pooled_reading([], now)
    assert empty.values["p50"] is None
    assert empty.reasons["rps"] == "no HTTP sources"


async def test_a_garbled_answer_is_a_failed_probe_not_a_crash() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    async with httpx.AsyncClient(transport=httpx.MockTransport(garbled)) as client:
        source = HttpSource(spec(), client=client)
        result = reading(await source.poll(time.perf_counter()))
    assert result.values["error_rate"] == 1.0
    assert str(result.details["last_error"]).startswith("bad answer: ")


def test_failures_read_as_one_line_for_a_person() -> None:
    dns = httpx.ConnectError("[Errno -2] Name or service not known")
    dns.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert describe_failure(dns, 1.0).startswith("DNS lookup failed: ")
    refused = httpx.ConnectError("All connection attempts failed")
    refused.__context__ = ConnectionRefusedError(111, "Connect call failed")
    assert describe_failure(refused, 1.0) == "connection refused"
    # A name with an IPv6 and an IPv4 address, both refused: asyncio joins the two errors.
    both = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 9)"
    )
    joined = httpx.ConnectError(str(both))
    joined.__cause__ = both
    assert describe_failure(joined, 1.0) == "connection refused"
    unreachable = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
        "[Errno 113] Connect call failed ('10.0.0.9', 9)"
    )
    assert describe_failure(httpx.ConnectError(str(unreachable)), 1.0).startswith("cannot connect")
    assert describe_failure(httpx.ConnectTimeout(""), 0.5) == "connect timed out after 0.5s"
    assert describe_failure(TimeoutError(), 2.0) == "timed out after 2s"
    assert describe_failure(httpx.ReadError(""), 1.0) == "connection reset by the server"
    closed = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert describe_failure(closed, 1.0) == (
        "bad answer: Server disconnected without sending a response."
    )
