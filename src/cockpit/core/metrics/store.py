"""Recent values of every metric, each source's health, and when data goes stale.

One series per metric name: points in time order, each a value or an explicit unknown
(`value=None` with a reason such as "12 samples < 20 needed"). Memory stays bounded however
long the cockpit runs: a series keeps `horizon_s` seconds behind its newest point and at most
`max_points` points. The engine sets the horizon past the longest `for` in the config, with
margin, so a rule always sees what came just before its window.

Owned by the engine's thread and not thread-safe; everything it returns is a copy or immutable.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

NO_DETAILS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True)
class Point:
    """A value at time `t`; `value` None means unknown at `t` and `reason` says why."""

    t: float
    value: float | None
    reason: str | None = None


@dataclass(frozen=True)
class SourceStatus:
    """A source's health as its poller last saw it; `up` None means never polled."""

    up: bool | None = None
    error: str | None = None
    last_ok: float | None = None
    last_poll: float | None = None


class _Series:
    """Points with their times and values in parallel lists, so lookups bisect on plain
    floats and scans run over plain lists. `covered[i]` is a running total of the seconds
    known points covered before point i (each covers until the next point or until stale),
    so the coverage of any window is a subtraction rather than a scan."""

    __slots__ = ("covered", "points", "times", "values")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[float | None] = []
        self.points: list[Point] = []
        self.covered: list[float] = []


class MetricStore:
    def __init__(
        self,
        *,
        stale_after: Mapping[str, float] | None = None,
        default_stale_after: float = 30.0,
        horizon_s: float = 3 * 3600,
        max_points: int = 20_000,
    ) -> None:
        if horizon_s <= 0 or max_points < 1:
            raise ValueError("horizon_s must be > 0 and max_points >= 1")
        self._stale_after = dict(stale_after or {})
        self._default_stale_after = default_stale_after
        self._horizon_s = horizon_s
        self._max_points = max_points
        self._series: dict[str, _Series] = {}
        self._sources: dict[str, SourceStatus] = {}
        self._details: dict[str, Mapping[str, object]] = {}

    @property
    def horizon_s(self) -> float:
        return self._horizon_s

    @property
    def max_points(self) -> int:
        return self._max_points

    def record(self, metric: str, t: float, value: float | None, reason: str | None = None) -> None:
        """Append a point. Time never goes backwards within a series: a `t` older than the
        newest point is clamped to it (a clock stepped back must not reorder history, and the
        value is still the freshest measurement). A NaN value is stored as unknown."""
        if not math.isfinite(t):
            raise ValueError(f"time of a point must be finite, got {t!r}")
        if value is not None and math.isnan(value):
            value, reason = None, reason or "not a number"
        series = self._series.get(metric)
        if series is None:
            series = self._series[metric] = _Series()
        if series.times:
            t = max(t, series.times[-1])
            last_t, last_value = series.times[-1], series.values[-1]
            span = 0.0 if last_value is None else min(t - last_t, self.stale_after(metric))
            series.covered.append(series.covered[-1] + span)
        else:
            series.covered.append(0.0)
        series.times.append(t)
        series.values.append(value)
        series.points.append(Point(t, value, reason))
        self._trim(series)

    def _trim(self, series: _Series) -> None:
        drop = bisect_left(series.times, series.times[-1] - self._horizon_s)
        drop = max(drop, len(series.times) - self._max_points)
        if drop > 0:
            for column in (series.times, series.values, series.points, series.covered):
                del column[:drop]

    def latest(self, metric: str) -> Point | None:
        series = self._series.get(metric)
        return series.points[-1] if series and series.points else None

    def first_point(self, metric: str) -> Point | None:
        """The oldest point still kept."""
        series = self._series.get(metric)
        return series.points[0] if series and series.points else None

    def point_at(self, metric: str, t: float) -> Point | None:
        """The newest point at or before `t` (what was known at `t`)."""
        series = self._series.get(metric)
        if series is None:
            return None
        i = bisect_right(series.times, t)
        return series.points[i - 1] if i else None

    def point_before(self, metric: str, t: float) -> Point | None:
        """The newest point strictly before `t` (what came just before a window)."""
        series = self._series.get(metric)
        if series is None:
            return None
        i = bisect_left(series.times, t)
        return series.points[i - 1] if i else None

    def points(self, metric: str, since: float, until: float | None = None) -> Sequence[Point]:
        """Points with `since <= t <= until` (no upper bound if `until` is None), oldest first."""
        series = self._series.get(metric)
        if series is None:
            return []
        lo = bisect_left(series.times, since)
        hi = len(series.times) if until is None else bisect_right(series.times, until)
        return series.points[lo:hi]

    def last_values(self, metric: str, count: int) -> list[float]:
        """The newest `count` known values (None skipped), oldest first; costs `count`, not
        the whole history (sparklines ask for it every second)."""
        series = self._series.get(metric)
        found: list[float] = []
        if series is None:
            return found
        for value in reversed(series.values):
            if len(found) >= count:
                break
            if value is not None:
                found.append(value)
        found.reverse()
        return found

    def window(
        self, metric: str, since: float, until: float
    ) -> tuple[Sequence[float], Sequence[float | None]]:
        """Times and values of the points with `since <= t <= until`, oldest first."""
        series = self._series.get(metric)
        if series is None:
            return [], []
        lo = bisect_left(series.times, since)
        hi = bisect_right(series.times, until)
        return series.times[lo:hi], series.values[lo:hi]

    def coverage(self, metric: str, start: float, end: float) -> float:
        """Seconds of [start, end] covered by known points: each covers from its time until
        the next point or until it goes stale, whichever comes first (the point just before
        `start` covers the window's beginning)."""
        series = self._series.get(metric)
        if series is None or end <= start:
            return 0.0
        times, values, stale = series.times, series.values, self.stale_after(metric)
        lo = bisect_left(times, start)
        hi = bisect_right(times, end)
        covered = 0.0
        if lo > 0 and values[lo - 1] is not None:
            stop = min(times[lo] if lo < len(times) else math.inf, times[lo - 1] + stale, end)
            covered += max(0.0, stop - start)
        if hi > lo:
            covered += series.covered[hi - 1] - series.covered[lo]
            if values[hi - 1] is not None:
                last = times[hi - 1]
                stop = min(times[hi] if hi < len(times) else math.inf, last + stale, end)
                covered += max(0.0, stop - last)
        return covered

    def stale_after(self, metric: str) -> float:
        """Seconds after which a value of `metric` is too old to judge by (per source)."""
        source = metric.split(".", 1)[0]
        return self._stale_after.get(source, self._default_stale_after)

    def set_source(self, source: str, status: SourceStatus) -> None:
        self._sources[source] = status

    def source(self, source: str) -> SourceStatus:
        return self._sources.get(source, SourceStatus())

    def sources(self) -> dict[str, SourceStatus]:
        return dict(self._sources)

    def set_details(self, source: str, details: Mapping[str, object]) -> None:
        """What a source's last good poll told beside its numbers (log lines, slow query
        texts) for people to read; never judged by a gate. Kept, like its last values, until
        the next good poll: whether it is live is the source's status to say."""
        self._details[source] = MappingProxyType(dict(details))

    def details(self, source: str) -> Mapping[str, object]:
        """The last `set_details` of `source` (read-only), empty when there was none."""
        return self._details.get(source, NO_DETAILS)

    def metrics(self) -> list[str]:
        return sorted(name for name, series in self._series.items() if series.points)
