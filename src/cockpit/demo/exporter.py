"""Exporter pages for the in-process fallback: without Redis and PostgreSQL there is nothing
for the cockpit's redis and postgres sources to read, so the API serves what their exporters
would, in Prometheus text: `/metrics/cache` (answers 503 while the cache is down, so the
cockpit sees the source down, as with a Redis that does not answer) and `/metrics/db`.

Ratios and means are over the last WINDOW_S seconds, kept here in one-second buckets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW_S = 15
MAX_CONNECTIONS = 40  # as the real demo cluster's max_connections


class Windowed:
    """Sums of (numerator, denominator) over the last `window_s` seconds."""

    def __init__(self, window_s: int = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self._buckets: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def add(self, numerator: float, denominator: float = 1.0) -> None:
        second = int(self.clock())
        with self._lock:
            bucket = self._buckets.setdefault(second, [0.0, 0.0])
            bucket[0] += numerator
            bucket[1] += denominator
            for old in [s for s in self._buckets if s <= second - self.window_s]:
                del self._buckets[old]

    def ratio(self) -> float | None:
        """numerator / denominator over the window; None when nothing was added."""
        since = int(self.clock()) - self.window_s
        with self._lock:
            kept = [b for s, b in self._buckets.items() if s > since]
        total = sum(b[1] for b in kept)
        return sum(b[0] for b in kept) / total if total else None


class ExporterFigures:
    """What the API records for the exporter pages, beside its Prometheus metrics."""

    def __init__(self) -> None:
        self.l2_hits = Windowed()  # (hits, reads) of the shared cache
        self.query_ms = Windowed()  # (milliseconds, queries)
        self.queries = 0  # every database query since start (a counter)
        self.in_flight = 0  # database queries running now

    def l2_read(self, hit: bool) -> None:
        self.l2_hits.add(1.0 if hit else 0.0)

    def query_done(self, seconds: float) -> None:
        self.queries += 1
        self.query_ms.add(seconds * 1000.0)


def _sample(name: str, kind: str, value: float | None) -> str:
    if value is None:
        return ""  # no reads, no queries: the field is unknown, not 0
    return f"# TYPE {name} {kind}\n{name} {value:.6g}\n"


def cache_page(figures: ExporterFigures, memory_used: float) -> str:
    return _sample("demo_l2_hit_ratio", "gauge", figures.l2_hits.ratio()) + _sample(
        "demo_l2_memory_used_ratio", "gauge", memory_used
    )


def db_page(figures: ExporterFigures) -> str:
    return (
        "# TYPE demo_db_queries counter\n"
        f"demo_db_queries_total {figures.queries}\n"
        + _sample("demo_db_query_mean_ms", "gauge", figures.query_ms.ratio())
        + _sample("demo_db_pool_used_ratio", "gauge", figures.in_flight / MAX_CONNECTIONS)
    )


# The cockpit's fields for each page, as `[sources.NAME] metrics = {...}` (see demo.plan).
CACHE_FIELDS = {"hit_rate": "demo_l2_hit_ratio", "memory_used": "demo_l2_memory_used_ratio"}
DB_FIELDS = {
    "queries_per_min": "demo_db_queries_total",
    "mean_query_ms": "demo_db_query_mean_ms",
    "pool_used": "demo_db_pool_used_ratio",
}
