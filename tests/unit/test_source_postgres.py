"""The PostgreSQL source's pure parts: statement deltas, rows to fields, error messages, and
how one failing read is kept from failing the whole poll. No server here (see integration)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from psycopg import errors

from cockpit.core.plan import SourceSpec
from cockpit.core.sources import postgres_queries as q
from cockpit.core.sources.base import SourceDown
from cockpit.core.sources.postgres import RETRY_DISABLED_S, PostgresSource, _bounded, _Read

RESET_AT = datetime(2025, 1, 1, tzinfo=UTC)


def sample(
    t: float, calls: float, total_ms: float, dealloc: int = 0, reset: datetime | None = RESET_AT
) -> q.StatementSample:
    return q.StatementSample(t, calls, total_ms, dealloc, reset)


# -- statement deltas ---------------------------------------------------------------------------


def test_first_sample_has_no_rate_yet() -> None:
    part = q.StatementWindow(60).add(sample(0, 100, 500))
    assert part.values == {"queries_per_min": None, "mean_query_ms": None}
    assert part.reasons == dict.fromkeys(q.STATEMENT_FIELDS, q.FIRST_SAMPLE)


def test_rate_and_mean_come_from_the_deltas() -> None:
    window = q.StatementWindow(60)
    window.add(sample(0, 100, 500))
    part = window.add(sample(30, 160, 800))  # 60 calls in 30 s taking 300 ms in all
    assert part.values == {"queries_per_min": 120.0, "mean_query_ms": 5.0}
    assert part.reasons == {}


def test_no_statements_is_a_true_zero_rate_and_an_unknown_mean() -> None:
    window = q.StatementWindow(60)
    window.add(sample(0, 100, 500))
    part = window.add(sample(10, 100, 500))
    assert part.values == {"queries_per_min": 0.0, "mean_query_ms": None}
    assert part.reasons == {"mean_query_ms": q.NO_STATEMENTS}


def test_rate_spans_the_window_from_the_newest_old_enough_sample() -> None:
    window = q.StatementWindow(60)
    for t in range(0, 100, 10):  # 6 calls and 12 ms per 10 s until t=90
        window.add(sample(t, t * 0.6, t * 1.2))
    part = window.add(sample(100, 100 * 0.6 + 50, 100 * 1.2 + 1000))  # a burst at the end
    # Base is t=40 (the newest at least 60 s old): 36 + 50 calls over 60 s.
    assert part.values["queries_per_min"] == pytest.approx(86.0)
    assert part.values["mean_query_ms"] == pytest.approx((72 + 1000) / 86)


def test_memory_is_bounded_by_the_window() -> None:
    window = q.StatementWindow(60)
    for t in range(10_000):
        window.add(sample(t, t, t))
    assert len(window) == 61  # the base, 60 s back, and every sample since


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (sample(10, 200, 900, reset=datetime(2025, 6, 1, tzinfo=UTC)), q.STATS_RESET),
        (sample(10, 50, 900), q.STATS_RESET),  # calls went backwards
        (sample(10, 200, 100), q.STATS_RESET),  # time went backwards
        (sample(10, 200, 900, dealloc=1), q.DEALLOCATED),
        (sample(10, 50, 100, dealloc=1), q.DEALLOCATED),  # eviction explains the drop
        (sample(10, 200, 900, dealloc=-1), q.STATS_RESET),
    ],
)
def test_a_break_in_the_counters_is_unknown_with_its_reason(
    after: q.StatementSample, reason: str
) -> None:
    window = q.StatementWindow(60)
    window.add(sample(0, 100, 500, dealloc=0))
    part = window.add(after)
    assert part.values == {"queries_per_min": None, "mean_query_ms": None}
    assert part.reasons == dict.fromkeys(q.STATEMENT_FIELDS, reason)


def test_after_a_break_the_next_delta_starts_from_the_new_sample() -> None:
    window = q.StatementWindow(60)
    window.add(sample(0, 100, 500))
    window.add(sample(10, 5, 10, reset=None))  # reset: counters near zero
    part = window.add(sample(20, 25, 50, reset=None))
    assert part.values == {"queries_per_min": 120.0, "mean_query_ms": 2.0}


def test_forget_starts_over() -> None:
    window = q.StatementWindow(60)
    window.add(sample(0, 100, 500))
    window.forget()
    assert window.add(sample(10, 200, 900)).reasons["queries_per_min"] == q.FIRST_SAMPLE


# -- activity row -> fields ---------------------------------------------------------------------


def activity_row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "role": "app",
        "max_connections": 100,
        "hidden": 0,
        "connections": 25,
        "active": 5,
        "idle": 15,
        "idle_in_tx": 4,
        "waiting": 2,
        "slow_queries": 1,
        "slow_top": [{"pid": 42, "duration_s": 3.14159, "query": "SELECT\n  pg_sleep(9)"}],
    }
    row.update(changes)
    return row


def test_activity_row_maps_to_fields() -> None:
    part = q.activity_fields(activity_row())
    assert part.values == {
        "connections": 25.0,
        "active": 5.0,
        "idle": 15.0,
        "idle_in_tx": 4.0,
        "waiting": 2.0,
        "slow_queries": 1.0,
        "max_connections": 100.0,
        "pool_used": 0.25,
    }
    assert part.reasons == {}
    assert part.details == {
        "slow_queries": [{"pid": 42, "duration_s": 3.142, "query": "SELECT pg_sleep(9)"}]
    }
    assert set(part.values) == set(q.ACTIVITY_FIELDS)


def test_hidden_sessions_make_the_counts_unknown_not_low() -> None:
    part = q.activity_fields(activity_row(hidden=3, role="reader"))
    assert part.values["max_connections"] == 100.0
    for name in q.STATE_FIELDS:
        assert part.values[name] is None
        assert part.reasons[name] == (
            "permission denied for other users' sessions in pg_stat_activity"
            " (GRANT pg_read_all_stats TO reader)"
        )


def test_slow_query_text_is_one_line_and_truncated() -> None:
    text = "SELECT " + ", ".join(f"col_{i}" for i in range(100))
    short = q.short_query(text)
    assert len(short) == q.QUERY_CHARS
    assert short.endswith("…")
    assert short.startswith("SELECT col_0, col_1")
    assert q.short_query("  SELECT 1\n\tFROM t  ") == "SELECT 1 FROM t"
    assert q.short_query(None) == ""


# -- SQL and messages ---------------------------------------------------------------------------


def test_the_cockpits_statements_are_marked_and_left_out() -> None:
    assert q.ACTIVITY_SQL.startswith(q.MARKER)
    assert q.EXTENSION_SQL.startswith(q.MARKER)
    text = q.statements_sql("odd schema").as_string(None)
    assert text.startswith(q.MARKER)
    assert "query NOT LIKE '/* cockpit */%'" in text
    assert '"odd schema".pg_stat_statements_info' in text
    timeout = q.set_statement_timeout_sql(2.5).as_string(None)
    assert timeout == "/* cockpit */ SET statement_timeout = 2500"


def test_extension_versions_compare_as_numbers() -> None:
    assert q.too_old("1.10") is None
    assert q.too_old("1.9") is None
    assert q.too_old("1.8") == (
        "pg_stat_statements 1.8 is too old (needs 1.9, PostgreSQL 14+):"
        " ALTER EXTENSION pg_stat_statements UPDATE"
    )


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 5433 failed:'
            " Connection refused\n\tIs the server running on that host and accepting TCP/IP"
            " connections?",
            "connection refused (127.0.0.1:5433)",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed:'
            ' FATAL:  password authentication failed for user "app"',
            'password authentication failed for user "app"',
        ),
        (
            'connection failed: connection to server on socket "/run/pg/.s.PGSQL.5432"'
            " failed: No such file or directory\n\tIs the server running locally?",
            "no such file or directory (/run/pg/.s.PGSQL.5432)",
        ),
        ("connection timeout expired", "timed out connecting"),
        ('FATAL:  database "nope" does not exist', 'database "nope" does not exist'),
        ("", "OperationalError"),
    ],
)
def test_connection_errors_read_as_one_line(raw: str, said: str) -> None:
    assert q.describe_connect_error(errors.OperationalError(raw)) == said


# -- one read failing does not fail the poll ------------------------------------------------------


def make_source(clock: list[float]) -> PostgresSource:
    spec = SourceSpec("db", "postgres", every_s=10, timeout_s=1, settings={"dsn": "x"})
    return PostgresSource(spec, clock=lambda: clock[0])


def failing(fields: tuple[str, ...], error: Exception) -> Any:
    async def read(conn: object, now: float) -> q.Fields:
        raise error

    return _Read(fields, read)


async def test_a_refused_read_is_off_until_the_retry_time() -> None:
    source = make_source([0.0])
    conn: Any = SimpleNamespace(closed=False, broken=False)
    calls: list[float] = []
    gaps: list[bool] = []

    async def run(conn: object, at: float) -> q.Fields:
        calls.append(at)
        if len(calls) == 1:
            raise errors.InsufficientPrivilege("permission denied for view pg_stat_statements")
        return q.Fields({"queries_per_min": 1.0, "mean_query_ms": 1.0}, {}, {})

    read = _Read(q.STATEMENT_FIELDS, run, lambda: gaps.append(True))
    part = await source._read(conn, read, 100.0)
    reason = "permission denied for view pg_stat_statements (read off, retried every 5 min)"
    assert part.reasons == dict.fromkeys(q.STATEMENT_FIELDS, reason)
    off = await source._read(conn, read, 100 + RETRY_DISABLED_S - 1)
    assert off.reasons == dict.fromkeys(q.STATEMENT_FIELDS, reason)
    assert calls == [100.0]  # not asked while off
    assert gaps == [True, True]  # both polls without data are gaps in the samples
    back = await source._read(conn, read, 100 + RETRY_DISABLED_S)
    assert back.values["queries_per_min"] == 1.0
    assert calls == [100.0, 100 + RETRY_DISABLED_S]


async def test_a_cancelled_or_failed_read_is_unknown_for_this_poll_only() -> None:
    source = make_source([0.0])
    conn: Any = SimpleNamespace(closed=False, broken=False)
    cancelled = errors.QueryCanceled("canceling statement due to statement timeout")
    read = failing(q.ACTIVITY_FIELDS, cancelled)
    part = await source._read(conn, read, 0.0)
    assert part.reasons["connections"] == "query cancelled by the server (statement_timeout 2s)"
    other = errors.UndefinedTable('relation "pg_stat_statements" does not exist\nLINE 1: ...')
    read = failing(q.ACTIVITY_FIELDS, other)
    part = await source._read(conn, read, 0.0)
    assert part.reasons["idle"] == 'relation "pg_stat_statements" does not exist'
    assert read.off_until == 0.0  # neither switches the read off


async def test_a_broken_connection_fails_the_whole_poll() -> None:
    source = make_source([0.0])
    conn: Any = SimpleNamespace(closed=True, broken=True)
    lost = errors.OperationalError("server closed the connection unexpectedly")
    with pytest.raises(Exception, match="connection lost: server closed the connection"):
        await source._read(conn, failing(q.ACTIVITY_FIELDS, lost), 0.0)


async def test_an_overdue_read_that_resists_cancellation_is_abandoned_in_time() -> None:
    """psycopg answers the first cancellation of a query by waiting for the server (up to
    10 s); `_bounded` cancels again so a hung server costs the budget, not 10 s more."""
    dropped: list[bool] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(10)  # like psycopg asking a hung server to cancel
            raise

    async def drop() -> None:
        dropped.append(True)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _bounded(stubborn(), 0.05, drop)
    assert time.monotonic() - started < 1.0
    assert dropped == [True]


async def test_work_within_budget_returns_its_result() -> None:
    async def quick() -> int:
        return 7

    async def drop() -> None:
        raise AssertionError("nothing to drop")

    assert await _bounded(quick(), 1.0, drop) == 7


async def test_a_malformed_dsn_is_a_one_line_source_down() -> None:
    spec = SourceSpec("db", "postgres", every_s=10, timeout_s=1, settings={"dsn": "not a dsn"})
    source = PostgresSource(spec)
    result = await source.poll(0.0)
    assert result == SourceDown('invalid dsn: missing "=" after "not" in connection info string')
    await source.close()
