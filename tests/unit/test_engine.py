"""The engine's collection loop: registered pollers run for the window, then stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit.core import engine
from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Phase, Plan, SourceSpec


def plan() -> Plan:
    sources = {"farms": SourceSpec("farms", "http", 0.01, 1.0)}
    return Plan(
        name="t",
        config_path=Path("c"),
        state_path=Path("s"),
        audit_path=Path("a"),
        sources=sources,
        catalog=Catalog({"farms": source_fields("http")}),
        phases=(Phase("one", 10, 0.0),),
    )


@pytest.fixture
def fake_http_poller() -> Iterator[list[str]]:
    cancelled: list[str] = []

    async def loop(spec: SourceSpec, store: MetricStore) -> None:
        try:
            while True:
                store.record(f"{spec.name}.p95", time.time(), 100.0)
                await asyncio.sleep(spec.every_s)
        except asyncio.CancelledError:
            cancelled.append(spec.name)
            raise

    engine.POLLERS["http"] = loop
    try:
        yield cancelled
    finally:
        del engine.POLLERS["http"]


def test_nothing_pollable_returns_at_once() -> None:
    store = MetricStore()
    assert engine.pollable_sources(plan()) == []
    engine.collect(plan(), store, 3600.0)  # would hang for an hour if it waited
    assert store.metrics() == []


def test_collect_runs_pollers_for_the_window_then_cancels_them(
    fake_http_poller: list[str],
) -> None:
    store = MetricStore()
    engine.collect(plan(), store, 0.2)
    assert len(store.points("farms.p95", 0.0)) >= 2
    assert fake_http_poller == ["farms"]
