"""The metric history behind `cockpit report`: the plan's metrics downsampled to 10 s buckets
in SQLite beside the state file (`<state>.history.sqlite`).

One row per (metric, 10 s bucket): the mean, lowest and highest of the known points in it,
how many there were (`n`, so buckets merge exactly) and how many were unknown (a gap, not a
zero). Bounded: buckets older than `KEEP_S` (14 days, the bundled plan's 8-day rollout and
its stabilisation) before the newest one are pruned at start and then hourly, so a metric
keeps about 121,000 rows; at the ~43 bytes a row on disk a soak measured, the bundled
plan's 21 metrics take ~110-125 MB at most. Only the metrics the report compares are
recorded (`recorded_metrics`).

Writing is cheap and off the engine's loop: `observe` (each tick, engine thread) folds new
points of the metric store into the open buckets in memory; when the clock enters a new
bucket the finished ones go to a writer thread as one transaction. Several cockpits may
record one state: WAL mode, a busy timeout, and an upsert that merges a bucket that is
already there (a late point, or another cockpit's probes of the same system) instead of
losing either. A history that cannot be written never stops the watch: the first failure is
kept in `failure` for the owner to say once, and the buckets are dropped.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cockpit.core.atomic import FILE_MODE, ensure_folder, open_with_mode
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan
from cockpit.core.sources.base import one_line

BUCKET_S = 10
KEEP_S = 14 * 86400
PRUNE_EVERY = 360  # writes between prunes: once an hour at one write per bucket
BUSY_TIMEOUT_S = 10.0
QUEUE_LIMIT = 360  # batches waiting for a stuck writer (an hour) before they are dropped
SCHEMA_VERSION = 1
HTTP_POOLED = ("http.p50", "http.p95", "http.p99", "http.error_rate", "http.rps")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    """CREATE TABLE IF NOT EXISTS samples (
    metric_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,          -- start of the bucket, UTC epoch seconds
    n INTEGER NOT NULL,               -- known points
    mean REAL, lo REAL, hi REAL,      -- of the known points; NULL when n = 0
    unknown_n INTEGER NOT NULL,       -- points that were unknown (stale, down, too few)
    PRIMARY KEY (metric_id, bucket)
) WITHOUT ROWID""",
)
# Merge, never replace: both sets of points count, whoever wrote first.
_UPSERT = """
INSERT INTO samples (metric_id, bucket, n, mean, lo, hi, unknown_n) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (metric_id, bucket) DO UPDATE SET
    n = n + excluded.n,
    mean = CASE WHEN n + excluded.n = 0 THEN NULL ELSE
        (coalesce(mean, 0) * n + coalesce(excluded.mean, 0) * excluded.n) / (n + excluded.n) END,
    lo = coalesce(min(lo, excluded.lo), lo, excluded.lo),
    hi = coalesce(max(hi, excluded.hi), hi, excluded.hi),
    unknown_n = unknown_n + excluded.unknown_n
"""

Row = tuple[str, int, int, float | None, float | None, float | None, int]


class HistoryError(Exception):
    """The history cannot be read or written; one line naming the file."""


def history_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".history.sqlite")


def recorded_metrics(plan: Plan) -> tuple[str, ...]:
    """What the report compares: every metric a rule or the baseline names, and pooled HTTP."""
    names: dict[str, None] = {}
    rules = [*plan.preflight_rules, *(plan.auto_rollback.when if plan.auto_rollback else ())]
    for phase in plan.phases:
        rules += [*phase.success, *phase.failure]
    for name in (*(r.metric for r in rules), *plan.baseline, *HTTP_POOLED):
        if name in plan.catalog:
            names[name] = None
    return tuple(names)


def bucket_of(t: float, bucket_s: int = BUCKET_S) -> int:
    return int(math.floor(t / bucket_s)) * bucket_s


class _Agg:
    __slots__ = ("hi", "lo", "n", "total", "unknown")

    def __init__(self) -> None:
        self.n, self.total, self.unknown = 0, 0.0, 0
        self.lo, self.hi = math.inf, -math.inf

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            self.unknown += 1
            return
        self.n += 1
        self.total += value
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)

    def row(self, metric: str, bucket: int) -> Row:
        if not self.n:
            return (metric, bucket, 0, None, None, None, self.unknown)
        return (metric, bucket, self.n, self.total / self.n, self.lo, self.hi, self.unknown)


def connect(path: Path) -> sqlite3.Connection:
    """A writer's connection, creating the file (group-writable, as the state is) and schema."""
    ensure_folder(path.parent)
    fd, _ = open_with_mode(path, os.O_RDWR, FILE_MODE)  # SQLite gives -wal/-shm the same mode
    os.close(fd)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable enough, no fsync/commit
        with _transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise HistoryError(f"{path}: history format {version}, this cockpit knows 1")
            if not version:
                for statement in _SCHEMA:  # not executescript: it would commit mid-transaction
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock up front (waiting out the busy timeout), so two
    writers never deadlock upgrading a read to a write."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def write_rows(conn: sqlite3.Connection, rows: Sequence[Row], *, prune_before: int | None) -> None:
    """One transaction: merge `rows`; with `prune_before`, drop every older bucket."""
    with _transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO metrics (name) VALUES (?)", [(r[0],) for r in rows])
        ids = dict(conn.execute("SELECT name, id FROM metrics").fetchall())
        conn.executemany(_UPSERT, [(ids[r[0]], *r[1:]) for r in rows])
        if prune_before is not None:
            for metric_id in ids.values():  # along the primary key: no full scan
                conn.execute(
                    "DELETE FROM samples WHERE metric_id = ? AND bucket < ?",
                    (metric_id, prune_before),
                )


class HistoryRecorder:
    """Folds a metric store's new points into 10 s buckets and writes each finished one once.

    `observe` belongs to the engine's thread; `close` may come from any thread (at exit).
    """

    def __init__(
        self,
        path: Path,
        metrics: Iterable[str],
        *,
        keep_s: int = KEEP_S,
        bucket_s: int = BUCKET_S,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.path = Path(path)
        self.metrics = tuple(metrics)
        self.keep_s = keep_s
        self.bucket_s = bucket_s
        self.failure: str | None = None  # the first failure, set once; the owner says it
        # Per metric: the newest point's time and how many points at that time were taken
        # (a store clamps a late point to its newest time, so times repeat).
        self._cursor: dict[str, tuple[float, int]] = {}
        self._open: dict[tuple[str, int], _Agg] = {}
        self._current: int | None = None  # the bucket the clock was in at the last observe
        self._lock = threading.Lock()
        self._queue: queue.Queue[list[Row] | None] = queue.Queue(maxsize=queue_limit)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._writes = 0

    def observe(self, store: MetricStore, now: float) -> None:
        """Take the points recorded since the last call; hand finished buckets to the writer."""
        with self._lock:
            if self._closed:
                return
            for name in self.metrics:
                since, taken = self._cursor.get(name, (-math.inf, 0))
                points = store.points(name, since)  # from `since` on, inclusive
                for point in points[taken:]:
                    key = (name, bucket_of(point.t, self.bucket_s))
                    agg = self._open.get(key)
                    if agg is None:
                        agg = self._open[key] = _Agg()
                    agg.add(point.value)
                if points:
                    newest = points[-1].t
                    self._cursor[name] = (newest, sum(1 for p in points if p.t == newest))
            current = bucket_of(now, self.bucket_s)
            if current == self._current:
                return
            self._current = current
            rows = self._take(lambda bucket: bucket < current)
        if rows:
            self._send(rows)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything buffered, the unfinished bucket too, and stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            rows = self._take(lambda bucket: True)
        thread = self._thread
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            thread.join(timeout)
        if rows:
            # In the caller's thread: a new thread may not start at interpreter exit.
            try:
                conn = connect(self.path)
                try:
                    write_rows(conn, rows, prune_before=None)
                finally:
                    conn.close()
            except Exception as exc:
                self._fail(exc)

    def _take(self, finished: Callable[[int], bool]) -> list[Row]:
        keys = [key for key in self._open if finished(key[1])]
        return [self._open.pop(key).row(*key) for key in sorted(keys, key=lambda k: k[1])]

    def _send(self, rows: list[Row]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_loop, name="cockpit-history", daemon=True
            )
            self._thread.start()
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self._fail(HistoryError(f"{self.path}: the writer is stuck; buckets dropped"))

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (rows := self._queue.get()) is not None:
                try:
                    if conn is None:
                        conn = connect(self.path)
                    newest = max(row[1] for row in rows)
                    prune = self._writes % PRUNE_EVERY == 0  # at start, then hourly
                    write_rows(conn, rows, prune_before=newest - self.keep_s if prune else None)
                    self._writes += 1
                except Exception as exc:  # the next batch tries a fresh connection
                    self._fail(exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            text = str(exc) if isinstance(exc, HistoryError) else f"{self.path}: {one_line(exc)}"
            self.failure = f"metric history not recorded: {text}"


@dataclass(frozen=True)
class Summary:
    """A metric over a time range, from its buckets."""

    mean: float | None  # of every known point
    low: float | None  # the lowest bucket mean (a sustained low, not one sample)
    high: float | None  # the highest bucket mean
    last: float | None  # the newest bucket's mean
    n: int  # known points
    unknown: int  # unknown points
    buckets: int


@dataclass(frozen=True)
class Series:
    """Means over a range in `len(values)` equal slots of `width` seconds from `start`."""

    start: float
    width: float
    values: tuple[float | None, ...]


class HistoryReader:
    """Reads a history file (read-only); a missing file reads as empty."""

    def __init__(self, path: Path, *, bucket_s: int = BUCKET_S) -> None:
        self.path = Path(path)
        self.bucket_s = bucket_s
        self._conn: sqlite3.Connection | None = None
        self._ids: dict[str, int] = {}
        if not self.path.exists():
            return
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise HistoryError(f"{self.path}: history format {version}, this cockpit knows 1")
            if version:
                self._ids = dict(self._conn.execute("SELECT name, id FROM metrics").fetchall())
        except sqlite3.Error as exc:
            self.close()
            raise HistoryError(f"{self.path}: cannot read the metric history: {exc}") from None
        except HistoryError:
            self.close()
            raise

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def metrics(self) -> list[str]:
        return sorted(self._ids)

    def summary(self, metric: str, since: float, until: float) -> Summary | None:
        """The buckets that overlap [since, until); None when there are none."""
        rows = self._query(
            metric,
            since,
            until,
            "SELECT sum(mean * n) / sum(n), min(mean), max(mean), sum(n), sum(unknown_n),"
            " count(*), (SELECT mean FROM s ORDER BY bucket DESC LIMIT 1) FROM s",
        )
        if not rows or not rows[0][5]:
            return None
        mean, low, high, n, unknown, buckets, last = rows[0]
        return Summary(mean, low, high, last, n, unknown, buckets)

    def series(self, metric: str, since: float, until: float, slots: int) -> Series:
        """Means of [since, until) in at most `slots` slots (each a whole number of buckets)."""
        start = bucket_of(since, self.bucket_s)
        span = max(until - start, self.bucket_s)
        width = max(1, math.ceil(span / max(slots, 1) / self.bucket_s)) * self.bucket_s
        values: list[float | None] = [None] * max(1, math.ceil(span / width))
        sql = f"SELECT (bucket - {start}) / {width}, sum(mean * n) / sum(n) FROM s GROUP BY 1"
        for slot, mean in self._query(metric, since, until, sql):
            if 0 <= slot < len(values):
                values[slot] = mean
        return Series(float(start), float(width), tuple(values))

    def _query(self, metric: str, since: float, until: float, select: str) -> list[tuple[Any, ...]]:
        """`select` over `s`: the metric's buckets overlapping [since, until)."""
        metric_id = self._ids.get(metric)
        if self._conn is None or metric_id is None:
            return []
        sql = (
            "WITH s AS (SELECT * FROM samples WHERE metric_id = ? AND bucket >= ?"
            f" AND bucket < ?) {select}"
        )
        try:
            return self._conn.execute(sql, (metric_id, bucket_of(since), until)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot read the metric history: {exc}") from None
