"""The metric store: series order, lookups around a time, staleness, sources, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.core.metrics.store import MetricStore, Point, SourceStatus


def test_empty_store_knows_nothing() -> None:
    store = MetricStore()
    assert store.latest("http.p95") is None
    assert store.first_point("http.p95") is None
    assert store.point_at("http.p95", 100.0) is None
    assert store.point_before("http.p95", 100.0) is None
    assert store.window("http.p95", 0.0, 100.0) == ([], [])
    assert store.coverage("http.p95", 0.0, 100.0) == 0.0
    assert list(store.points("http.p95", since=0.0)) == []
    assert store.metrics() == []


def test_record_keeps_points_in_order_with_unknowns() -> None:
    store = MetricStore()
    store.record("farms.p95", 10.0, 812.0)
    store.record("farms.p95", 11.0, None, "12 samples < 20 needed")
    store.record("farms.p95", 12.0, 790.0)
    assert list(store.points("farms.p95", since=0.0)) == [
        Point(10.0, 812.0),
        Point(11.0, None, "12 samples < 20 needed"),
        Point(12.0, 790.0),
    ]
    assert store.latest("farms.p95") == Point(12.0, 790.0)
    assert store.first_point("farms.p95") == Point(10.0, 812.0)
    assert store.metrics() == ["farms.p95"]


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6)), max_size=80), st.integers(0, 100))
def test_last_values_are_the_newest_known_values_of_a_scan(
    values: list[float | None], count: int
) -> None:
    store = MetricStore()
    for t, value in enumerate(values):
        store.record("farms.p95", float(t), value)
    known = [p.value for p in store.points("farms.p95", 0.0) if p.value is not None]
    assert store.last_values("farms.p95", count) == (known[-count:] if count else [])
    assert store.last_values("other", count) == []


def test_points_since_and_until_are_inclusive() -> None:
    store = MetricStore()
    for t in range(10):
        store.record("m.x", float(t), float(t))
    assert [p.t for p in store.points("m.x", since=3.0)] == [3, 4, 5, 6, 7, 8, 9]
    assert [p.t for p in store.points("m.x", since=3.0, until=5.0)] == [3, 4, 5]
    assert [p.t for p in store.points("m.x", since=3.5, until=5.5)] == [4, 5]
    assert list(store.points("m.x", since=20.0)) == []


def test_points_returns_a_copy() -> None:
    store = MetricStore()
    store.record("m.x", 1.0, 1.0)
    got = store.points("m.x", since=0.0)
    store.record("m.x", 2.0, 2.0)
    assert len(got) == 1


def test_point_at_and_point_before() -> None:
    store = MetricStore()
    for t in (10.0, 20.0, 30.0):
        store.record("m.x", t, t * 2)
    assert store.point_at("m.x", 20.0) == Point(20.0, 40.0)
    assert store.point_at("m.x", 25.0) == Point(20.0, 40.0)
    assert store.point_at("m.x", 9.0) is None
    assert store.point_before("m.x", 20.0) == Point(10.0, 20.0)
    assert store.point_before("m.x", 10.0) is None
    assert store.point_before("m.x", 99.0) == Point(30.0, 60.0)


def test_time_going_backwards_is_clamped_to_the_newest_point() -> None:
    store = MetricStore()
    store.record("m.x", 100.0, 1.0)
    store.record("m.x", 90.0, 2.0)
    assert store.latest("m.x") == Point(100.0, 2.0)
    assert [p.t for p in store.points("m.x", since=0.0)] == [100.0, 100.0]


def test_nan_is_stored_as_unknown_and_infinite_time_refused() -> None:
    store = MetricStore()
    store.record("m.x", 1.0, float("nan"))
    assert store.latest("m.x") == Point(1.0, None, "not a number")
    with pytest.raises(ValueError, match="finite"):
        store.record("m.x", float("inf"), 1.0)


def test_horizon_drops_points_older_than_it_relative_to_the_newest() -> None:
    store = MetricStore(horizon_s=60.0)
    for t in range(0, 200):
        store.record("m.x", float(t), 1.0)
    kept = store.points("m.x", since=0.0)
    assert kept[0].t == 139.0  # 199 - 60
    assert kept[-1].t == 199.0
    assert len(kept) == 61
    assert store.first_point("m.x") == Point(139.0, 1.0)


def test_horizon_is_per_series() -> None:
    store = MetricStore(horizon_s=10.0)
    store.record("a.x", 0.0, 1.0)
    store.record("b.x", 0.0, 1.0)
    store.record("b.x", 100.0, 1.0)
    assert len(store.points("a.x", since=0.0)) == 1
    assert len(store.points("b.x", since=0.0)) == 1


def test_max_points_caps_each_series() -> None:
    store = MetricStore(max_points=100, horizon_s=1e9)
    for t in range(1000):
        store.record("m.x", float(t), float(t))
    kept = store.points("m.x", since=0.0)
    assert len(kept) == 100
    assert kept[0] == Point(900.0, 900.0)
    assert store.latest("m.x") == Point(999.0, 999.0)


def test_long_run_stays_bounded() -> None:
    store = MetricStore(horizon_s=3600.0, max_points=5000)
    for t in range(0, 50_000):
        store.record("m.x", t * 0.5, 1.0)
    assert len(store.points("m.x", since=0.0)) == 5000


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="horizon"):
        MetricStore(horizon_s=0)
    with pytest.raises(ValueError, match="max_points"):
        MetricStore(max_points=0)


def test_stale_after_is_per_source_with_a_default() -> None:
    store = MetricStore(stale_after={"cache": 6.0, "http": 9.0}, default_stale_after=12.0)
    assert store.stale_after("cache.hit_rate") == 6.0
    assert store.stale_after("http.p95") == 9.0
    assert store.stale_after("db.up") == 12.0
    assert store.horizon_s == 3 * 3600
    assert store.max_points == 20_000


def test_sources_default_to_never_polled() -> None:
    store = MetricStore()
    assert store.source("cache") == SourceStatus(up=None)
    down = SourceStatus(up=False, error="connection refused", last_ok=5.0, last_poll=9.0)
    store.set_source("cache", down)
    assert store.source("cache") == down
    assert store.sources() == {"cache": down}
    store.sources().clear()
    assert store.source("cache") == down


def test_window_gives_times_and_values() -> None:
    store = MetricStore()
    for t, value in [(1.0, 1.0), (2.0, None), (3.0, 3.0), (4.0, 4.0)]:
        store.record("m.x", t, value)
    assert store.window("m.x", 2.0, 3.5) == ([2.0, 3.0], [None, 3.0])


def test_coverage_counts_known_points_until_next_or_stale() -> None:
    store = MetricStore(default_stale_after=5.0)
    for t, value in [(0.0, 1.0), (10.0, 1.0), (12.0, None), (20.0, 1.0), (22.0, 1.0)]:
        store.record("m.x", t, value)
    # [0,5] + [10,12] + nothing for the unknown + [20,22] + [22,27] cut at 25
    assert store.coverage("m.x", 0.0, 25.0) == 12.0
    # the point at 0 covers the start of a window opening at 3
    assert store.coverage("m.x", 3.0, 25.0) == 9.0
    assert store.coverage("m.x", 21.0, 30.0) == 6.0
    assert store.coverage("m.x", 30.0, 40.0) == 0.0
    assert store.coverage("m.x", 5.0, 5.0) == 0.0


def _covered_by_brute_force(
    points: list[tuple[float, float | None]], start: float, end: float, stale: float
) -> float:
    covered = 0.0
    for i, (t, value) in enumerate(points):
        if value is None:
            continue
        stop = t + stale if i + 1 == len(points) else min(t + stale, points[i + 1][0])
        covered += max(0.0, min(stop, end) - max(t, start))
    return covered


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.sampled_from([None, 1.0])), min_size=1, max_size=40),
    st.integers(1, 30),
    st.integers(0, 500),
    st.integers(1, 300),
    st.integers(50, 10_000),
)
def test_coverage_matches_a_scan(
    steps: list[tuple[int, float | None]], stale: int, start: int, length: int, horizon: int
) -> None:
    store = MetricStore(default_stale_after=float(stale), horizon_s=float(horizon))
    t = 0.0
    for gap, value in steps:
        t += gap
        store.record("m.x", t, value)
    kept = [(p.t, p.value) for p in store.points("m.x", since=-1.0)]
    got = store.coverage("m.x", float(start), float(start + length))
    assert got == pytest.approx(_covered_by_brute_force(kept, start, start + length, stale))
