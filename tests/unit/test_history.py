"""The metric history: 10 s buckets in SQLite, written once per bucket, bounded, shared."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.history import (
    HistoryError,
    HistoryReader,
    HistoryRecorder,
    Row,
    connect,
    history_path,
    recorded_metrics,
    write_rows,
)
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import Operator
from cockpit.core.watch import Watch

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000  # a bucket boundary


def rows(path: Path) -> list[tuple[object, ...]]:
    """Every bucket written so far (none while the writer is still creating the file)."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            return conn.execute(
                "SELECT name, bucket, n, mean, lo, hi, unknown_n FROM samples"
                " JOIN metrics ON metrics.id = metric_id ORDER BY name, bucket"
            ).fetchall()
        except sqlite3.OperationalError:  # no tables yet
            return []


def wait_for(check: Callable[[], object], what: str, deadline_s: float = 30.0) -> None:
    """Poll (the writer is a thread); generous deadline, no timed assertion."""
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_points_fold_into_ten_second_buckets(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = MetricStore(horizon_s=3600)
    recorder = HistoryRecorder(path, ["web.p95", "web.up"])
    for i, value in enumerate([100.0, 300.0, None, 200.0]):
        store.record("web.p95", T0 + 2 * i, value, None if value else "stale")
    store.record("web.p95", T0 + 11, 50.0)  # next bucket
    store.record("other.p95", T0 + 1, 1.0)  # not recorded
    recorder.observe(store, T0 + 12)
    recorder.close()
    assert rows(path) == [
        ("web.p95", T0, 3, 200.0, 100.0, 300.0, 1),
        ("web.p95", T0 + 10, 1, 50.0, 50.0, 50.0, 0),
    ]
    with HistoryReader(path) as reader:
        summary = reader.summary("web.p95", T0, T0 + 20)
        assert summary is not None
        assert summary.mean == pytest.approx(650 / 4)  # every known point weighs the same
        assert (summary.low, summary.high, summary.last) == (50.0, 200.0, 50.0)
        assert (summary.n, summary.unknown, summary.buckets) == (4, 1, 2)
        assert reader.summary("web.up", T0, T0 + 20) is None
        series = reader.series("web.p95", T0, T0 + 40, slots=10)
        assert series.values == (200.0, 50.0, None, None)


def test_a_bucket_is_written_once_when_the_clock_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = MetricStore(horizon_s=3600)
    recorder = HistoryRecorder(path, ["web.p95"])
    try:
        for second in range(10):  # ticks inside one bucket: nothing is written
            store.record("web.p95", T0 + second, 10.0)
            recorder.observe(store, T0 + second + 0.5)
        assert not path.exists()
        store.record("web.p95", T0 + 10, 20.0)
        recorder.observe(store, T0 + 10.5)
        wait_for(lambda: rows(path), "the first bucket")
        assert rows(path) == [("web.p95", T0, 10, 10.0, 10.0, 10.0, 0)]
        store.record("web.p95", T0 + 9.5, 40.0)  # late (clamped to T0 + 10 by the store)
        recorder.observe(store, T0 + 20.5)
        wait_for(lambda: len(rows(path)) == 2, "the second bucket")
    finally:
        recorder.close()
    assert rows(path)[1] == ("web.p95", T0 + 10, 2, 30.0, 20.0, 40.0, 0)
    assert recorder.failure is None


def test_old_buckets_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = MetricStore(horizon_s=100_000)
    recorder = HistoryRecorder(path, ["web.p95", "web.up"], keep_s=60)
    try:
        for second in range(0, 200, 5):
            store.record("web.p95", T0 + second, float(second))
            store.record("web.up", T0 + second, 1.0)
        recorder.observe(store, T0 + 205)  # one batch; the first write prunes
        wait_for(lambda: rows(path), "the batch")
    finally:
        recorder.close()
    buckets = {(name, bucket) for name, bucket, *_ in rows(path)}
    assert min(bucket for _, bucket in buckets) == T0 + 130  # newest (190) - 60
    assert {name for name, _ in buckets} == {"web.p95", "web.up"}


def test_concurrent_writers_merge_their_buckets(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    batch: list[Row] = [("web.p95", T0 + 10 * b, 2, 5.0, 4.0, 6.0, 1) for b in range(20)]
    errors: list[BaseException] = []

    def writer(value: float) -> None:
        try:
            conn = connect(path)
            try:
                for _ in range(10):
                    mine = [(m, b, n, value, value, value, u) for m, b, n, _, _, _, u in batch]
                    write_rows(conn, mine, prune_before=None)
            finally:
                conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(float(v),)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = rows(path)
    assert len(found) == 20
    for _, _, n, mean, lo, hi, unknown in found:
        assert (n, unknown) == (80, 40)
        assert mean == pytest.approx(2.5)
        assert (lo, hi) == (1.0, 4.0)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_history_that_cannot_be_written_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    store = MetricStore(horizon_s=3600)
    store.record("web.p95", T0, 1.0)
    recorder = HistoryRecorder(blocker / "state.toml.history.sqlite", ["web.p95"])
    recorder.observe(store, T0 + 1)
    recorder.close()  # writes the open bucket here, fails, keeps the failure
    assert recorder.failure is not None
    assert recorder.failure.startswith("metric history not recorded: ")
    assert "not-a-folder" in recorder.failure


def test_reading_a_damaged_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot read the metric history"):
        HistoryReader(path)
    with HistoryReader(tmp_path / "missing.sqlite") as empty:  # no history yet: empty
        assert empty.summary("web.p95", 0, T0) is None
        assert empty.metrics() == []


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def bundled_cockpit(tmp_path: Path, clock: Clock) -> Cockpit:
    shutil.copy(REPO / "cockpit.toml", tmp_path / "cockpit.toml")
    plan = load_plan(tmp_path / "cockpit.toml", environ={})
    return Cockpit(plan, Operator("alice"), MetricStore(), clock=clock)


def test_recorded_metrics_are_what_the_report_compares(tmp_path: Path) -> None:
    plan = bundled_cockpit(tmp_path, Clock()).plan
    names = recorded_metrics(plan)
    assert {"http.error_rate", "cache.hit_rate", "farms.p95", "db.queries_per_min"} <= set(names)
    assert {"farms.mean", "search.p99", "http.p95", "http.rps"} <= set(names)  # baseline, pooled
    assert "db.idle" not in names
    assert len(names) == len(set(names)) < 30


def ticks(watch: Watch, clock: Clock, seconds: range) -> None:
    for second in seconds:
        clock.now = T0 + second + 0.5
        watch.cockpit.metrics.record("http.error_rate", T0 + second, 0.001)
        watch.tick()


def test_watch_records_and_a_read_only_watch_does_not(tmp_path: Path) -> None:
    clock = Clock()
    cockpit = bundled_cockpit(tmp_path, clock)
    watcher = Watch(cockpit, say=lambda line: None, read_only=True)
    assert watcher.history is None
    ticks(watcher, clock, range(12))
    assert not history_path(cockpit.plan.state_path).exists()
    watch = Watch(cockpit, say=lambda line: None)
    ticks(watch, clock, range(12, 25))
    watch.close()
    found = rows(history_path(cockpit.plan.state_path))
    # Points the store already held count once; the read-only watch took none of them.
    assert [(name, bucket, n) for name, bucket, n, *_ in found] == [
        ("http.error_rate", T0, 10),
        ("http.error_rate", T0 + 10, 10),
        ("http.error_rate", T0 + 20, 5),
    ]


def test_watch_says_a_failure_of_its_last_write_when_closed(tmp_path: Path) -> None:
    clock = Clock()
    cockpit = bundled_cockpit(tmp_path, clock)
    history_path(cockpit.plan.state_path).mkdir(parents=True)
    said: list[str] = []
    watch = Watch(cockpit, say=said.append)
    ticks(watch, clock, range(3))  # within one bucket: nothing written yet
    assert said == []
    watch.close()
    assert [line for line in said if "metric history not recorded" in line] == [said[-1]]


def test_watch_says_a_history_failure_once_and_goes_on(tmp_path: Path) -> None:
    clock = Clock()
    cockpit = bundled_cockpit(tmp_path, clock)
    history_path(cockpit.plan.state_path).mkdir(parents=True)  # a folder where the file goes
    said: list[str] = []
    watch = Watch(cockpit, say=said.append)
    assert watch.history is not None
    history = watch.history
    ticks(watch, clock, range(12))  # crosses a bucket: the writer thread tries and fails
    wait_for(lambda: history.failure is not None, "the writer's failure")
    ticks(watch, clock, range(12, 40))
    watch.close()
    failures = [line for line in said if "metric history" in line]
    assert len(failures) == 1
    assert failures[0].startswith("metric history not recorded: ")
    assert failures[0].endswith("(watching goes on)")
