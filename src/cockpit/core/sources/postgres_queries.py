"""The PostgreSQL source's SQL and the pure logic around it: rows to fields, statement deltas.

Every statement the cockpit sends starts with the MARKER comment. pg_stat_statements keeps a
leading comment in the text it stores, which is how the cockpit leaves its own statements out
of `queries_per_min` and `mean_query_ms` (a workload statement of exactly the same shape as
one of these would share its entry and be left out too; none of an application's should).

Scope: the connection fields describe the whole server (connections are a server-wide resource
measured against `max_connections`); the statement fields describe the database the DSN names
(the application's workload, not its neighbours').

Meanings: every count is of client backends other than the cockpit's own connection, so
`pool_used` = connections / max_connections (superuser_reserved_connections not subtracted).
`waiting` = sessions waiting on a heavyweight lock. `slow_queries` = active statements running
longer than `slow_query` (a statement blocked on a lock counts: it is slow for its caller).
`queries_per_min` counts top-level statements, utility ones (BEGIN, SET) included when
pg_stat_statements.track_utility is on (the default); `mean_query_ms` is execution time only
(planning time is tracked apart, and only with pg_stat_statements.track_planning).
The slowest statements are ranked apart, from the same rows (`postgres_slowest`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

MARKER = "/* cockpit */"
SLOW_TOP = 5  # slow query texts handed to the UI
QUERY_CHARS = 120
MIN_STATEMENTS_VERSION = (1, 9)  # pg_stat_statements_info and `toplevel` (PostgreSQL 14+)

ACTIVITY_FIELDS = (
    "connections",
    "active",
    "idle",
    "idle_in_tx",
    "waiting",
    "max_connections",
    "pool_used",
    "slow_queries",
)
STATE_FIELDS = tuple(f for f in ACTIVITY_FIELDS if f != "max_connections")
STATEMENT_FIELDS = ("queries_per_min", "mean_query_ms")

NOT_INSTALLED = "pg_stat_statements is not installed: CREATE EXTENSION pg_stat_statements"
STATS_RESET = "statement stats were reset"
DEALLOCATED = "entries were deallocated between polls"
FIRST_SAMPLE = "first sample"
NO_STATEMENTS = "no statements in the window"

# One snapshot of pg_stat_activity (a backend reads it once per transaction), the cockpit's own
# connection left out. `waiting` counts sessions waiting on a heavyweight lock (row, table,
# advisory: wait_event_type 'Lock'); short internal waits (LWLock, IO) are not a pile-up.
# Without pg_read_all_stats, other users' sessions show with a NULL backend_type and state:
# they are counted as `hidden` so the source can say its numbers would be incomplete.
ACTIVITY_SQL = (
    MARKER
    + """
WITH a AS MATERIALIZED (
    SELECT pid, backend_type, state, wait_event_type, query_start, query
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
), c AS (
    SELECT *, extract(epoch FROM clock_timestamp() - query_start)::float8 AS duration_s
    FROM a WHERE backend_type = 'client backend'
)
SELECT
    current_user::text AS role,
    current_setting('max_connections')::int AS max_connections,
    (SELECT count(*) FROM a WHERE backend_type IS NULL) AS hidden,
    count(*) AS connections,
    count(*) FILTER (WHERE state IN ('active', 'fastpath function call')) AS active,
    count(*) FILTER (WHERE state = 'idle') AS idle,
    count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_tx,
    count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,
    count(*) FILTER (WHERE state = 'active' AND duration_s > %(slow_s)s) AS slow_queries,
    (SELECT coalesce(json_agg(s), '[]'::json) FROM (
        SELECT pid, duration_s, left(query, 400) AS query FROM c
        WHERE state = 'active' AND duration_s > %(slow_s)s
        ORDER BY duration_s DESC LIMIT %(top)s) s) AS slow_top
FROM c
"""
)

EXTENSION_SQL = (
    MARKER
    + """
SELECT n.nspname, e.extversion FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'
"""
)


def statements_sql(schema: str) -> sql.Composed:
    """This database's top-level statements, the cockpit's own left out, summed per queryid
    (over roles), each row with the info view's dealloc and stats_reset. The LEFT JOIN keeps
    one row (of NULL statements) when none ran. Only numbers travel: texts come apart."""
    return sql.SQL(
        MARKER
        + """
SELECT i.dealloc, i.stats_reset, s.queryid, s.calls, s.total_ms
FROM {schema}.pg_stat_statements_info i LEFT JOIN (
    SELECT queryid, sum(calls)::float8 AS calls, sum(total_exec_time)::float8 AS total_ms
    FROM {schema}.pg_stat_statements
    WHERE toplevel
      AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND query NOT LIKE {marker}
    GROUP BY queryid
) s ON true
"""
    ).format(schema=sql.Identifier(schema), marker=sql.Literal(MARKER + "%"))


def set_statement_timeout_sql(seconds: float) -> sql.Composed:
    return sql.SQL(MARKER + " SET statement_timeout = {}").format(
        sql.Literal(max(1, round(seconds * 1000)))
    )


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def too_old(version: str) -> str | None:
    """Why an installed pg_stat_statements cannot be used, or None when it can."""
    if version_tuple(version) >= MIN_STATEMENTS_VERSION:
        return None
    return (
        f"pg_stat_statements {version} is too old (needs 1.9, PostgreSQL 14+):"
        " ALTER EXTENSION pg_stat_statements UPDATE"
    )


def short_query(text: object, limit: int = QUERY_CHARS) -> str:
    """A query as one line for the UI: whitespace collapsed, cut at `limit` with an ellipsis."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Fields:
    """Part of a Reading: values, the reasons for the None ones, and details for the UI."""

    values: dict[str, float | None]
    reasons: dict[str, str]
    details: dict[str, object]


def unknown(fields: tuple[str, ...], reason: str) -> Fields:
    return Fields(dict.fromkeys(fields), dict.fromkeys(fields, reason), {})


def activity_fields(row: Mapping[str, object]) -> Fields:
    """The activity row as fields. Sessions hidden by missing privileges make every count but
    max_connections unknowable: reported as None with the grant that would fix it."""
    max_connections = float(number(row["max_connections"]))
    if number(row["hidden"]) > 0:
        reason = (
            "permission denied for other users' sessions in pg_stat_activity"
            f" (GRANT pg_read_all_stats TO {row['role']})"
        )
        part = unknown(STATE_FIELDS, reason)
        part.values["max_connections"] = max_connections
        return part
    connections = float(number(row["connections"]))
    values: dict[str, float | None] = {
        name: float(number(row[name]))
        for name in ("connections", "active", "idle", "idle_in_tx", "waiting", "slow_queries")
    }
    values["max_connections"] = max_connections
    values["pool_used"] = connections / max_connections if max_connections > 0 else None
    reasons = {} if max_connections > 0 else {"pool_used": "max_connections is 0"}
    slow = [
        {
            "pid": int(number(item["pid"])),
            "duration_s": round(float(number(item["duration_s"])), 3),
            "query": short_query(item.get("query")),
        }
        for item in _items(row.get("slow_top"))
    ]
    return Fields(values, reasons, {"slow_queries": slow})


def number(value: object) -> float:
    if isinstance(value, int | float):
        return value
    raise TypeError(f"expected a number, got {value!r}")


def _items(value: object) -> list[Mapping[str, object]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


@dataclass(frozen=True)
class StatementSample:
    """pg_stat_statements totals at one time: calls, execution ms, and the info view's
    deallocation count and reset time, which say whether two samples can be subtracted."""

    t: float
    calls: float
    total_ms: float
    dealloc: int
    stats_reset: datetime | None


class StatementWindow:
    """Statement deltas over the window: queries per minute and mean execution time.

    The base sample is the newest one at least `window_s` old, so a rate spans at least the
    window (up to one interval more). A reset or deallocation between two samples breaks the
    chain: that poll is unknown with the reason, and the next one starts from the new sample.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: deque[StatementSample] = deque()

    def forget(self) -> None:
        """Start over (a poll without a sample, a new connection): the next delta needs two."""
        self._samples.clear()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, sample: StatementSample) -> Fields:
        broken = self.break_reason(sample)
        if broken is not None:
            self._samples.clear()
            self._samples.append(sample)
            return unknown(STATEMENT_FIELDS, broken)
        self._samples.append(sample)
        while len(self._samples) >= 2 and self._samples[1].t <= sample.t - self.window_s:
            self._samples.popleft()
        base = self._samples[0]
        span = sample.t - base.t
        if len(self._samples) < 2 or span <= 0:
            return unknown(STATEMENT_FIELDS, FIRST_SAMPLE)
        calls = sample.calls - base.calls
        values: dict[str, float | None] = {"queries_per_min": calls / span * 60.0}
        reasons: dict[str, str] = {}
        if calls > 0:
            values["mean_query_ms"] = (sample.total_ms - base.total_ms) / calls
        else:
            values["mean_query_ms"] = None
            reasons["mean_query_ms"] = NO_STATEMENTS
        return Fields(values, reasons, {})

    def break_reason(self, sample: StatementSample) -> str | None:
        """Why `sample` cannot be subtracted from the last one (reset, eviction), or None."""
        if not self._samples:
            return None
        last = self._samples[-1]
        if sample.stats_reset != last.stats_reset or sample.dealloc < last.dealloc:
            return STATS_RESET
        # Checked before the totals: evicted entries take their calls with them.
        if sample.dealloc > last.dealloc:
            return DEALLOCATED
        if sample.calls < last.calls or sample.total_ms < last.total_ms:
            return STATS_RESET  # e.g. pg_stat_statements_reset() of some entries only
        return None


_SERVER_AT = re.compile(
    r'connection to server (?:at|on socket) "([^"]*)"(?:, port (\d+))? failed: '
)


def describe_connect_error(error: BaseException | str) -> str:
    """psycopg's connection error as one line for a person: "connection refused (host:5432)",
    'password authentication failed for user "x"', "timed out connecting"."""
    if not str(error).strip():
        return type(error).__name__
    text = str(error).strip().splitlines()[0].removeprefix("connection failed: ")
    where = ""
    found = _SERVER_AT.search(text)
    if found:
        host, port = found.groups()
        where = f"{host}:{port}" if port else host
        text = text[found.end() :]
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text).strip()
    if text == "connection timeout expired":
        text = "timed out connecting"
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    if where and ("refused" in text or "timed out" in text or "no such file" in text.lower()):
        text = f"{text} ({where})"
    return text[:300]
