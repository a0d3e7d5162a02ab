"""PostgresSource against a real PostgreSQL 15 (tests/servers/postgres_server.py).

Every number the source reports is checked against the test's own reading of
pg_stat_activity / pg_stat_statements, or against what the test itself did to the server.
Polls go through `asyncio.wait_for(poll(), timeout_s)`, as the scheduler runs them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from cockpit.core.plan import SourceSpec
from cockpit.core.sources import postgres_queries as q
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.postgres import RETRY_DISABLED_S, PostgresSource
from tests.servers import postgres_server as postgres_server_module
from tests.servers.postgres_server import PgDatabase, PostgresServer

pytestmark = pytest.mark.integration

AConn = psycopg.AsyncConnection[tuple[object, ...]]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_source(dsn: str, clock: Clock | None = None, *, timeout_s: float = 1.0) -> PostgresSource:
    settings = {
        "window_s": 60.0,
        "dsn": dsn,
        "slow_query_s": 1.0,
        "connect_timeout_s": 2.0,
        "statement_timeout_s": 2.0,
    }
    spec = SourceSpec("db", "postgres", every_s=1.0, timeout_s=timeout_s, settings=settings)
    return PostgresSource(spec, clock=clock or Clock())


async def poll(source: PostgresSource) -> PollResult:
    return await asyncio.wait_for(source.poll(time.perf_counter()), source.spec.timeout_s)


async def reading(source: PostgresSource) -> Reading:
    result = await poll(source)
    assert isinstance(result, Reading), result
    return result


@dataclass
class Truth:
    """The test's own count of client backends, the cockpit's and the test's connection left
    out (the test's connection is busy reading this; during the cockpit's poll it is idle)."""

    connections: int
    active: int
    idle: int
    idle_in_tx: int
    waiting: int
    slow: set[int]
    cockpit_pids: list[int]
    max_connections: int


async def truth(admin: AConn, slow_s: float = 1.0) -> Truth:
    rows = await (
        await admin.execute(
            "SELECT pid, backend_type, state, wait_event_type, application_name,"
            " extract(epoch FROM clock_timestamp() - query_start)::float8"
            " FROM pg_stat_activity"
        )
    ).fetchall()
    max_row = await (await admin.execute("SHOW max_connections")).fetchone()
    assert max_row is not None
    me = admin.info.backend_pid
    cockpit = [int(str(r[0])) for r in rows if r[4] == "cockpit"]
    clients = [r for r in rows if r[1] == "client backend" and r[0] != me and r[4] != "cockpit"]
    return Truth(
        connections=len(clients),
        active=sum(r[2] == "active" for r in clients),
        idle=sum(r[2] == "idle" for r in clients),
        idle_in_tx=sum(str(r[2]).startswith("idle in transaction") for r in clients),
        waiting=sum(r[3] == "Lock" for r in clients),
        slow={int(str(r[0])) for r in clients if r[2] == "active" and float(str(r[5])) > slow_s},
        cockpit_pids=cockpit,
        max_connections=int(str(max_row[0])),
    )


@pytest.fixture
async def admin(pg_database: PgDatabase) -> AsyncIterator[AConn]:
    conn = await psycopg.AsyncConnection.connect(pg_database.dsn, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    """Wait (briefly, by polling) for an async predicate."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def test_connection_counts_match_pg_stat_activity(
    pg_database: PgDatabase, admin: AConn
) -> None:
    await admin.execute("CREATE TABLE t (id int)")
    conns: list[AConn] = []
    tasks: list[asyncio.Task[object]] = []

    async def connect(autocommit: bool = True) -> AConn:
        conn = await psycopg.AsyncConnection.connect(pg_database.dsn, autocommit=autocommit)
        conns.append(conn)
        return conn

    source = make_source(pg_database.dsn)
    try:
        for _ in range(3):
            await connect()  # idle
        for _ in range(2):
            await (await connect(autocommit=False)).execute("SELECT 1")  # idle in transaction
        holder = await connect(autocommit=False)
        await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # idle in tx, holds lock
        waiter, sleeper = await connect(), await connect()
        tasks.append(asyncio.create_task(waiter.execute("SELECT count(*) FROM t")))

        async def blocked() -> bool:
            return (await truth(admin)).waiting == 1

        await until(blocked, "the waiter to block on the lock")
        tasks.append(asyncio.create_task(sleeper.execute("SELECT pg_sleep(6)")))
        pids = {waiter.info.backend_pid, sleeper.info.backend_pid}

        async def both_slow() -> bool:
            return (await truth(admin, slow_s=1.2)).slow == pids

        await until(both_slow, "the waiter and the sleeper to run for 1.2 s")

        got = await reading(source)
        seen = await truth(admin)
        values = got.values
        # Known by construction: 3 idle + the test's own (idle while the cockpit polls),
        # 2 idle in transaction + the lock holder, the waiter blocked, the sleeper.
        assert (values["idle"], values["idle_in_tx"], values["active"]) == (4, 3, 2)
        assert values["waiting"] == 1
        assert values["connections"] == 9
        # ...and the same as the test's own reading of pg_stat_activity.
        assert values["connections"] == seen.connections + 1
        assert values["idle"] == seen.idle + 1
        assert values["active"] == seen.active
        assert values["idle_in_tx"] == seen.idle_in_tx
        assert values["waiting"] == seen.waiting
        assert values["slow_queries"] == len(seen.slow) == 2
        assert values["max_connections"] == seen.max_connections == 40
        assert values["pool_used"] == pytest.approx(9 / 40)
        assert values["up"] == 1.0
        slow = got.details["slow_queries"]
        assert isinstance(slow, list)
        assert {item["pid"] for item in slow} == pids
        # The longest first: the waiter started before the sleeper.
        assert [item["query"] for item in slow] == ["SELECT count(*) FROM t", "SELECT pg_sleep(6)"]
        assert slow[0]["duration_s"] >= slow[1]["duration_s"] > 1.2
    finally:
        await admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(6)'"
        )
        for conn in conns:
            await conn.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await source.close()


async def test_pool_used_leaves_out_the_cockpits_own_connection(
    pg_database: PgDatabase, admin: AConn
) -> None:
    source = make_source(pg_database.dsn)
    try:
        got = await reading(source)
        seen = await truth(admin)
        assert len(seen.cockpit_pids) == 1  # the source is connected...
        assert seen.connections == 0  # ...and besides it only the test's own connection
        assert got.values["connections"] == 1
        assert got.values["pool_used"] == pytest.approx(1 / seen.max_connections)
        assert got.values["active"] == 0  # its own running query is not counted either
    finally:
        await source.close()

    async def gone() -> bool:  # the backend exits just after the client says goodbye
        return (await truth(admin)).cockpit_pids == []

    await until(gone, "the cockpit's connection to close", seconds=5)


async def workload(dsn: str, count: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for i in range(count):
            if i % 2:
                await conn.execute("SELECT pg_sleep(0.002)")
            else:
                await conn.execute("SELECT %s::int * 2", (i,))


async def statement_truth(admin: AConn) -> tuple[int, float]:
    """Calls and execution ms of the workload's two statements, as the test reads them."""
    row = await (
        await admin.execute(
            "SELECT sum(calls)::int, sum(total_exec_time) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query IN ('SELECT pg_sleep($1)', 'SELECT $1::int * $2')"
        )
    ).fetchone()
    assert row is not None
    return int(str(row[0] or 0)), float(str(row[1] or 0))


async def test_queries_per_min_and_mean_match_the_statements_run(
    pg_database: PgDatabase, admin: AConn
) -> None:
    clock = Clock()
    source = make_source(pg_database.dsn, clock)
    try:
        first = await reading(source)
        assert first.values["queries_per_min"] is None
        assert first.reasons["queries_per_min"] == q.FIRST_SAMPLE
        await workload(pg_database.dsn, 24)
        clock.now += 30.0
        second = await reading(source)
        calls, total_ms = await statement_truth(admin)
        assert calls == 24
        # Only the workload ran between the two polls: the cockpit's own statements are out.
        assert second.values["queries_per_min"] == pytest.approx(24 * 60 / 30)
        assert second.values["mean_query_ms"] == pytest.approx(total_ms / 24, rel=1e-9)
        assert second.values["mean_query_ms"] > 1.0  # half of them slept 2 ms
        clock.now += 30.0
        # Still within the window; the test's own read above is one more statement.
        later = await reading(source)
        assert later.values["queries_per_min"] == pytest.approx(25 * 60 / 60)
        clock.now += 61.0
        quiet = await reading(source)  # nothing ran for a window: a true zero, and no mean
        assert quiet.values["queries_per_min"] == 0.0
        assert quiet.values["mean_query_ms"] is None
        assert quiet.reasons["mean_query_ms"] == q.NO_STATEMENTS
    finally:
        await source.close()


async def test_stats_reset_and_deallocation_make_the_rates_unknown(
    pg_database: PgDatabase, admin: AConn
) -> None:
    clock = Clock()
    source = make_source(pg_database.dsn, clock)
    try:
        await reading(source)
        await workload(pg_database.dsn, 4)
        await admin.execute("SELECT pg_stat_statements_reset()")
        clock.now += 10
        reset = await reading(source)
        assert reset.values["queries_per_min"] is None
        assert reset.reasons["queries_per_min"] == q.STATS_RESET
        await workload(pg_database.dsn, 6)
        clock.now += 10
        after = await reading(source)
        assert after.values["queries_per_min"] == pytest.approx(6 * 6)

        # pg_stat_statements.max is 100: 130 statements of distinct shapes evict entries.
        async with await psycopg.AsyncConnection.connect(pg_database.dsn, autocommit=True) as c:
            for width in range(1, 131):
                await c.execute("SELECT " + ", ".join(["1"] * width))
        info = await (await admin.execute("SELECT dealloc FROM pg_stat_statements_info")).fetchone()
        assert info is not None
        assert int(str(info[0])) > 0
        clock.now += 10
        evicted = await reading(source)
        assert evicted.values["queries_per_min"] is None
        assert evicted.reasons["mean_query_ms"] == q.DEALLOCATED
    finally:
        await source.close()


async def test_missing_extension_is_unknown_with_the_fix(
    pg_database: PgDatabase, admin: AConn
) -> None:
    await admin.execute("DROP EXTENSION pg_stat_statements")
    source = make_source(pg_database.dsn)
    try:
        got = await reading(source)
        for name in ("queries_per_min", "mean_query_ms"):
            assert got.values[name] is None
            assert got.reasons[name] == q.NOT_INSTALLED
        assert got.values["connections"] == 1  # the rest of the source still works
    finally:
        await source.close()


async def test_role_without_pg_read_all_stats_gets_a_reason_not_wrong_counts(
    pg_database: PgDatabase, admin: AConn
) -> None:
    role = pg_database.create_role("plain")
    clock = Clock()
    source = make_source(pg_database.dsn_as(role), clock)
    try:
        first = await reading(source)
        # The test's own connection is another user's session: invisible to this role.
        for name in q.STATE_FIELDS:
            assert first.values[name] is None
            assert first.reasons[name].startswith("permission denied for other users' sessions")
            assert f"GRANT pg_read_all_stats TO {role}" in first.reasons[name]
        assert first.values["max_connections"] == 40
        await workload(pg_database.dsn, 10)  # by the superuser: still counted by calls
        clock.now += 20
        second = await reading(source)
        assert second.values["queries_per_min"] == pytest.approx(10 * 3)
        assert second.values["up"] == 1.0
    finally:
        await source.close()


async def test_a_refused_read_is_switched_off_and_retried_later(
    pg_database: PgDatabase, admin: AConn
) -> None:
    role = pg_database.create_role("stats")
    await admin.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(role)))
    await admin.execute("REVOKE SELECT ON pg_stat_statements FROM PUBLIC")
    clock = Clock()
    source = make_source(pg_database.dsn_as(role), clock)
    try:
        got = await reading(source)
        reason = got.reasons["queries_per_min"]
        assert reason.startswith("permission denied for view pg_stat_statements")
        assert got.values["mean_query_ms"] is None
        assert got.values["connections"] == 1  # the activity read keeps working
        await admin.execute("GRANT SELECT ON pg_stat_statements TO PUBLIC")
        clock.now += 10
        still_off = await reading(source)  # not asked again yet
        assert still_off.reasons["queries_per_min"] == reason
        clock.now += RETRY_DISABLED_S
        retried = await reading(source)
        assert retried.reasons["queries_per_min"] == q.FIRST_SAMPLE
        clock.now += 10
        assert (await reading(source)).values["queries_per_min"] == 0.0
    finally:
        await source.close()


async def test_wrong_password_is_a_one_line_source_down(pg_database: PgDatabase) -> None:
    role = pg_database.create_role("pw", password="right")
    source = make_source(pg_database.dsn_as(role, password="wrong"))
    try:
        got = await poll(source)
        assert got == SourceDown(f'password authentication failed for user "{role}"')
    finally:
        await source.close()


async def test_stopped_server_is_down_then_recovers(
    postgres_server: PostgresServer, pg_database: PgDatabase
) -> None:
    source = make_source(pg_database.dsn)
    try:
        await reading(source)
        postgres_server.stop()
        lost = await poll(source)  # the open connection was closed by the shutdown
        assert isinstance(lost, SourceDown)
        assert lost.error.startswith("connection lost: ")  # the server's words follow
        refused = await poll(source)
        assert refused == SourceDown(f"connection refused (127.0.0.1:{postgres_server.port})")
        postgres_server.start()
        back = await reading(source)
        assert back.values["up"] == 1.0
        assert back.values["connections"] == 0
    finally:
        postgres_server.ensure_running()
        await source.close()


async def test_hung_server_times_out_then_recovers(
    postgres_server: PostgresServer, pg_database: PgDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_source(pg_database.dsn, timeout_s=1.0)
    try:
        await reading(source)  # connected: the first hang is mid-query
        postgres_server.pause()
        for _ in range(2):  # then a connect that hangs
            started = time.monotonic()
            hung = await poll(source)
            assert hung == SourceDown("timed out after 1s")
            assert time.monotonic() - started < 1.0  # ended by its own deadline, not later
        postgres_server.resume()
        deadline = time.monotonic() + 10
        result: PollResult = hung
        while isinstance(result, SourceDown) and time.monotonic() < deadline:
            result = await poll(source)
        assert isinstance(result, Reading), result
        assert result.values["up"] == 1.0
        # psycopg's warning about the connection dropped on purpose stays out of the TUI.
        assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    finally:
        postgres_server.resume()
        await source.close()


def test_missing_server_binaries_fail_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_server_module, "find_bindir", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y postgresql-15"):
        PostgresServer.create()
