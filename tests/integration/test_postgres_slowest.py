"""The slowest statements against a real PostgreSQL (tests/servers/postgres_server.py): a
deliberately slow statement (pg_sleep) ranks first through the real source, with the numbers
pg_stat_statements itself keeps; then the same through the real engine thread and screen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.operator import Operator
from cockpit.core.plan import SourceSpec
from cockpit.core.sources import postgres_queries as q
from cockpit.core.sources.base import Reading
from cockpit.core.sources.postgres import PostgresSource
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.slow import SlowScreen, slow_screen
from tests.servers.postgres_server import PgDatabase
from tests.tui.helpers import closed_port, screen_text, write_plan

pytestmark = pytest.mark.integration

AConn = psycopg.AsyncConnection[tuple[object, ...]]
SLEEP = "SELECT pg_sleep($1)"
# A long, multi-line statement that sleeps less: it ranks second, its text one line of 200.
WIDE = "SELECT pg_sleep(0.2),\n       " + ",\n       ".join(f"{i} AS c{i}" for i in range(80))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_source(dsn: str, clock: Clock) -> PostgresSource:
    settings = {"window_s": 60.0, "dsn": dsn, "slow_query_s": 0.5, "statement_timeout_s": 2.0}
    spec = SourceSpec("db", "postgres", every_s=1.0, timeout_s=5.0, settings=settings)
    return PostgresSource(spec, clock=clock)


async def reading(source: PostgresSource) -> Reading:
    result = await asyncio.wait_for(source.poll(time.perf_counter()), source.spec.timeout_s)
    assert isinstance(result, Reading), result
    return result


async def workload(dsn: str) -> None:
    """One slow statement, one less slow and wide, and many quick ones."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_sleep(0.6)")
        await conn.execute(WIDE)
        for i in range(20):
            await conn.execute("SELECT %s::int * 2", (i,))


async def kept_by_server(admin: AConn) -> dict[str, tuple[int, float]]:
    """pg_stat_statements' own calls and execution ms, by text, in the test's database."""
    rows = await (
        await admin.execute(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE toplevel"
            " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    ).fetchall()
    return {str(r[0]): (int(str(r[1])), float(str(r[2]))) for r in rows}


@pytest.fixture
async def admin(pg_database: PgDatabase) -> AsyncIterator[AConn]:
    conn = await psycopg.AsyncConnection.connect(pg_database.dsn, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_slow_statement_ranks_first_with_the_servers_numbers(
    pg_database: PgDatabase, admin: AConn
) -> None:
    clock = Clock()
    source = make_source(pg_database.dsn, clock)
    try:
        await reading(source)
        assert source.slowest.reason == q.FIRST_SAMPLE
        assert source.slowest.queries == ()
        await workload(pg_database.dsn)
        clock.now += 30
        await reading(source)
        slowest = source.slowest
        assert slowest.reason is None
        assert (slowest.taken_at, slowest.span_s) == (clock.now, 30.0)
        texts = [found.query for found in slowest.queries]
        assert texts[0] == SLEEP
        assert texts[1].startswith("SELECT pg_sleep($1), $2 AS c0, $3 AS c1,")
        assert len(texts[1]) == 200
        assert texts[1].endswith("…")
        assert texts[2] == "SELECT $1::int * $2"
        assert not any(q.MARKER in text for text in texts)  # the cockpit's own are left out
        first = slowest.queries[0]
        assert first.calls == 1
        assert first.mean_ms >= 600
        # The same as the server keeps (the statistics were reset before the first poll).
        server = await kept_by_server(admin)
        assert first.total_ms == pytest.approx(server[SLEEP][1], rel=1e-9)
        quick = slowest.queries[2]
        assert quick.calls == server["SELECT $1::int * $2"][0] == 20
        assert quick.mean_ms == pytest.approx(server["SELECT $1::int * $2"][1] / 20, rel=1e-9)

        clock.now += 61  # a window later, with only the test's read above in it
        await reading(source)
        later = [found.query for found in source.slowest.queries]
        assert SLEEP not in later
        assert len(later) == 1  # the test's own read of pg_stat_statements
        assert later[0].startswith("SELECT query, calls, total_exec_time FROM pg_stat_statements")
    finally:
        await source.close()


async def test_a_reset_keeps_the_last_ranking_and_says_why(
    pg_database: PgDatabase, admin: AConn
) -> None:
    clock = Clock()
    source = make_source(pg_database.dsn, clock)
    try:
        await reading(source)
        await workload(pg_database.dsn)
        clock.now += 10
        await reading(source)
        ranked_at = source.slowest.taken_at
        await admin.execute("SELECT pg_stat_statements_reset()")
        clock.now += 10
        got = await reading(source)
        assert got.reasons["queries_per_min"] == q.STATS_RESET
        assert source.slowest.reason == q.STATS_RESET
        assert source.slowest.checked_at == clock.now
        assert source.slowest.taken_at == ranked_at  # last known, with its time
        assert source.slowest.queries[0].query == SLEEP
        await admin.execute("SELECT pg_sleep(0.55)")
        clock.now += 10
        await reading(source)
        assert source.slowest.reason is None
        assert [found.query for found in source.slowest.queries] == [SLEEP]
        assert source.slowest.queries[0].calls == 1  # counted from the reset, not before it
    finally:
        await source.close()


async def test_other_roles_statements_are_counted_as_hidden_not_ranked(
    pg_database: PgDatabase,
) -> None:
    role = pg_database.create_role("plain")  # without pg_read_all_stats
    clock = Clock()
    source = make_source(pg_database.dsn_as(role), clock)
    try:
        await reading(source)
        await workload(pg_database.dsn)  # by the superuser: 22 statements
        clock.now += 10
        await reading(source)
        assert source.slowest.reason is None
        assert source.slowest.queries == ()
        assert source.slowest.hidden_calls == 22
    finally:
        await source.close()


async def until_said(app: CockpitApp, *texts: str, seconds: float = 60.0) -> SlowScreen:
    """Ask the engine (as the app would) until the screen says one of `texts`; polls, with a
    generous deadline."""
    deadline = time.monotonic() + seconds
    while True:
        screen = await slow_screen(app.engine)
        if any(text in screen.text() for text in texts):
            return screen
        if time.monotonic() > deadline:
            pytest.fail(f"never said {texts!r}; last said:\n{screen.text()}")
        await asyncio.sleep(0.25)


async def test_the_screen_shows_it_through_the_real_engine(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    environ = {"APP_URL": closed, "REDIS_URL": "redis://127.0.0.1:9/0"}
    environ["DATABASE_URL"] = pg_database.dsn
    plan = load_plan(write_plan(tmp_path), environ)
    cockpit = Cockpit(plan=plan, operator=Operator("alice", "10.0.0.5"), metrics=store_for(plan))
    app = CockpitApp(cockpit, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        # The first sample of the statements is taken before the workload runs.
        first = await until_said(app, q.FIRST_SAMPLE, "ranked")
        assert "SELECT pg_sleep" not in first.text()
        await workload(pg_database.dsn)
        screen = await until_said(app, SLEEP)
        await app.push_screen(screen)
        await pilot.pause()
        shown = screen_text(app)
        assert "Slow queries" in shown
        assert "1. mean" in shown
        assert SLEEP in shown
        assert "ranked" in shown  # the data's age
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SlowScreen)


async def test_without_the_extension_the_reason_is_the_fix(
    pg_database: PgDatabase, admin: AConn
) -> None:
    await admin.execute("DROP EXTENSION pg_stat_statements")
    clock = Clock()
    source = make_source(pg_database.dsn, clock)
    try:
        await reading(source)
        assert source.slowest.reason == q.NOT_INSTALLED
        assert source.slowest.checked_at == clock.now
        assert source.slowest.taken_at is None
    finally:
        await source.close()
