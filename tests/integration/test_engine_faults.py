"""The whole engine against real servers while they fail: a source that is killed, hung or
gone goes down within three intervals, its gates turn UNKNOWN (never PASS, never FAIL),
the other sources keep their schedules, and everything recovers when the server is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cockpit.core.config import load_plan
from cockpit.core.engine import Engine, store_for
from cockpit.core.gates import evaluate_gates
from cockpit.core.metrics.store import MetricStore
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.verdict import Verdict
from tests.servers.http_server import HttpServerControl
from tests.servers.postgres_server import PgDatabase, PostgresServer
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

EVERY = 0.3

PLAN = """
[rollout]
name = "faults"
state = "state.toml"
audit = "audit.jsonl"

[sources.farms]
kind = "http"
url = "{http}"
every = "300ms"
timeout = "500ms"

[sources.cache]
kind = "redis"
url = "{redis}"
every = "300ms"
timeout = "500ms"

[sources.db]
kind = "postgres"
dsn = "{pg}"
every = "300ms"
timeout = "1s"

[[phase]]
name = "Shadow"
traffic = 10
success = ["cache.ops_per_sec >= 0", "farms.samples >= 1"]
failure = ["db.pool_used > 99%"]
"""

RUNNING = RolloutState(status=Status.RUNNING, phase=1, phase_entered_at=0.0)


class Watched:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store: MetricStore = engine.store

    def polls(self, source: str) -> int:
        return self.engine.runners[source].polls

    def verdict(self, rule: str) -> Verdict:
        gates = evaluate_gates(self.engine.plan, RUNNING, self.store, time.time())
        return next(g.verdict for g in gates if g.rule.text == rule)

    async def until(self, what: str, check: Callable[[], bool], within: float) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > within:
                pytest.fail(f"not within {within}s: {what}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started


@pytest.fixture
async def watched(
    tmp_path: Path,
    http_server: HttpServerControl,
    redis_server: RedisServer,
    pg_database: PgDatabase,
) -> AsyncIterator[Watched]:
    config = tmp_path / "cockpit.toml"
    config.write_text(PLAN.format(http=http_server.url, redis=redis_server.url, pg=pg_database.dsn))
    plan = load_plan(config, {})
    engine = Engine(plan, store_for(plan))
    task = asyncio.create_task(engine.watch())
    w = Watched(engine)
    try:
        for source in ("farms", "cache", "db"):
            await w.until(f"{source} up", lambda s=source: engine.store.source(s).up is True, 10)
        yield w
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def down(w: Watched, source: str) -> Callable[[], bool]:
    return lambda: w.store.source(source).up is False


def up(w: Watched, source: str) -> Callable[[], bool]:
    return lambda: w.store.source(source).up is True


async def test_redis_killed_then_restarted(watched: Watched, redis_server: RedisServer) -> None:
    rule = "cache.ops_per_sec >= 0"
    await watched.until("ops known", lambda: watched.verdict(rule) is Verdict.PASS, 5)
    redis_server.stop()
    took = await watched.until("cache down", down(watched, "cache"), 3 * EVERY + 1.0)
    assert took <= 3 * EVERY + 1.0
    assert watched.store.source("cache").error
    await watched.until("stale", lambda: watched.verdict(rule) is Verdict.UNKNOWN, 3 * EVERY + 1)
    http_polls = watched.polls("farms")
    await asyncio.sleep(1.5)
    assert watched.verdict(rule) is Verdict.UNKNOWN  # a down source never passes a gate
    assert watched.polls("farms") - http_polls >= 3  # the others keep their schedules
    redis_server.start()
    await watched.until("cache back", up(watched, "cache"), 5.0)
    lag = watched.store.latest("cockpit.loop_lag_p99")  # the engine watches its own loop
    assert lag is not None
    assert lag.value is not None
    assert 0.0 <= lag.value < 1000.0


async def test_postgres_hung_then_resumed(
    watched: Watched, postgres_server: PostgresServer
) -> None:
    rule = "db.pool_used > 99%"
    await watched.until("pool known", lambda: watched.verdict(rule) is Verdict.PASS, 5)
    postgres_server.pause()
    try:
        http_polls, cache_polls = watched.polls("farms"), watched.polls("cache")
        await watched.until("db down", down(watched, "db"), 3 * EVERY + 2.0)
        assert "timed out" in (watched.store.source("db").error or "")
        await watched.until("unknown", lambda: watched.verdict(rule) is Verdict.UNKNOWN, 3)
        # A hung database delays nobody else: both kept polling while it hung.
        assert watched.polls("farms") - http_polls >= 3
        assert watched.polls("cache") - cache_polls >= 3
    finally:
        postgres_server.resume()
    await watched.until("db back", up(watched, "db"), 8.0)
    await watched.until("judged again", lambda: watched.verdict(rule) is Verdict.PASS, 5)


async def test_http_server_gone_then_back(watched: Watched, http_server: HttpServerControl) -> None:
    rule = "farms.samples >= 1"
    http_server.stop()
    await watched.until("farms down", down(watched, "farms"), 3 * EVERY + 1.0)
    await watched.until("unknown", lambda: watched.verdict(rule) is Verdict.UNKNOWN, 3 * EVERY + 1)
    http_server.start()
    await watched.until("farms back", up(watched, "farms"), 5.0)
    await watched.until("judged again", lambda: watched.verdict(rule) is Verdict.PASS, 3)
