"""Pure Prometheus logic for the `scrape` form: selectors, the text format, rates and quantiles.

A field's expression is a selector, optionally followed by a quantile for histograms:

    jobs_per_min = 'jobs_processed_total'                 # counter: per-minute rate
    errors       = 'http_requests_total{code=~"5.."}'     # summed over the matching series
    queue        = 'queue_depth{queue="mail"}'            # gauge: as is
    latency_p95  = 'http_request_duration_seconds{route="/api/farms"} p95'

- The name is a sample name as it appears on the /metrics page; a counter family's name
  without `_total` finds its `_total` samples too.
- Label matchers are Prometheus': `=`, `!=`, `=~`, `!~` (regexes match the whole value).
- Every series that matches is summed (before the rate: a series that appears counts from
  0, one that disappears looks like a counter reset).
- Counters (TYPE counter, names ending in `_total`, and a histogram's or summary's `_count`,
  `_sum` and `_bucket`) become per-minute rates over the window; anything else is a gauge.
- `p<q>` after a histogram's family name (p50, p95, p99, p99.9) is that quantile of the
  observations made during the window, from bucket deltas with linear interpolation inside
  the bucket, as Prometheus' histogram_quantile does. It is in the histogram's own unit
  (seconds, usually). When it lies in the +Inf bucket the highest finite bound is reported,
  as Prometheus does, and the reading says so.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from cockpit.core.sources.base import one_line

Labels = Mapping[str, str]
Buckets = tuple[tuple[float, float], ...]  # (upper bound `le`, cumulative count), sorted

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_QUANTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


class SelectorError(ValueError):
    """A field's expression cannot be read; the message says why, in one line."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.label, "")  # a missing label is the empty string, as in PromQL
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...] = ()
    quantile: float | None = None  # 0..1; set only for histogram fields

    def matches(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def parse_selector(text: str) -> Selector:
    """`name{label="v",...} p95` -> Selector; SelectorError with a plain message otherwise."""
    rest = text.strip()
    name_match = _NAME.match(rest)
    if not name_match:
        raise SelectorError(f"expected a metric name at the start of {text!r}")
    name = name_match.group()
    rest = rest[name_match.end() :].lstrip()
    matchers: list[Matcher] = []
    if rest.startswith("{"):
        rest = _parse_matchers(rest[1:], matchers, text)
    quantile = None
    if rest:
        q_match = _QUANTILE.fullmatch(rest)
        if not q_match or not 0 < float(q_match.group(1)) < 100:
            raise SelectorError(
                f"unexpected {rest!r} after the selector in {text!r} "
                "(a histogram quantile is written p50, p95, p99 or p99.9)"
            )
        quantile = float(q_match.group(1)) / 100
    return Selector(name, tuple(matchers), quantile)


def _parse_matchers(rest: str, into: list[Matcher], text: str) -> str:
    while True:
        rest = rest.lstrip()
        if rest.startswith("}"):
            return rest[1:].lstrip()
        label = _LABEL.match(rest)
        if not label:
            raise SelectorError(f'expected label="value" or }} in {text!r}')
        rest = rest[label.end() :]
        value = _STRING.match(rest)
        if not value:
            after = label.group(1)
            raise SelectorError(f"expected a double-quoted value after {after} in {text!r}")
        raw = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group()), value.group(1))
        op = label.group(2)
        if op in ("=~", "!~"):
            try:
                re.compile(raw)
            except re.error as err:
                raise SelectorError(f"bad regular expression {raw!r} in {text!r}: {err}") from None
        into.append(Matcher(label.group(1), op, raw))
        rest = rest[value.end() :].lstrip()
        if rest.startswith(","):
            rest = rest[1:]
        elif not rest.startswith("}"):
            raise SelectorError(f"expected , or }} after {label.group(1)} in {text!r}")


# -- the exposition ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    labels: Labels
    value: float


class Exposition:
    """One scrape: series by sample name, and which sample names are counters.

    With `wanted` (selector names), only the lines that can matter are parsed: the text
    parser is pure Python, about 1 s per MB, and pages of several MB exist.
    """

    def __init__(self, text: str, wanted: Collection[str] | None = None) -> None:
        self.series: dict[str, list[Series]] = {}
        self.counters: set[str] = set()
        self.names: set[str] = set()  # every sample name on the page, for did-you-mean
        if wanted is not None:
            text = self._relevant(text, wanted)
        try:
            self._read(text)
        except ValueError as err:  # the parser's own says nothing, or quotes the line raw
            said = one_line(str(err)) if str(err).strip() else "a line the text parser refuses"
            raise ValueError(said) from None

    def _read(self, text: str) -> None:
        # The parser raises ValueError on text that is not the Prometheus format.
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                self.series.setdefault(name, []).append(Series(sample.labels, sample.value))
                self.names.add(name)
                if _is_counter(family.type, family.name, name):
                    self.counters.add(name)

    def _relevant(self, text: str, wanted: Collection[str]) -> str:
        samples = {f"{name}{suffix}" for name in wanted for suffix in ("", *_COUNTER_SUFFIXES)}
        kept: list[str] = []
        for line in text.splitlines():
            if line.startswith("#"):
                parts = line.split(None, 3)
                family = parts[2] if len(parts) > 2 and parts[1] in ("TYPE", "HELP") else ""
                if any(family + suffix in samples for suffix in ("", *_COUNTER_SUFFIXES)):
                    kept.append(line)
            elif line.strip():
                name = _NAME.match(line.lstrip())
                if name is None or not _has_value(line.lstrip()[name.end() :]):
                    # Checked though skipped: a page that is not this format ("OK", a
                    # sign-in page) must not read as a page without our metrics.
                    raise ValueError(f"not a metric line: {line[:60]!r}")
                self.names.add(name.group())
                if name.group() in samples:
                    kept.append(line)
        return "\n".join(kept) + "\n"

    def find(self, name: str) -> str | None:
        """The sample name a selector means: as written, or a counter family's `_total`."""
        if name in self.series:
            return name
        if f"{name}_total" in self.series:
            return f"{name}_total"
        return None

    def missing(self, name: str) -> str:
        close = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no metric named {name!r} on the page{hint}"


def _has_value(rest: str) -> bool:
    """Does what follows a sample's name start with labels or a space, then a number?"""
    if rest.startswith("{"):
        close = rest.rfind("}")  # values and timestamps hold no brace: the last one is ours
        if close < 0:
            return False
        rest = rest[close + 1 :]
    elif rest[:1] not in (" ", "\t"):
        return False
    value = rest.split(None, 1)
    if not value:
        return False
    try:
        float(value[0])  # Go's floats too: NaN, +Inf, 1e3
    except ValueError:
        return False
    return True


def _is_counter(family_type: str, family: str, sample: str) -> bool:
    if family_type == "counter":
        return sample.endswith("_total")  # not `_created`: a timestamp
    if family_type in ("histogram", "summary"):
        return sample != family and sample.endswith(_COUNTER_SUFFIXES[1:])
    return family_type in ("unknown", "untyped") and sample.endswith("_total")


@dataclass(frozen=True)
class Missing:
    """No value for the field in this scrape, and why."""

    reason: str


def select_value(page: Exposition, selector: Selector) -> tuple[float, bool] | Missing:
    """The sum of the matching series and whether it is a counter."""
    name = page.find(selector.name)
    if name is None:
        return Missing(page.missing(selector.name))
    if name.endswith("_bucket") and selector.quantile is None:
        return Missing(f"{name} is a histogram's buckets: name its family with a quantile (p95)")
    values = [s.value for s in page.series[name] if selector.matches(s.labels)]
    if not values:
        return Missing(f"no {name} series match the labels")
    return math.fsum(values), name in page.counters


def select_buckets(page: Exposition, selector: Selector) -> Buckets | Missing:
    """Cumulative bucket counts of the matching histogram series, summed per bound."""
    name = f"{selector.name}_bucket"
    if name not in page.series:
        return Missing(f"no histogram named {selector.name!r} (no {name} on the page)")
    counts: dict[float, float] = {}
    for series in page.series[name]:
        if selector.matches(series.labels) and "le" in series.labels:
            bound = _bound(series.labels["le"])
            if bound is None:  # this field cannot be read; the page's other fields can
                return Missing(f"{name} has a bucket le={series.labels['le']!r}: not a number")
            counts[bound] = counts.get(bound, 0.0) + series.value
    if not counts:
        return Missing(f"no {name} series match the labels")
    return tuple(sorted(counts.items()))


def _bound(text: str) -> float | None:
    try:
        bound = float(text)
    except ValueError:
        return None
    return None if math.isnan(bound) else bound


# -- windows over successive scrapes -----------------------------------------------------------


@dataclass(frozen=True)
class Value:
    value: float | None
    reason: str = ""  # why value is None, or a note about it


T = TypeVar("T")


class _Window(Generic[T]):
    """(time, observation) pairs covering the window: one at or before its start, the rest in it.

    So once the window has filled, deltas span at least `window_s` (at most one poll more).
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.points: deque[tuple[float, T]] = deque(maxlen=100_000)

    def add(self, now: float, item: T) -> None:
        self.points.append((now, item))
        start = now - self.window_s
        while len(self.points) > 1 and self.points[1][0] <= start:
            self.points.popleft()

    def restart(self, now: float, item: T) -> None:
        self.points.clear()
        self.points.append((now, item))


class CounterRate(_Window[float]):
    """Per-minute rate of a (summed) counter: Δvalue / Δt from the oldest point kept."""

    def add_value(self, now: float, value: float) -> Value:
        if self.points and value < self.points[-1][1]:
            self.restart(now, value)
            return Value(None, "counter reset")
        self.add(now, value)
        (t0, v0), (t1, v1) = self.points[0], self.points[-1]
        if t1 <= t0:
            return Value(None, "first sample")
        return Value((v1 - v0) / (t1 - t0) * 60.0)


class HistogramQuantile(_Window[Buckets]):
    """A quantile of the observations made during the window (bucket deltas)."""

    def __init__(self, window_s: float, quantile: float) -> None:
        super().__init__(window_s)
        self.quantile = quantile

    def add_buckets(self, now: float, buckets: Buckets) -> Value:
        if self.points:
            last = self.points[-1][1]
            if [b for b, _ in buckets] != [b for b, _ in last]:
                self.restart(now, buckets)
                return Value(None, "the histogram's buckets changed")
            if any(c < c_last for (_, c), (_, c_last) in zip(buckets, last, strict=True)):
                self.restart(now, buckets)
                return Value(None, "counter reset")
        self.add(now, buckets)
        (t0, first), (t1, latest) = self.points[0], self.points[-1]
        if t1 <= t0:
            return Value(None, "first sample")
        delta = tuple((b, c - c0) for (b, c), (_, c0) in zip(latest, first, strict=True))
        return quantile_value(self.quantile, delta)


def quantile_value(quantile: float, buckets: Buckets) -> Value:
    """histogram_quantile with the reasons it can have no answer."""
    if not buckets or not math.isinf(buckets[-1][0]):
        return Value(None, "the histogram has no +Inf bucket")
    if len(buckets) < 2:
        return Value(None, "the histogram has fewer than 2 buckets")
    if buckets[-1][1] <= 0:
        return Value(None, "no observations in the window")
    value = histogram_quantile(quantile, buckets)
    if value == buckets[-2][0] and _rank_bucket(quantile, buckets) == len(buckets) - 1:
        return Value(value, f"above the highest bucket bound ({value:g}): at least this")
    return Value(value)


def histogram_quantile(quantile: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile: `buckets` sorted by bound, cumulative, ending with +Inf."""
    counts = _monotonic([c for _, c in buckets])
    bounds = [b for b, _ in buckets]
    rank = quantile * counts[-1]
    index = _rank_bucket(quantile, tuple(zip(bounds, counts, strict=True)))
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[index]
    if index > 0:
        start = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (bounds[index] - start) * (rank / count)


def _rank_bucket(quantile: float, buckets: Sequence[tuple[float, float]]) -> int:
    """The first bucket whose cumulative count reaches the rank (the +Inf one at worst)."""
    counts = _monotonic([c for _, c in buckets])
    rank = quantile * counts[-1]
    return next((i for i, c in enumerate(counts[:-1]) if c >= rank), len(counts) - 1)


def _monotonic(counts: list[float]) -> list[float]:
    # Buckets scraped mid-update can be briefly non-monotonic; Prometheus evens them out too.
    result: list[float] = []
    for count in counts:
        result.append(max(count, result[-1]) if result else count)
    return result
