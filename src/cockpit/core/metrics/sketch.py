"""Latency quantiles over a sliding window, from DDSketch sub-window sketches.

A window is a ring of sub-windows (`slots` of them, each `window_s / slots` seconds long, keyed
by time). Each sub-window holds one DDSketch (relative accuracy 1%: a reported quantile is
within 1% of the exact one) plus counts of named marks ("error", "lag" ...), so quantiles and
rates always cover exactly the same attempts. Old sub-windows are dropped as time moves on, so
memory is bounded by `slots + 1` sketches whatever the run length.

The window read at `now` is made of the sub-windows that lie wholly inside
[now - window_s, now] (the newest one still filling): it spans between window_s - window_s/slots
and window_s. Nothing older than window_s ever counts.

Pooling several windows (the `http.*` metrics) merges their sketches and sums their counts;
it never averages means or takes the max of percentiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ddsketch import DDSketch

RELATIVE_ACCURACY = 0.01


def new_sketch() -> DDSketch:
    return DDSketch(RELATIVE_ACCURACY)


def merge_sketches(sketches: Iterable[DDSketch]) -> DDSketch:
    """One sketch holding every value of `sketches` (the inputs are not changed)."""
    merged = new_sketch()
    for sketch in sketches:
        merged.merge(sketch)
    return merged


def sketch_count(sketch: DDSketch) -> int:
    return int(sketch.count)


def sketch_quantile(sketch: DDSketch, q: float) -> float | None:
    """The q-quantile (0..1), or None when the sketch is empty."""
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)


def sketch_mean(sketch: DDSketch) -> float | None:
    """The exact mean of the values added, or None when empty."""
    return float(sketch.avg) if sketch.count > 0 else None


@dataclass
class _Slot:
    sketch: DDSketch = field(default_factory=new_sketch)
    marks: Counter[str] = field(default_factory=Counter)
    first_t: float = math.inf
    last_t: float = -math.inf


@dataclass(frozen=True)
class WindowView:
    """What a window holds at one moment: the merged sketch, the marks and the time span."""

    sketch: DDSketch
    marks: Mapping[str, int]
    first_t: float | None  # time of the oldest value in the window
    last_t: float | None  # time of the newest value in the window

    @property
    def count(self) -> int:
        return sketch_count(self.sketch)

    def rate(self) -> float | None:
        """Values per second between the first and the last one; None under two values."""
        if self.count < 2 or self.first_t is None or self.last_t is None:
            return None
        span = self.last_t - self.first_t
        return (self.count - 1) / span if span > 0 else None


class QuantileWindow:
    """Quantiles, counts and marks of the values added in the last `window_s` seconds."""

    def __init__(self, window_s: float, *, slots: int = 12) -> None:
        if window_s <= 0 or slots < 1:
            raise ValueError("window_s must be > 0 and slots >= 1")
        self.window_s = float(window_s)
        self.slots = slots
        self.slot_s = self.window_s / slots
        self._ring: dict[int, _Slot] = {}
        self._newest: int | None = None
        self._adds = 0  # values added so far: a view is reused until this or its slots change
        self._view: tuple[tuple[int, int, int], WindowView] | None = None

    def _key(self, t: float) -> int:
        return math.floor(t / self.slot_s)

    def add(self, t: float, value_ms: float, *, marks: Iterable[str] = ()) -> None:
        """Record one value taken at time `t`, with optional marks counted beside it."""
        key = self._key(t)
        if self._newest is None or key > self._newest:
            self._newest = key
            for old in [k for k in self._ring if k < key - self.slots]:
                del self._ring[old]
        elif key < self._newest - self.slots:
            # The clock went back more than a window: what we hold is from the "future".
            self._ring.clear()
            self._newest = key
        slot = self._ring.get(key)
        if slot is None:
            slot = self._ring[key] = _Slot()
        slot.sketch.add(value_ms)
        self._adds += 1
        slot.marks.update(marks)
        slot.first_t = min(slot.first_t, t)
        slot.last_t = max(slot.last_t, t)

    def _span(self, now: float) -> tuple[int, int]:
        # A slot counts when it starts at or after now - window_s and is not in the future.
        return math.ceil((now - self.window_s) / self.slot_s), self._key(now)

    def _live(self, now: float) -> list[_Slot]:
        oldest, newest = self._span(now)
        return [slot for key, slot in self._ring.items() if oldest <= key <= newest]

    def view(self, now: float) -> WindowView:
        """The window at `now`. The same view (do not change its sketch) until a value is
        added or a slot comes or goes: a poll and the tick's pooled reading share one merge."""
        key = (*self._span(now), self._adds)
        if self._view is not None and self._view[0] == key:
            return self._view[1]
        view = self._merge(now)
        self._view = (key, view)
        return view

    def _merge(self, now: float) -> WindowView:
        live = self._live(now)
        marks: Counter[str] = Counter()
        for slot in live:
            marks.update(slot.marks)
        return WindowView(
            sketch=merge_sketches(slot.sketch for slot in live),
            marks=dict(marks),
            first_t=min((s.first_t for s in live), default=None),
            last_t=max((s.last_t for s in live), default=None),
        )

    def merged(self, now: float) -> DDSketch:
        return merge_sketches(slot.sketch for slot in self._live(now))

    def quantile(self, q: float, now: float) -> float | None:
        return sketch_quantile(self.merged(now), q)

    def count(self, now: float) -> int:
        return sum(sketch_count(slot.sketch) for slot in self._live(now))

    def mean(self, now: float) -> float | None:
        return sketch_mean(self.merged(now))

    def marks(self, now: float) -> dict[str, int]:
        return dict(self.view(now).marks)

    @property
    def slots_held(self) -> int:
        """Sub-windows in memory (never more than `slots + 1`)."""
        return len(self._ring)


def pool_views(views: Iterable[WindowView]) -> WindowView:
    """Several windows as one: sketches merged, marks summed, spans joined."""
    views = list(views)
    marks: Counter[str] = Counter()
    for view in views:
        marks.update(view.marks)
    firsts = [v.first_t for v in views if v.first_t is not None]
    lasts = [v.last_t for v in views if v.last_t is not None]
    return WindowView(
        sketch=merge_sketches(v.sketch for v in views),
        marks=dict(marks),
        first_t=min(firsts, default=None),
        last_t=max(lasts, default=None),
    )
