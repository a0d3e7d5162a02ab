"""HttpSource against a real HTTP server on loopback, checked against the server's own log.

Each poll is wrapped in asyncio.wait_for(timeout) the way the scheduler does it; a poll that
the wait_for had to cancel shows up as SCHEDULER_TIMEOUT, which these tests never expect: the
source keeps its own deadline and answers first.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from cockpit.core.metrics.sketch import sketch_quantile
from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.http import HTTP2, HttpSource, _tls, new_client
from tests.servers.http_server import H2Server, HttpServerControl

pytestmark = pytest.mark.integration

SCHEDULER_TIMEOUT = SourceDown("the scheduler's wait_for cancelled the poll")

MakeSource = Callable[..., HttpSource]


@pytest.fixture
async def make_source(http_server: HttpServerControl) -> AsyncIterator[MakeSource]:
    sources: list[HttpSource] = []

    def make(timeout_s: float = 1.0, every_s: float = 1.0) -> HttpSource:
        settings = {
            "window_s": 60.0,
            "url": http_server.url,
            "method": "GET",
            "headers": {},
            "expect": None,
        }
        source = HttpSource(SourceSpec("api", "http", every_s, timeout_s, settings))
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.close()


async def poll(source: HttpSource, planned_at: float | None = None) -> PollResult:
    planned = time.perf_counter() if planned_at is None else planned_at
    try:
        return await asyncio.wait_for(source.poll(planned), source.spec.timeout_s)
    except TimeoutError:
        return SCHEDULER_TIMEOUT


def reading(result: PollResult) -> Reading:
    assert isinstance(result, Reading), result
    return result


async def test_p50_matches_the_servers_own_handling_time(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    http_server.configure(delay_s=0.050)
    source = make_source()
    every, planned = 0.070, time.perf_counter() + 0.01
    schedule = []
    for _ in range(25):  # a fixed schedule; a tick missed while a poll ran is skipped
        late = time.perf_counter() - planned
        if late > 0:
            planned += math.ceil(late / every) * every
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        result = reading(await poll(source, planned))
        schedule.append(planned)
        planned += every
    answers = http_server.wait_answers(25)
    assert len(answers) == 25
    server_p50 = statistics.median(a.handling_s * 1000 for a in answers)
    p50 = result.values["p50"]
    assert p50 is not None
    assert abs(p50 - 50.0) < 10.0
    # Never faster than the server (beyond the sketch's 1%), a few ms of loopback and client.
    assert server_p50 * 0.99 <= p50 < server_p50 + 8.0
    assert result.values["samples"] == 25
    assert result.values["rps"] == pytest.approx(24 / (schedule[-1] - schedule[0]), rel=0.01)
    assert result.values["error_rate"] == 0.0


async def test_error_rate_is_what_the_server_answered(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    http_server.configure(error_fraction=0.20)
    source = make_source()
    for _ in range(100):
        result = reading(await poll(source))
    answers = http_server.wait_answers(100)
    assert len(answers) == 100
    truth = sum(a.status == 500 for a in answers) / len(answers)
    assert result.values["error_rate"] == pytest.approx(truth)
    # And the server did what it was told, within 4 standard deviations of 20%.
    assert abs(truth - 0.20) <= 4 * math.sqrt(0.2 * 0.8 / 100)
    assert result.values["rate_4xx"] == 0.0
    assert result.values["up"] == 1.0


async def test_429s_are_rate_limited_not_errors(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    http_server.configure(status=429)
    source = make_source()
    for _ in range(5):
        result = reading(await poll(source))
    assert [a.status for a in http_server.wait_answers(5)] == [429] * 5
    assert result.values["rate_limited"] == 1.0
    assert result.values["error_rate"] == 0.0
    assert "slow down" in str(result.details["advice"])


async def test_a_stopped_server_is_down_within_three_polls_and_recovers_in_one(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    source = make_source()
    for _ in range(5):
        reading(await poll(source))
    http_server.stop()
    results = [await poll(source) for _ in range(3)]
    assert all(isinstance(r, Reading) and r.values["up"] == 1.0 for r in results[:2])
    assert results[2] == SourceDown("connection refused (3 probes in a row)")
    http_server.start()
    back = reading(await poll(source))
    assert back.values["up"] == 1.0
    assert back.values["samples"] == 9  # the refused probes were counted, not dropped
    assert back.values["error_rate"] == pytest.approx(3 / 9)


async def test_answers_slower_than_the_timeout_are_errors_then_down(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    http_server.configure(delay_s=1.0)
    source = make_source(timeout_s=0.3)
    results = [await poll(source) for _ in range(3)]
    assert [reading(r).values["error_rate"] for r in results[:2]] == [1.0, 1.0]
    assert results[2] == SourceDown("timed out after 0.3s (3 probes in a row)")
    view = source.view(time.time())
    slowest = sketch_quantile(view.sketch, 0.0)
    assert view.count == 3
    assert slowest is not None
    assert slowest >= 300.0 * 0.99  # latency >= the timeout (to the sketch's 1%)
    http_server.configure()
    back = reading(await poll(source))
    assert back.values["samples"] == 4
    assert back.values["error_rate"] == pytest.approx(3 / 4)


async def test_a_hung_server_is_down_within_three_polls_and_recovers(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    source = make_source(timeout_s=0.3)
    reading(await poll(source))
    http_server.configure(hang=True)
    results = [await poll(source) for _ in range(3)]
    assert all(isinstance(r, Reading) for r in results[:2]), results
    assert results[2] == SourceDown("timed out after 0.3s (3 probes in a row)")
    assert sum(a.status is None for a in http_server.wait_answers(4)) == 3  # they did arrive
    http_server.configure()
    back = reading(await poll(source))
    assert back.values["error_rate"] == pytest.approx(3 / 5)


async def test_a_slow_cleanup_after_our_deadline_is_still_our_answer() -> None:
    # On a loaded machine the client's clean-up after our own deadline can outlast the margin,
    # so the scheduler's wait_for cancels the poll too: the poll must still answer.
    async def hang(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # a clean-up slower than the 5 ms margin
        raise AssertionError("unreachable")

    settings = {"window_s": 60.0, "url": "http://app.test/", "headers": {}, "expect": None}
    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as client:
        source = HttpSource(SourceSpec("api", "http", 1.0, 0.1, settings), client=client)
        result = reading(await poll(source))
        assert result.values["error_rate"] == 1.0
        assert result.details["last_error"] == "timed out after 0.1s"
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_https_probes_speak_http2_when_the_server_does(h2_server: H2Server) -> None:
    assert HTTP2  # httpx[http2] is a dependency
    settings = {"window_s": 60.0, "url": h2_server.url, "headers": {}, "expect": None}
    async with new_client(verify=h2_server.client_ssl) as client:
        source = HttpSource(SourceSpec("api", "http", 1.0, 1.0, settings), client=client)
        for _ in range(10):
            result = reading(await poll(source))
    assert result.details["protocol"] == "HTTP/2"
    assert result.details["last_status"] == 200
    assert result.values["error_rate"] == 0.0
    assert result.values["p50"] is not None


async def test_each_source_has_its_own_client_and_they_share_one_tls_context(
    http_server: HttpServerControl, make_source: MakeSource
) -> None:
    # One pool per source: a pool shared by 200 sources is scanned whole for every request.
    first, second = make_source(), make_source()
    reading(await poll(first))
    reading(await poll(second))
    client, other = first.client, second.client
    assert client is not None
    assert other is not None
    assert other is not client
    assert _tls() is _tls()  # the CA bundle is loaded once
    await first.close()
    assert client.is_closed
    assert not other.is_closed
    reading(await poll(second))
    await second.close()
    assert other.is_closed
    assert len(http_server.wait_answers(3)) == 3
