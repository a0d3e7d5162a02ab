"""`kind = "postgres"`: connection counts, slow queries and statement rates from one connection.

One psycopg 3 async connection per source (autocommit, application_name 'cockpit',
statement_timeout set once per connection), reopened on the next poll after any failure.
Each poll runs two independent reads: pg_stat_activity (connection fields, slow queries) and
pg_stat_statements (queries_per_min, mean_query_ms, and `slowest`: the statements slowest on
average over the window, which the UI asks for on demand). A read refused for lack of privilege is
switched off with the reason shown, and retried every RETRY_DISABLED_S in case it was granted;
the other read keeps working. Field meanings and scope: see `postgres_queries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row

from cockpit.core.plan import SourceSpec
from cockpit.core.sources import postgres_queries as q
from cockpit.core.sources import postgres_slowest as slowest
from cockpit.core.sources.base import PollResult, Reading, SourceDown, one_line

RETRY_DISABLED_S = 300.0
# The poll's own deadline is a little inside spec.timeout_s so that it, not the scheduler's
# wait_for, ends a hung poll: the connection is then dropped here and the message is ours.
DEADLINE_SHARE = 0.9

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]


class _QuietAbandon(logging.Filter):
    """Drops psycopg's warnings about the connections `_abandon` closes on purpose: the
    source reports the timeout itself, and a stray log line would land in the TUI."""

    EXPECTED = ("query cancellation interrupted", "query not terminated after cancellation")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.EXPECTED)


_QUIET_ABANDON = _QuietAbandon()


class _ConnectionLost(Exception):
    """The connection broke mid-poll: the poll is a SourceDown and the connection is dropped."""


@dataclass
class _Read:
    """One of the poll's reads, with the fields it fills. Refused for lack of privilege, it
    is off until `off_until`; `on_gap` runs when a poll passes without its data."""

    fields: tuple[str, ...]
    run: Callable[[Conn, float], Awaitable[q.Fields]]
    on_gap: Callable[[], None] = lambda: None
    off_until: float = 0.0
    off_reason: str = ""


class PostgresSource:
    def __init__(self, spec: SourceSpec, *, clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self._clock = clock
        settings = spec.settings
        self._dsn = str(settings["dsn"])
        self._slow_s = _setting(settings, "slow_query_s", 2.0)
        self._connect_timeout_s = _setting(settings, "connect_timeout_s", 5.0)
        self._statement_timeout_s = _setting(settings, "statement_timeout_s", 2.0)
        window_s = _setting(settings, "window_s", 60.0)
        self._window = q.StatementWindow(window_s)
        self._ranks = slowest.SlowestWindow(window_s)
        self._texts = slowest.TextCache()
        self.slowest = slowest.Slowest()
        """The slowest statements of the last window; read it in the engine's thread."""
        self._conn: Conn | None = None
        self._activity = _Read(q.ACTIVITY_FIELDS, self._read_activity)
        # A gap in the statement samples: the next delta must not span it.
        self._statements = _Read(q.STATEMENT_FIELDS, self._read_statements, self._forget)
        logging.getLogger("psycopg").addFilter(_QUIET_ABANDON)  # once: filters are a set

    async def poll(self, planned_at: float) -> PollResult:
        budget = self.spec.timeout_s * DEADLINE_SHARE
        try:
            return await _bounded(self._poll_once(), budget, self._drop)
        except TimeoutError:
            await self._drop()
            return SourceDown(f"timed out after {self.spec.timeout_s:g}s")
        except _ConnectionLost as lost:
            await self._drop()
            return SourceDown(str(lost))
        except psycopg.ProgrammingError as error:  # psycopg could not parse the DSN
            await self._drop()
            return SourceDown(f"invalid dsn: {one_line(error)}")
        except psycopg.Error as error:  # connecting: refused, auth, DNS
            await self._drop()
            return SourceDown(q.describe_connect_error(error))

    async def close(self) -> None:
        await self._drop()

    @property
    def slow_query_s(self) -> float:
        return self._slow_s

    # -- one poll ------------------------------------------------------------------------------

    async def _poll_once(self) -> Reading:
        conn = await self._connection()
        now = self._clock()
        activity = await self._read(conn, self._activity, now)
        ranked = self.slowest
        statements = await self._read(conn, self._statements, now)
        if self.slowest is ranked:  # the read ended before ranking: say why
            self._unranked(now, statements.reasons.get("queries_per_min", "no statement data"))
        values: dict[str, float | None] = {**activity.values, **statements.values, "up": 1.0}
        reasons = {**activity.reasons, **statements.reasons}
        details = {**activity.details, **statements.details}
        return Reading(values, reasons, details)

    async def _read(self, conn: Conn, read: _Read, now: float) -> q.Fields:
        """One read with its failures as data; only a broken connection escapes."""
        if now < read.off_until:
            read.on_gap()
            return q.unknown(read.fields, read.off_reason)
        try:
            return await read.run(conn, now)
        except psycopg.Error as error:
            if conn.closed or conn.broken:
                lost = q.describe_connect_error(error)
                raise _ConnectionLost(f"connection lost: {lost}") from error
            read.on_gap()
            if isinstance(error, errors.InsufficientPrivilege):
                read.off_until = now + RETRY_DISABLED_S
                every = f"{RETRY_DISABLED_S / 60:g} min"
                read.off_reason = f"{one_line(error)} (read off, retried every {every})"
                return q.unknown(read.fields, read.off_reason)
            if isinstance(error, errors.QueryCanceled):
                limit = f"statement_timeout {self._statement_timeout_s:g}s"
                return q.unknown(read.fields, f"query cancelled by the server ({limit})")
            return q.unknown(read.fields, one_line(error))

    async def _read_activity(self, conn: Conn, now: float) -> q.Fields:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q.ACTIVITY_SQL, {"slow_s": self._slow_s, "top": q.SLOW_TOP})
            row = await cur.fetchone()
        if row is None:
            return q.unknown(q.ACTIVITY_FIELDS, "pg_stat_activity returned no row")
        return q.activity_fields(row)

    async def _read_statements(self, conn: Conn, now: float) -> q.Fields:
        async with conn.cursor() as cur:
            await cur.execute(q.EXTENSION_SQL)
            installed = await cur.fetchone()
            if installed is None:
                self._forget()
                return q.unknown(q.STATEMENT_FIELDS, q.NOT_INSTALLED)
            schema, version = str(installed[0]), str(installed[1])
            old = q.too_old(version)
            if old is not None:
                self._forget()
                return q.unknown(q.STATEMENT_FIELDS, old)
            await cur.execute(q.statements_sql(schema))
            rows = await cur.fetchall()
            if not rows:
                self._forget()
                return q.unknown(q.STATEMENT_FIELDS, "pg_stat_statements_info returned no row")
            sample, totals = slowest.statement_rows(now, rows)
            broken = self._window.break_reason(sample)
            fields = self._window.add(sample)
            unranked = self._ranks.add(now, totals, broken)
            if unranked is not None:
                self._unranked(now, unranked)
            else:
                await self._rank(conn, cur, schema, now)
        return fields

    async def _rank(
        self, conn: Conn, cur: psycopg.AsyncCursor[Any], schema: str, now: float
    ) -> None:
        """Keep the ranking, with the texts it lacks read now. Failing to read them costs the
        texts only, not the poll's rates."""
        ranked, hidden = self._ranks.ranking()
        ids = [queryid for queryid, _, _ in ranked]
        missing = self._texts.missing(ids)
        note = None
        if missing:
            try:
                await cur.execute(slowest.texts_sql(schema), {"ids": missing})
                for queryid, text in await cur.fetchall():
                    self._texts.put(int(queryid), str(text))
            except psycopg.Error as error:
                if conn.closed or conn.broken:
                    raise
                note = f"(text unreadable: {one_line(error)})"
        texts = self._texts.get(ids)
        if note is not None:
            texts = {queryid: texts.get(queryid, note) for queryid in ids}
        queries = slowest.slow_queries(ranked, texts)
        span = self._ranks.span_s
        self.slowest = slowest.Slowest(queries, now, span, now, None, hidden)

    def _unranked(self, now: float, reason: str) -> None:
        """No ranking this poll: keep the last one, with its time, and say why."""
        self.slowest = replace(self.slowest, checked_at=now, reason=reason)

    def _forget(self) -> None:
        """Start the statement deltas over (a gap, a new connection, a reset)."""
        self._window.forget()
        self._ranks.forget()

    # -- the connection ------------------------------------------------------------------------

    async def _connection(self) -> Conn:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._forget()  # possibly another server now (failover): deltas start afresh
        conn = await psycopg.AsyncConnection.connect(
            self._dsn,
            autocommit=True,
            prepare_threshold=None,  # no server-side prepared statements: pooler friendly
            application_name="cockpit",
            connect_timeout=max(2, math.ceil(self._connect_timeout_s)),  # libpq: whole seconds
        )
        try:
            await conn.execute(q.set_statement_timeout_sql(self._statement_timeout_s))
        except BaseException:
            await _close_quietly(conn)
            raise
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn)


async def _close_quietly(conn: Conn) -> None:
    # close() only writes a Terminate message to a non-blocking socket: it cannot hang.
    with contextlib.suppress(Exception):
        await conn.close()


async def _bounded(
    work: Awaitable[T], budget_s: float, on_abandon: Callable[[], Awaitable[None]]
) -> T:
    """`work` within `budget_s`, else TimeoutError, with the connection dropped either way.

    Not asyncio.timeout: psycopg answers the cancellation of a running query by asking the
    server to cancel it and waiting for that (up to 10 s), which against a hung server would
    stretch a 1 s timeout to 11 s. A second cancellation makes psycopg give up at once and
    close the connection (psycopg#1435), so an overdue poll is cancelled until it ends.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=budget_s)
    except asyncio.CancelledError:  # the scheduler's own deadline came first
        await _abandon(task)
        await on_abandon()
        raise
    if task in done:
        return task.result()
    await _abandon(task)
    await on_abandon()
    raise TimeoutError


async def _abandon(task: asyncio.Future[Any]) -> None:
    # Whenever it ends, its error is retrieved: asyncio would log "never retrieved" otherwise.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    for _ in range(5):
        task.cancel()
        finished, _ = await asyncio.wait({task}, timeout=0.05)
        if finished:
            break


def _setting(settings: Mapping[str, object], key: str, default: float) -> float:
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"setting {key} must be a number, got {value!r}")
