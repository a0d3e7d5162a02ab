"""Quantile windows: accuracy against exact percentiles, expiry, bounded memory, pooling."""

from __future__ import annotations

import math
import random

import pytest

from cockpit.core.metrics.sketch import (
    QuantileWindow,
    WindowView,
    merge_sketches,
    new_sketch,
    pool_views,
    sketch_mean,
    sketch_quantile,
)

QS = (0.50, 0.95, 0.99)


def exact(sorted_values: list[float], q: float) -> float:
    # The same rank convention as DDSketch: the value at index floor(q * (n - 1)).
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


def relative_error(estimate: float | None, truth: float) -> float:
    assert estimate is not None
    return abs(estimate - truth) / truth


def test_a_million_lognormal_latencies_within_one_percent() -> None:
    rng = random.Random(20240611)
    values = [rng.lognormvariate(math.log(50.0), 1.0) for _ in range(1_000_000)]
    sketch = new_sketch()
    for value in values:
        sketch.add(value)
    values.sort()
    for q in QS:
        assert relative_error(sketch_quantile(sketch, q), exact(values, q)) <= 0.01, q
    assert sketch_mean(sketch) == pytest.approx(math.fsum(values) / len(values), rel=1e-9)


def test_window_path_pareto_tail_within_one_percent() -> None:
    # Heavier tail than lognormal, spread over every sub-window, read back merged.
    rng = random.Random(7)
    window = QuantileWindow(60.0, slots=12)
    values = []
    for i in range(100_000):
        value = 10.0 * rng.paretovariate(1.5)
        values.append(value)
        window.add(1_000.0 + i * 59.0 / 100_000, value)
    values.sort()
    now = 1_059.5
    assert window.count(now) == 100_000
    for q in QS:
        assert relative_error(window.quantile(q, now), exact(values, q)) <= 0.01, q
    assert window.mean(now) == pytest.approx(math.fsum(values) / len(values), rel=1e-9)


def test_values_leave_the_window_a_sub_window_at_a_time() -> None:
    window = QuantileWindow(60.0, slots=12)  # 5 s sub-windows
    for t in range(60):
        window.add(float(t), float(t + 1))
    assert window.count(59.5) == 60
    # At 70 the window starts at 10: sub-windows from 10 s on are wholly inside.
    assert window.count(70.0) == 50
    assert window.quantile(0.0, 70.0) == pytest.approx(11.0, rel=0.01)
    # Never a value older than window_s, even part of a sub-window.
    assert window.count(72.0) == 45
    assert window.count(125.0) == 0
    assert window.quantile(0.5, 125.0) is None
    assert window.mean(125.0) is None


def test_memory_stays_bounded_over_a_long_run() -> None:
    window = QuantileWindow(60.0, slots=12)  # 5 s sub-windows
    most = 0
    for i in range(100_000):
        window.add(i * 1.3, 40.0 + (i % 17))  # a probe every 1.3 s for 36 hours
        most = max(most, window.slots_held)
    assert most == 13  # a full window's sub-windows plus the one filling, never more
    now = 99_999 * 1.3
    start = math.ceil((now - 60.0) / 5.0) * 5.0  # first whole sub-window inside the window
    assert window.count(now) == sum(1 for i in range(100_000) if i * 1.3 >= start)
    assert 55 / 1.3 - 1 <= window.count(now) <= 60 / 1.3 + 1


def test_marks_and_span_cover_the_same_values_as_the_quantiles() -> None:
    window = QuantileWindow(10.0, slots=10)
    for t in range(10):
        window.add(100.0 + t, 5.0, marks=("error",) if t % 5 == 0 else ())
    view = window.view(109.5)
    assert view.count == 10
    assert dict(view.marks) == {"error": 2}
    assert view.rate() == pytest.approx(1.0)
    later = window.view(115.0)  # 105..109 left
    assert later.count == 5
    assert dict(later.marks) == {"error": 1}
    assert (later.first_t, later.last_t) == (105.0, 109.0)


def test_rate_needs_two_values() -> None:
    window = QuantileWindow(10.0)
    assert window.view(0.0).rate() is None
    window.add(1.0, 3.0)
    assert window.view(1.0).rate() is None


def test_a_clock_that_jumps_back_starts_a_fresh_window() -> None:
    window = QuantileWindow(60.0, slots=12)
    window.add(10_000.0, 1.0)
    window.add(100.0, 2.0)
    assert window.slots_held == 1
    assert window.count(100.0) == 1
    assert window.quantile(0.5, 100.0) == pytest.approx(2.0, rel=0.01)


def test_pooling_merges_sketches_rather_than_averaging() -> None:
    fast, slow = QuantileWindow(60.0), QuantileWindow(60.0)
    for i in range(90):
        fast.add(float(i) / 10, 10.0, marks=("error",) if i < 9 else ())
    for i in range(10):
        slow.add(float(i), 1000.0, marks=("error",))
    pooled = pool_views([fast.view(9.5), slow.view(9.5)])
    assert pooled.count == 100
    assert dict(pooled.marks) == {"error": 19}
    assert sketch_quantile(pooled.sketch, 0.5) == pytest.approx(10.0, rel=0.01)
    assert sketch_quantile(pooled.sketch, 0.95) == pytest.approx(1000.0, rel=0.01)
    assert sketch_mean(pooled.sketch) == pytest.approx((90 * 10 + 10 * 1000) / 100)
    assert (pooled.first_t, pooled.last_t) == (0.0, 9.0)


def test_merging_leaves_the_inputs_alone() -> None:
    a, b = new_sketch(), new_sketch()
    a.add(1.0)
    b.add(2.0)
    merged = merge_sketches([a, b])
    merged.add(3.0)
    assert (a.count, b.count, merged.count) == (1, 1, 3)


def test_empty_pool_and_bad_arguments() -> None:
    empty = pool_views([])
    assert isinstance(empty, WindowView)
    assert (empty.count, empty.first_t, empty.rate()) == (0, None, None)
    with pytest.raises(ValueError, match="window_s"):
        QuantileWindow(0.0)
    with pytest.raises(ValueError, match="slots"):
        QuantileWindow(60.0, slots=0)


def test_a_view_is_reused_until_a_value_is_added_or_a_slot_leaves() -> None:
    """The tick's pooled reading reuses the view each poll already merged (200 sources: one
    merge per source per second, not two)."""
    window = QuantileWindow(60.0, slots=12)
    window.add(1000.0, 10.0)
    first = window.view(1000.5)
    assert window.view(1001.0) is first  # nothing new, same slots
    window.add(1010.0, 30.0)  # another 5 s slot
    second = window.view(1010.0)
    assert second is not first
    assert second.count == 2
    assert first.count == 1  # a view handed out earlier is not changed by later values
    later = window.view(1065.0)  # the slot of 1000.0 has left the window
    assert later is not second
    assert later.count == 1
    assert sketch_quantile(later.sketch, 0.5) == pytest.approx(30.0, rel=0.01)
