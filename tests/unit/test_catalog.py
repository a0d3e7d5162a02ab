"""The catalog of metric names: kinds' fields, pooled http.*, cockpit.*, did-you-mean."""

from __future__ import annotations

from cockpit.core.catalog import Catalog, Unit, source_fields


def catalog() -> Catalog:
    return Catalog(
        {
            "farms": source_fields("http"),
            "cache": source_fields("redis"),
            "prom": source_fields("prometheus", ["checkout_errors"]),
        }
    )


def test_names_and_units() -> None:
    names = catalog().names()
    assert "farms.p95" in names
    assert "cache.hit_rate" in names
    assert "prom.checkout_errors" in names
    assert "http.error_rate" in names
    assert "cockpit.loop_lag_p99" in names
    assert catalog().unit("farms.p95") is Unit.MS
    assert catalog().unit("cache.hit_rate") is Unit.RATIO
    assert catalog().unit("prom.checkout_errors") is Unit.NUMBER
    assert catalog().unit("prom.up") is Unit.FLAG
    assert catalog().unit("db.p95") is None
    assert "http.rate_4xx" in catalog()
    assert "http.mean" not in catalog()  # pooled fields are the documented six


def test_suggest_prefers_swapped_neighbours() -> None:
    assert catalog().suggest("http.p59") == "http.p95"
    assert catalog().suggest("cache.hitrate") == "cache.hit_rate"
    assert catalog().suggest("zzz") is None
