"""Which metrics exist: the fields each source kind defines, their units, and the pooled ones.

Metric names are `<source>.<field>`. `http.*` pools every HTTP source; `cockpit.*` is the
engine's own health. Values are stored in the unit's base: milliseconds for time, a fraction
(0..1) for ratios, plain numbers otherwise.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from enum import StrEnum


class Unit(StrEnum):
    MS = "ms"
    RATIO = "%"
    COUNT = "count"
    PER_SECOND = "/s"
    PER_MINUTE = "/min"
    BYTES = "bytes"
    FLAG = "flag"  # 1 up / 0 down
    NUMBER = "number"  # user-defined (Prometheus), unit unknown to the cockpit


KIND_FIELDS: Mapping[str, Mapping[str, Unit]] = {
    "http": {
        "p50": Unit.MS,
        "p95": Unit.MS,
        "p99": Unit.MS,
        "mean": Unit.MS,
        "error_rate": Unit.RATIO,
        "rate_4xx": Unit.RATIO,
        "rate_limited": Unit.RATIO,
        "rps": Unit.PER_SECOND,
        "samples": Unit.COUNT,
        "up": Unit.FLAG,
    },
    "redis": {
        "hit_rate": Unit.RATIO,
        "memory_used": Unit.RATIO,
        "memory_bytes": Unit.BYTES,
        "ops_per_sec": Unit.PER_SECOND,
        "clients": Unit.COUNT,
        "evicted_per_min": Unit.PER_MINUTE,
        "latency_ms": Unit.MS,
        "up": Unit.FLAG,
    },
    "postgres": {
        "connections": Unit.COUNT,
        "active": Unit.COUNT,
        "idle": Unit.COUNT,
        "idle_in_tx": Unit.COUNT,
        "waiting": Unit.COUNT,
        "max_connections": Unit.COUNT,
        "pool_used": Unit.RATIO,
        "slow_queries": Unit.COUNT,
        "queries_per_min": Unit.PER_MINUTE,
        "mean_query_ms": Unit.MS,
        "up": Unit.FLAG,
    },
    # Prometheus sources add one field per configured metric or query (see `source_fields`).
    "prometheus": {"up": Unit.FLAG},
    "logs": {"errors_per_min": Unit.PER_MINUTE, "warns_per_min": Unit.PER_MINUTE, "up": Unit.FLAG},
}

SOURCE_KINDS = tuple(KIND_FIELDS)

POOLED_HTTP: Mapping[str, Unit] = {
    "p50": Unit.MS,
    "p95": Unit.MS,
    "p99": Unit.MS,
    "error_rate": Unit.RATIO,
    "rate_4xx": Unit.RATIO,
    "rps": Unit.PER_SECOND,
}
ENGINE_FIELDS: Mapping[str, Unit] = {"loop_lag_p99": Unit.MS}

# Source names that would shadow the built-in metric families.
RESERVED_SOURCE_NAMES = frozenset({"http", "cockpit"})


def source_fields(kind: str, extra: Iterable[str] = ()) -> dict[str, Unit]:
    """Fields of one source: its kind's, plus user-named ones (Prometheus metrics/queries)."""
    fields = dict(KIND_FIELDS[kind])
    for name in extra:
        fields.setdefault(name, Unit.NUMBER)
    return fields


class Catalog:
    """Every metric name the current config can produce, with its unit."""

    def __init__(self, sources: Mapping[str, Mapping[str, Unit]]) -> None:
        self._units: dict[str, Unit] = {}
        for source, fields in sources.items():
            for field, unit in fields.items():
                self._units[f"{source}.{field}"] = unit
        for field, unit in POOLED_HTTP.items():
            self._units[f"http.{field}"] = unit
        for field, unit in ENGINE_FIELDS.items():
            self._units[f"cockpit.{field}"] = unit

    def unit(self, metric: str) -> Unit | None:
        return self._units.get(metric)

    def names(self) -> list[str]:
        return sorted(self._units)

    def suggest(self, metric: str) -> str | None:
        """The closest known name, for a did-you-mean.

        Two swapped neighbours ("p59" for "p95") come first: difflib alone ranks them no
        closer than any one-letter change ("p99").
        """
        for i in range(len(metric) - 1):
            swapped = metric[:i] + metric[i + 1] + metric[i] + metric[i + 2 :]
            if swapped != metric and swapped in self._units:
                return swapped
        close = difflib.get_close_matches(metric, self._units, n=1, cutoff=0.6)
        return close[0] if close else None

    def __contains__(self, metric: object) -> bool:
        return metric in self._units
