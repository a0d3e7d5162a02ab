"""The redis source against a real redis-server (and the Upstash-like REST stand-in).

Every value is checked against ground truth the test takes itself: its own INFO, read with
its own client and redis-py's own INFO parser. Clocks are injected where a rate is checked, so
the window's length is exact and the expected rate is a plain division.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.redis import RedisSource
from cockpit.core.sources.redis_info import COUNTER_RESET, FIRST_SAMPLE, NO_MEMORY_LIMIT
from tests.servers.redis_server import RedisServer, UpstashStandIn

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.5
# The scheduler waits `timeout_s` plus this grace (schedule.TIMEOUT_GRACE_S) so the source's
# own, better-worded timeout answers first; a poll still running then is a bug here.
SCHEDULER_GRACE_S = 1.0

MakeSource = Callable[..., RedisSource]


async def poll(source: RedisSource) -> PollResult:
    """One poll the way the scheduler runs it."""
    try:
        return await asyncio.wait_for(
            source.poll(time.perf_counter()), source.spec.timeout_s + SCHEDULER_GRACE_S
        )
    except TimeoutError:
        return SourceDown("the scheduler had to cancel the poll")


async def reading(source: RedisSource) -> Reading:
    result = await poll(source)
    assert isinstance(result, Reading), result
    return result


def ticks(*times: float) -> Callable[[], float]:
    """A clock that answers the given times, one per call (one call per successful poll)."""
    it: Iterator[float] = iter(times)
    return lambda: next(it)


@pytest.fixture
async def own(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """The test's own client, connected before any counting starts."""
    client = Redis(port=redis_server.port, decode_responses=True, protocol=2)
    await client.ping()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def make_source() -> AsyncIterator[MakeSource]:
    made: list[RedisSource] = []

    def make(
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        token: str | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> RedisSource:
        settings = {"window_s": 60.0, "url": url, "token": token}
        spec = SourceSpec("cache", "redis", every_s=0.2, timeout_s=TIMEOUT_S, settings=settings)
        source = RedisSource(spec, clock=clock, http_client=http_client)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


async def reads(own: Redis, hits: int, misses: int) -> tuple[int, int]:
    """GET existing and missing keys; the server's own count of them, from INFO deltas."""
    await own.mset({f"key:{i}": "v" for i in range(10)})
    before = await own.info("stats")
    for i in range(hits):
        assert await own.get(f"key:{i % 10}") == "v"
    for i in range(misses):
        assert await own.get(f"missing:{i}") is None
    after = await own.info("stats")
    return (
        after["keyspace_hits"] - before["keyspace_hits"],
        after["keyspace_misses"] - before["keyspace_misses"],
    )


async def test_hit_rate_is_the_servers_own_count(
    redis_server: RedisServer, own: Redis, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url)
    first = await reading(source)
    assert first.values["hit_rate"] is None
    assert first.reasons["hit_rate"] == FIRST_SAMPLE

    hits, misses = await reads(own, hits=30, misses=10)
    assert (hits, misses) == (30, 10)
    second = await reading(source)
    assert second.values["hit_rate"] == hits / (hits + misses)
    assert (second.details["hits"], second.details["misses"]) == (30, 10)
    latency = second.values["latency_ms"]
    assert latency is not None
    assert 0.0 < latency < TIMEOUT_S * 1000
    assert second.values["up"] == 1.0


async def test_ops_per_sec_counts_the_tests_commands_and_not_the_cockpits(
    redis_server: RedisServer, own: Redis, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url, clock=ticks(100.0, 110.0, 120.0, 130.0))
    await reading(source)
    before = await own.info("stats")
    pipe = own.pipeline(transaction=False)
    for _ in range(200):
        pipe.incr("counter")
    await pipe.execute()
    after = await own.info("stats")
    # The server counted our INFO "before" and the 200 INCRs; INFO "after" counts on the next.
    sent = after["total_commands_processed"] - before["total_commands_processed"] + 1
    assert sent == 202
    busy = await reading(source)
    assert busy.values["ops_per_sec"] == sent / 10.0

    await reading(source)  # idle from here: only the cockpit's own INFO and PING
    idle = await reading(source)
    assert idle.values["ops_per_sec"] == sent / 30.0  # the busy 10 s are still in the window


async def test_memory_used_follows_maxmemory(
    redis_server: RedisServer, own: Redis, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url)
    unlimited = await reading(source)
    assert unlimited.values["memory_used"] is None
    assert unlimited.reasons["memory_used"] == NO_MEMORY_LIMIT

    limit = 64 * 1024 * 1024
    await own.config_set("maxmemory", limit)
    used = (await own.info("memory"))["used_memory"]
    limited = await reading(source)
    assert limited.values["memory_bytes"] == pytest.approx(used, rel=0.05)
    assert limited.values["memory_used"] == pytest.approx(used / limit, rel=0.05)
    clients = (await own.info("clients"))["connected_clients"]
    assert clients == 2  # the test's and the cockpit's
    assert limited.values["clients"] == clients


async def test_evictions_per_minute(
    redis_server: RedisServer, own: Redis, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url, clock=ticks(0.0, 60.0))
    used = (await own.info("memory"))["used_memory"]
    await own.config_set("maxmemory-policy", "allkeys-random")
    await own.config_set("maxmemory", used + 512 * 1024)
    await reading(source)
    before = (await own.info("stats"))["evicted_keys"]
    pipe = own.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"big:{i}", "x" * 1024)
    await pipe.execute()
    evicted = (await own.info("stats"))["evicted_keys"] - before
    assert evicted > 100
    result = await reading(source)
    assert result.values["evicted_per_min"] == evicted  # over exactly one minute


async def test_config_resetstat_makes_hit_rate_unknown_then_counts_afresh(
    redis_server: RedisServer, own: Redis, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url)
    await reading(source)
    await reads(own, hits=9, misses=1)
    assert (await reading(source)).values["hit_rate"] == 0.9

    await own.config_resetstat()
    reset = await reading(source)
    assert reset.values["hit_rate"] is None
    assert reset.reasons["hit_rate"] == COUNTER_RESET
    assert reset.reasons["ops_per_sec"] == COUNTER_RESET

    hits, misses = await reads(own, hits=5, misses=5)
    assert (await reading(source)).values["hit_rate"] == hits / (hits + misses) == 0.5


async def test_a_stopped_server_is_down_within_three_polls_and_back_after_restart(
    redis_server: RedisServer, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url)
    await reading(source)
    redis_server.stop()
    results = [await poll(source) for _ in range(3)]
    assert isinstance(results[0], SourceDown), results  # the very next poll sees it
    assert all(isinstance(result, SourceDown) for result in results), results
    assert results[-1] == SourceDown(f"connection refused (127.0.0.1:{redis_server.port})")

    redis_server.start()
    back = await poll(source)
    assert isinstance(back, Reading), back
    assert back.reasons["hit_rate"] == COUNTER_RESET  # a new run_id: no delta across it


async def test_a_hung_server_times_out_and_recovers(
    redis_server: RedisServer, make_source: MakeSource
) -> None:
    source = make_source(redis_server.url)
    await reading(source)
    redis_server.pause()
    try:
        started = time.monotonic()
        hung = await poll(source)
        elapsed = time.monotonic() - started
        assert hung == SourceDown(f"timed out after 0.5 s (127.0.0.1:{redis_server.port})")
        assert TIMEOUT_S <= elapsed < TIMEOUT_S + 0.5
    finally:
        redis_server.resume()
    recovered = await poll(source)
    assert isinstance(recovered, Reading), recovered


async def test_no_retries_hide_in_the_client(make_source: MakeSource) -> None:
    """A server that hangs up when asked INFO costs one connection per poll, not several."""
    attempts = 0

    async def hang_up_on_info(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while header := await reader.readline():  # RESP: *<n>, then n times $<len> <arg>
                args = []
                for _ in range(int(header[1:])):
                    size = int((await reader.readline())[1:])
                    args.append((await reader.readexactly(size + 2))[:-2])
                if args[0].upper() == b"INFO":
                    break
                writer.write(b"+OK\r\n")  # the client's setup commands
                await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up_on_info, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        down = await poll(make_source(f"redis://127.0.0.1:{port}/0"))
    finally:
        server.close()
        await server.wait_closed()
    assert down == SourceDown(f"Connection closed by server. (127.0.0.1:{port})")
    assert attempts == 1


async def test_passwords(redis_server: RedisServer, own: Redis, make_source: MakeSource) -> None:
    await own.config_set("requirepass", "pw")
    where = f"127.0.0.1:{redis_server.port}"
    assert await poll(make_source(redis_server.url)) == SourceDown(
        "auth failed (NOAUTH: the server wants a password and the url has none)"
    )
    wrong = f"redis://:nope@{where}/0"
    assert await poll(make_source(wrong)) == SourceDown(
        "auth failed (WRONGPASS invalid username-password pair or user is disabled.)"
    )
    assert isinstance(await poll(make_source(redis_server.url, token="pw")), Reading)


async def test_upstash_rest_end_to_end(
    redis_server: RedisServer, upstash: UpstashStandIn, own: Redis, make_source: MakeSource
) -> None:
    async with httpx.AsyncClient(verify=upstash.client_ssl) as client:
        source = make_source(upstash.url, token=upstash.token, http_client=client)
        first = await reading(source)
        assert first.reasons["hit_rate"] == FIRST_SAMPLE
        hits, misses = await reads(own, hits=12, misses=4)
        second = await reading(source)
        assert second.values["hit_rate"] == hits / (hits + misses) == 0.75
        assert second.values["clients"] == 2  # the test's client and the stand-in's
        latency = second.values["latency_ms"]
        assert latency is not None
        assert latency > 0.0
        assert upstash.commands == [["INFO"], ["PING"], ["INFO"], ["PING"]]

        intruder = make_source(upstash.url, token="wrong", http_client=client)
        assert await poll(intruder) == SourceDown("HTTP 401 from Upstash (check the token)")
        assert len(upstash.commands) == 4  # refused before reaching redis

        redis_server.pause()  # Upstash's redis hangs: the REST call times out
        try:
            hung = await poll(source)
        finally:
            redis_server.resume()
        where = upstash.url.removeprefix("https://")
        assert hung == SourceDown(f"timed out after 0.5 s ({where})")

    untrusting = make_source(upstash.url, token=upstash.token)  # its own client: system CAs
    refused = await poll(untrusting)
    assert isinstance(refused, SourceDown)
    assert refused.error.startswith(f"TLS failed ({where}):")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error
