"""The API's Prometheus metrics, in a registry of its own (two platforms in one process, as in
the tests, must not share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 5.0)


class DemoMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "demo_http_request_duration_seconds",
            "Time to answer an API request",
            ["endpoint", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "demo_http_requests",
            "API requests answered",
            ["endpoint", "path", "status"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "demo_cache_hits", "Cache hits", ["layer"], registry=self.registry
        )
        self.cache_misses = Counter(
            "demo_cache_misses", "Cache misses", ["layer"], registry=self.registry
        )
        self.cache_errors = Counter(
            "demo_cache_errors", "L2 cache calls that failed", registry=self.registry
        )
        self.db_queries = Counter(
            "demo_db_queries", "Database queries run", ["kind"], registry=self.registry
        )
        self.rollout = Gauge(
            "demo_rollout_percent", "Phase 3 rollout percentage", registry=self.registry
        )
        for layer in ("l1", "l2"):  # present from the start, at 0
            self.cache_hits.labels(layer)
            self.cache_misses.labels(layer)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
