"""The PostgreSQL source's slowest statements: ranked by mean execution time over the window.

`statements_sql` (in `postgres_queries`) returns this database's statements summed per
queryid; between two polls, each statement that ran gives a delta (calls, execution ms). The
deltas of the window are kept (only statements that ran, so memory follows the workload's
variety, bounded by SLOWEST_MAX_ENTRIES) and ranked by mean time. Texts are fetched apart,
only for the few that rank, and cached by queryid. The cockpit's own statements are left out
by the same MARKER as the rates. A break in the counters (reset, eviction) starts over, as
`StatementWindow` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from cockpit.core.sources.postgres_queries import (
    FIRST_SAMPLE,
    MARKER,
    StatementSample,
    number,
    short_query,
)

SLOWEST_TOP = 5  # statements ranked by mean time over the window
SLOWEST_CHARS = 200  # their texts, as one line
TEXT_FETCH_CHARS = 2000  # read of each text before its whitespace is collapsed
TEXT_CACHE = 64  # texts kept by queryid, so a statement that keeps ranking is read once
# Per-statement deltas kept over the window, at most: past it the oldest polls go (the
# ranking then covers less than the window, and says how much).
SLOWEST_MAX_ENTRIES = 20_000


def texts_sql(schema: str) -> sql.Composed:
    """The texts of the statements `%(ids)s` (bigint[]) in this database."""
    return sql.SQL(
        MARKER
        + """
SELECT DISTINCT ON (queryid) queryid, left(query, {chars})
FROM {schema}.pg_stat_statements
WHERE toplevel AND queryid = ANY(%(ids)s::bigint[])
  AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
    ).format(schema=sql.Identifier(schema), chars=sql.Literal(TEXT_FETCH_CHARS))


# queryid -> (calls, total execution ms). None: other roles' statements, whose queryid and
# text this role may not see (without pg_read_all_stats): counted, never ranked.
Totals = dict[int | None, tuple[float, float]]


def statement_rows(t: float, rows: list[tuple[object, ...]]) -> tuple[StatementSample, Totals]:
    """`statements_sql`'s rows (at least one) as the sums' sample and per-statement totals."""
    dealloc, stats_reset = int(number(rows[0][0])), rows[0][1]
    totals: Totals = {}
    for _, _, queryid, calls, total_ms in rows:
        if calls is None:
            continue  # the one row of a database where no statement ran
        totals[None if queryid is None else int(number(queryid))] = (
            float(number(calls)),
            float(number(total_ms)),
        )
    calls_sum = sum(c for c, _ in totals.values())
    total_sum = sum(ms for _, ms in totals.values())
    reset = stats_reset if isinstance(stats_reset, datetime) else None
    return StatementSample(t, calls_sum, total_sum, dealloc, reset), totals


@dataclass(frozen=True)
class SlowQuery:
    """One statement over the window: its calls, mean and total execution ms, and its text."""

    queryid: int
    calls: int
    mean_ms: float
    total_ms: float
    query: str


@dataclass(frozen=True)
class Slowest:
    """The slowest statements of the window that ended at `taken_at` (`span_s` long).

    `checked_at` is the last poll that tried; when it could not rank, `reason` says why and
    `queries` are still the last ranked ones, from `taken_at`. `hidden_calls` ran in
    statements this role may not see, so they cannot be ranked.
    """

    queries: tuple[SlowQuery, ...] = ()
    taken_at: float | None = None
    span_s: float = 0.0
    checked_at: float | None = None
    reason: str | None = None
    hidden_calls: int = 0


@dataclass(frozen=True)
class _Delta:
    start: float
    end: float
    changed: dict[int | None, tuple[float, float]]


class SlowestWindow:
    """Per-statement deltas between polls, kept over the window, ranked by mean time.

    Each poll keeps only the statements that ran since the one before (a few, usually), so
    memory follows the workload's variety, bounded by `max_entries` over the window.
    """

    def __init__(
        self, window_s: float, *, top: int = SLOWEST_TOP, max_entries: int = SLOWEST_MAX_ENTRIES
    ) -> None:
        self.window_s = window_s
        self.top = top
        self.max_entries = max_entries
        self._last: Totals | None = None
        self._last_t = 0.0
        self._deltas: deque[_Delta] = deque()
        self._entries = 0

    def forget(self) -> None:
        self._last = None
        self._deltas.clear()
        self._entries = 0

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def span_s(self) -> float:
        return self._deltas[-1].end - self._deltas[0].start if self._deltas else 0.0

    def add(self, t: float, totals: Totals, broken: str | None = None) -> str | None:
        """Take this poll's totals; None when a ranking is ready, else why not (`broken`:
        the counters broke since the last poll, as `StatementWindow.break_reason` says)."""
        if broken is not None or self._last is None:
            self.forget()
            self._last, self._last_t = totals, t
            return broken or FIRST_SAMPLE
        changed: dict[int | None, tuple[float, float]] = {}
        for queryid, (calls, total_ms) in totals.items():
            before_calls, before_ms = self._last.get(queryid, (0.0, 0.0))
            if calls > before_calls and total_ms >= before_ms:  # else reset on its own: skip
                changed[queryid] = (calls - before_calls, total_ms - before_ms)
        self._deltas.append(_Delta(self._last_t, t, changed))
        self._entries += len(changed)
        self._last, self._last_t = totals, t
        while len(self._deltas) > 1 and (
            self._deltas[0].end <= t - self.window_s or self._entries > self.max_entries
        ):
            self._entries -= len(self._deltas.popleft().changed)
        return None

    def ranking(self) -> tuple[list[tuple[int, float, float]], int]:
        """The `top` statements by mean time as (queryid, calls, total ms), and hidden calls."""
        sums: dict[int | None, list[float]] = {}
        for delta in self._deltas:
            for queryid, (calls, total_ms) in delta.changed.items():
                both = sums.setdefault(queryid, [0.0, 0.0])
                both[0] += calls
                both[1] += total_ms
        hidden = sums.pop(None, [0.0, 0.0])[0]
        found = [(qid, c, ms) for qid, (c, ms) in sums.items() if qid is not None and c > 0]
        found.sort(key=lambda row: (-row[2] / row[1], -row[2], row[0]))
        return found[: self.top], int(hidden)


def slow_queries(
    ranked: list[tuple[int, float, float]], texts: Mapping[int, str]
) -> tuple[SlowQuery, ...]:
    """The ranking with its texts as one line each (a missing text says so)."""
    return tuple(
        SlowQuery(
            queryid=qid,
            calls=int(calls),
            mean_ms=total_ms / calls,
            total_ms=total_ms,
            query=short_query(
                texts.get(qid, "(text no longer in pg_stat_statements)"), SLOWEST_CHARS
            ),
        )  # fmt: skip
        for qid, calls, total_ms in ranked
    )


class TextCache:
    """Statement texts by queryid, the oldest dropped past `size`."""

    def __init__(self, size: int = TEXT_CACHE) -> None:
        self.size = size
        self._texts: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def missing(self, ids: list[int]) -> list[int]:
        return [qid for qid in ids if qid not in self._texts]

    def put(self, queryid: int, text: str) -> None:
        self._texts.pop(queryid, None)
        self._texts[queryid] = text
        while len(self._texts) > self.size:
            del self._texts[next(iter(self._texts))]

    def get(self, ids: list[int]) -> dict[int, str]:
        return {qid: self._texts[qid] for qid in ids if qid in self._texts}
