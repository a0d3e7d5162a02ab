"""The slowest statements' pure parts: per-statement deltas, ranking by mean time over the
window, memory bounds, texts as one line, and the engine-thread function the UI calls.
No server here (see tests/integration/test_postgres_slowest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg import errors, sql

from cockpit.core.config import load_plan
from cockpit.core.control import Refused
from cockpit.core.engine import Engine, store_for
from cockpit.core.engine_thread import slowest_queries
from cockpit.core.metrics.store import SourceStatus
from cockpit.core.plan import SourceSpec
from cockpit.core.sources import postgres_queries as q
from cockpit.core.sources import postgres_slowest as s
from cockpit.core.sources.postgres import PostgresSource

RESET_AT = datetime(2025, 1, 1, tzinfo=UTC)


def ranked(window: s.SlowestWindow) -> list[tuple[int, float, float]]:
    return window.ranking()[0]


# -- rows from the server ------------------------------------------------------------------------


def test_rows_give_the_sums_and_the_per_statement_totals() -> None:
    rows: list[tuple[object, ...]] = [
        (3, RESET_AT, 11, 10.0, 50.0),
        (3, RESET_AT, 12, 2.0, 4000.0),
        (3, RESET_AT, None, 5.0, 25.0),  # other roles' statements, hidden
    ]
    sample, totals = s.statement_rows(100.0, rows)
    assert sample == q.StatementSample(100.0, 17.0, 4075.0, 3, RESET_AT)
    assert totals == {11: (10.0, 50.0), 12: (2.0, 4000.0), None: (5.0, 25.0)}


def test_a_database_where_nothing_ran_is_one_row_of_nulls() -> None:
    sample, totals = s.statement_rows(5.0, [(0, RESET_AT, None, None, None)])
    assert sample == q.StatementSample(5.0, 0.0, 0.0, 0, RESET_AT)
    assert totals == {}


def test_the_texts_query_is_the_cockpits_own_and_takes_ids() -> None:
    text = s.texts_sql("odd schema").as_string(None)
    assert text.startswith(q.MARKER)  # left out of every count, like the rest
    assert '"odd schema".pg_stat_statements' in text
    assert "queryid = ANY(%(ids)s::bigint[])" in text
    assert f"left(query, {s.TEXT_FETCH_CHARS})" in text


# -- deltas and ranking --------------------------------------------------------------------------


def test_first_poll_has_no_ranking() -> None:
    window = s.SlowestWindow(60)
    assert window.add(0.0, {1: (5.0, 10.0)}) == q.FIRST_SAMPLE
    assert ranked(window) == []


def test_ranked_by_mean_over_the_delta_not_by_total() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {1: (100.0, 100.0), 2: (1.0, 3000.0), 3: (10.0, 10.0)})
    # Since then: 1 ran 1000 times at 5 ms (5 s in all), 2 once for 2.5 s, 3 not at all,
    # 4 is new (its calls all happened since the last poll), 3 times at 100 ms.
    totals = {1: (1100.0, 5100.0), 2: (2.0, 5500.0), 3: (10.0, 10.0), 4: (3.0, 300.0)}
    assert window.add(2.0, totals) is None
    assert ranked(window) == [(2, 1.0, 2500.0), (4, 3.0, 300.0), (1, 1000.0, 5000.0)]
    assert window.span_s == 2.0


def test_ties_on_mean_go_to_the_larger_total() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {})
    window.add(1.0, {7: (1.0, 50.0), 8: (4.0, 200.0)})
    assert [qid for qid, _, _ in ranked(window)] == [8, 7]


def test_only_the_top_few_are_kept() -> None:
    window = s.SlowestWindow(60, top=3)
    window.add(0.0, {})
    window.add(1.0, {qid: (1.0, float(qid)) for qid in range(1, 11)})
    assert [qid for qid, _, _ in ranked(window)] == [10, 9, 8]


def test_the_ranking_sums_every_delta_of_the_window() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {1: (0.0, 0.0)})
    window.add(10.0, {1: (1.0, 1000.0)})  # one call of 1 s
    window.add(20.0, {1: (4.0, 1030.0)})  # three calls of 10 ms
    assert ranked(window) == [(1, 4.0, 1030.0)]  # mean 257.5 ms over the window


def test_deltas_older_than_the_window_go() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {})
    window.add(10.0, {1: (1.0, 5000.0)})  # a 5 s statement, between t=0 and t=10
    window.add(65.0, {1: (1.0, 5000.0), 2: (1.0, 10.0)})
    assert [qid for qid, _, _ in ranked(window)] == [1, 2]  # 10 > 65 - 60: still in
    window.add(71.0, {1: (1.0, 5000.0), 2: (1.0, 10.0)})
    assert [qid for qid, _, _ in ranked(window)] == [2]  # now out of the window
    assert window.span_s == 61.0  # from t=10, the newest poll at least a window old


def test_a_statement_whose_counters_went_back_is_skipped_not_negative() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {1: (10.0, 100.0), 2: (10.0, 100.0)})
    window.add(1.0, {1: (2.0, 20.0), 2: (11.0, 150.0)})  # 1 was reset on its own
    assert ranked(window) == [(2, 1.0, 50.0)]


def test_a_break_starts_over_with_its_reason() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {})
    window.add(1.0, {1: (1.0, 900.0)})
    assert window.add(2.0, {1: (1.0, 900.0)}, broken=q.STATS_RESET) == q.STATS_RESET
    assert ranked(window) == []
    assert window.add(3.0, {1: (2.0, 1000.0)}) is None
    assert ranked(window) == [(1, 1.0, 100.0)]  # from the sample at the break


def test_forget_starts_over() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {})
    window.add(1.0, {1: (1.0, 900.0)})
    window.forget()
    assert window.add(2.0, {1: (5.0, 1000.0)}) == q.FIRST_SAMPLE
    assert window.entries == 0


def test_hidden_statements_are_counted_never_ranked() -> None:
    window = s.SlowestWindow(60)
    window.add(0.0, {None: (10.0, 10.0), 1: (0.0, 0.0)})
    window.add(1.0, {None: (15.0, 99999.0), 1: (1.0, 1.0)})
    found, hidden = window.ranking()
    assert found == [(1, 1.0, 1.0)]
    assert hidden == 5


def test_memory_is_bounded_by_the_window_and_by_max_entries() -> None:
    window = s.SlowestWindow(60)
    totals: s.Totals = {}
    for t in range(1000):  # 3 statements run every second, for 1000 s
        totals = {qid: (float(t), float(t)) for qid in range(3)}
        window.add(float(t), totals)
    assert window.entries == 60 * 3
    capped = s.SlowestWindow(60, max_entries=100)
    for t in range(200):  # 50 statements a poll: two polls' worth fit
        capped.add(float(t), {qid: (float(t), float(t)) for qid in range(50)})
    assert capped.entries == 100
    assert capped.span_s == 2.0  # and the ranking says it covers only that much


def test_a_single_poll_over_the_cap_is_kept_whole() -> None:
    window = s.SlowestWindow(60, max_entries=10)
    window.add(0.0, {})
    window.add(1.0, {qid: (1.0, 1.0) for qid in range(50)})
    assert window.entries == 50  # bounded by the server's pg_stat_statements.max instead


# -- texts -----------------------------------------------------------------------------------------


def test_texts_are_one_line_and_cut_at_200_chars() -> None:
    long = "SELECT\n\t" + ",\n  ".join(f"column_{i}" for i in range(100)) + "\nFROM t"
    found = s.slow_queries([(1, 4.0, 10.0), (2, 1.0, 1.0)], {1: long})
    first, second = found
    assert first == s.SlowQuery(1, 4, 2.5, 10.0, first.query)
    assert len(first.query) == s.SLOWEST_CHARS == 200
    assert first.query.startswith("SELECT column_0, column_1, column_2")
    assert first.query.endswith("…")
    assert "\n" not in first.query
    assert "  " not in first.query
    assert second.query == "(text no longer in pg_stat_statements)"
    short = s.slow_queries([(3, 1.0, 1.0)], {3: "  SELECT pg_sleep($1)\n "})
    assert short[0].query == "SELECT pg_sleep($1)"


def test_the_text_cache_keeps_the_newest() -> None:
    cache = s.TextCache(size=3)
    for qid in range(5):
        cache.put(qid, f"q{qid}")
    assert len(cache) == 3
    assert cache.missing([0, 1, 2, 3, 4]) == [0, 1]
    cache.put(2, "again")  # put again: newest
    cache.put(5, "q5")
    assert cache.get([2, 3, 4, 5]) == {2: "again", 4: "q4", 5: "q5"}


# -- what the engine thread hands the UI -----------------------------------------------------------


def plan_with(tmp_path: Path, sources: str) -> Path:
    path = tmp_path / "cockpit.toml"
    path.write_text(f'[rollout]\nname = "t"\n\n{sources}\n[[phase]]\nname = "all"\ntraffic = 100\n')
    return path


def engine_for(path: Path) -> Engine:
    plan = load_plan(path, {})
    return Engine(plan, store_for(plan), clock=lambda: 500.0)


def test_no_engine_yet_is_refused_with_a_reason() -> None:
    with pytest.raises(Refused, match="the engine is starting"):
        slowest_queries(None)


def test_a_plan_without_postgres_has_no_reports(tmp_path: Path) -> None:
    http = '[sources.api]\nkind = "http"\nurl = "http://127.0.0.1:9/"\n'
    assert slowest_queries(engine_for(plan_with(tmp_path, http))) == ()


def test_each_postgres_source_reports_its_slowest_and_its_health(tmp_path: Path) -> None:
    db = (
        '[sources.db]\nkind = "postgres"\ndsn = "host=127.0.0.1 port=9"\n'
        'every = "5s"\nslow_query = "1500ms"\n'
    )
    engine = engine_for(plan_with(tmp_path, db))
    (report,) = slowest_queries(engine)
    assert report.source == "db"
    assert report.now == 500.0
    assert report.status == SourceStatus()  # never polled
    assert report.slowest == s.Slowest()
    assert report.stale_after_s == 15.0
    assert report.slow_query_s == 1.5
    engine.store.set_source("db", SourceStatus(False, "connection refused", None, 499.0))
    (down,) = slowest_queries(engine)
    assert down.status.error == "connection refused"


# -- the source keeps a ranking each poll ----------------------------------------------------------


class FakeCursor:
    """Answers `_read_statements`' queries from scripted rows; the texts query can fail."""

    def __init__(self, rows: list[tuple[object, ...]], texts: dict[int, str] | Exception) -> None:
        self.rows = rows
        self.texts = texts
        self.last = ""
        self.asked: list[list[int]] = []

    async def __aenter__(self) -> FakeCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, query: object, params: dict[str, list[int]] | None = None) -> None:
        self.last = query.as_string(None) if isinstance(query, sql.Composable) else str(query)
        if "queryid = ANY" in self.last:
            assert params is not None
            self.asked.append(params["ids"])
            if isinstance(self.texts, Exception):
                raise self.texts

    async def fetchone(self) -> tuple[object, ...]:
        return ("public", "1.10")  # the extension

    async def fetchall(self) -> list[tuple[object, ...]]:
        if "queryid = ANY" in self.last:
            assert isinstance(self.texts, dict)
            return list(self.texts.items())
        return self.rows


class FakeConn:
    closed = False
    broken = False

    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor = cursor

    def cursor(self) -> FakeCursor:
        return self._cursor


def rows(*statements: tuple[int, float, float]) -> list[tuple[object, ...]]:
    return [(0, RESET_AT, qid, calls, ms) for qid, calls, ms in statements]


async def test_the_source_ranks_each_poll_and_reads_each_text_once() -> None:
    spec = SourceSpec("db", "postgres", every_s=2, timeout_s=1, settings={"dsn": "x"})
    source = PostgresSource(spec)
    cursor = FakeCursor(rows((1, 1.0, 1.0)), {7: "SELECT\n  pg_sleep($1)"})
    conn: Any = FakeConn(cursor)
    await source._read_statements(conn, 10.0)
    assert source.slowest.reason == q.FIRST_SAMPLE
    cursor.rows = rows((1, 1.0, 1.0), (7, 1.0, 900.0))
    await source._read_statements(conn, 12.0)
    assert source.slowest == s.Slowest(
        (s.SlowQuery(7, 1, 900.0, 900.0, "SELECT pg_sleep($1)"),), 12.0, 2.0, 12.0, None, 0
    )
    cursor.rows = rows((1, 2.0, 2.0), (7, 2.0, 1800.0))
    await source._read_statements(conn, 14.0)
    assert [found.queryid for found in source.slowest.queries] == [7, 1]
    assert cursor.asked == [[7], [1]]  # 7's text was kept


async def test_unreadable_texts_cost_the_texts_not_the_rates() -> None:
    spec = SourceSpec("db", "postgres", every_s=2, timeout_s=1, settings={"dsn": "x"})
    source = PostgresSource(spec)
    cancelled = errors.QueryCanceled("canceling statement due to statement timeout")
    cursor = FakeCursor([(0, RESET_AT, None, None, None)], cancelled)  # nothing ran yet
    conn: Any = FakeConn(cursor)
    await source._read_statements(conn, 10.0)
    cursor.rows = rows((7, 3.0, 30.0))
    fields = await source._read_statements(conn, 40.0)
    assert fields.values == {"queries_per_min": 6.0, "mean_query_ms": 10.0}
    (only,) = source.slowest.queries
    assert only.query == "(text unreadable: canceling statement due to statement timeout)"
    assert source.slowest.reason is None
