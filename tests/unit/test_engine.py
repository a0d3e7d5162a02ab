"""The scheduler and engine plumbing: recording, errors as data, timeouts, no drift, no overlap."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.engine import Engine, default_duration, store_for
from cockpit.core.lag import LagMonitor
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import AutoRollback, Phase, Plan, SourceSpec
from cockpit.core.rules import parse_rule
from cockpit.core.sources import schedule
from cockpit.core.sources.base import PollResult, Reading, SourceDown, one_line
from cockpit.core.sources.schedule import SourceRunner


class FakeSource:
    """Our own Source protocol, scripted: each poll takes the next answer (or raises it)."""

    def __init__(self, spec: SourceSpec, answers: list[object], delay: float = 0.0) -> None:
        self.spec = spec
        self.answers = answers
        self.delay = delay
        self.planned: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def poll(self, planned_at: float) -> PollResult:
        self.planned.append(planned_at)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            answer = self.answers.pop(0) if self.answers else Reading({"up": 1.0})
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, Reading | SourceDown)
            return answer
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        pass


def spec(every: float = 0.02, timeout: float = 1.0) -> SourceSpec:
    return SourceSpec("cache", "redis", every, timeout)


async def test_reading_is_recorded_with_reasons_and_source_up() -> None:
    store = MetricStore()
    reading = Reading({"hit_rate": None, "clients": 3.0}, reasons={"hit_rate": "first sample"})
    runner = SourceRunner(FakeSource(spec(), [reading]), store, clock=lambda: 100.0)
    runner.record(await runner.poll_once(0.0))
    assert store.latest("cache.clients") is not None
    hit = store.latest("cache.hit_rate")
    assert hit is not None
    assert hit.value is None
    assert hit.reason == "first sample"
    assert store.source("cache").up is True
    assert store.source("cache").last_ok == 100.0


async def test_down_records_up_zero_and_keeps_last_ok() -> None:
    store = MetricStore()
    times = iter([100.0, 105.0])
    answers: list[object] = [Reading({"up": 1.0}), SourceDown("connection refused")]
    runner = SourceRunner(FakeSource(spec(), answers), store, clock=lambda: next(times))
    runner.record(await runner.poll_once(0.0))
    runner.record(await runner.poll_once(0.0))
    status = store.source("cache")
    assert (status.up, status.error, status.last_ok, status.last_poll) == (
        False,
        "connection refused",
        100.0,
        105.0,
    )
    up = store.latest("cache.up")
    assert up is not None
    assert up.value == 0.0
    assert runner.failures == 1


async def test_exceptions_and_hangs_become_source_down() -> None:
    runner = SourceRunner(
        FakeSource(spec(), [ConnectionResetError("reset by peer")]), MetricStore()
    )
    assert await runner.poll_once(0.0) == SourceDown("reset by peer")
    hung = FakeSource(spec(timeout=0.01), [], delay=30.0)
    runner = SourceRunner(hung, MetricStore())
    runner_timeout = 0.01
    started = time.monotonic()
    original = schedule.TIMEOUT_GRACE_S
    schedule.TIMEOUT_GRACE_S = 0.0
    try:
        result = await runner.poll_once(0.0)
    finally:
        schedule.TIMEOUT_GRACE_S = original
    assert result == SourceDown(f"timed out after {runner_timeout:g}s")
    assert time.monotonic() - started < 5


def assert_on_plan(starts: list[float], every: float) -> None:
    """Each poll was handed its plan, or its real start when it began up to EARLY_S before it:
    the k-th start is never after first + k intervals, nor more than EARLY_S before (no drift)."""
    first = starts[0]
    for k, start in enumerate(starts):
        due = first + k * every
        assert due - schedule.EARLY_S - 1e-9 <= start <= due + schedule.EARLY_S + 1e-9


async def test_schedule_does_not_drift_and_never_overlaps() -> None:
    source = FakeSource(spec(every=0.05), [], delay=0.03)
    task = asyncio.create_task(SourceRunner(source, MetricStore()).run())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.max_in_flight == 1
    assert len(source.planned) >= 6
    assert_on_plan(source.planned, 0.05)  # planned, not measured


async def test_a_down_source_is_retried_every_interval_and_read_at_its_return() -> None:
    """No backoff: `cache.up == 0 for D` sees a zero each interval, and the first poll after
    the server's return reads it (recovery within one interval)."""
    store = MetricStore()
    answers: list[object] = [SourceDown("refused")] * 10
    source = FakeSource(spec(every=0.05), answers)
    runner = SourceRunner(source, store)
    task = asyncio.create_task(runner.run())
    for _ in range(200):  # the ten failures, then one good poll
        await asyncio.sleep(0.05)
        if len(source.planned) >= 11 and runner.failures == 0:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_on_plan(source.planned[:11], 0.05)  # planned, no backoff
    ups = [p.value for p in store.points("cache.up", 0.0)]
    assert ups[:10] == [0.0] * 10
    assert store.source("cache").up is True  # the 11th poll, one interval after the return


async def test_a_cancel_that_lands_as_a_poll_finishes_still_stops_the_runner() -> None:
    """On Python 3.11 `wait_for` returns the poll's result and drops the outer cancel when both
    land together; the runner must still stop (or the engine's shutdown waits forever)."""
    store = MetricStore()
    runner_task: list[asyncio.Task[None]] = []

    class CancelledAsItAnswers(FakeSource):
        async def poll(self, planned_at: float) -> PollResult:
            self.planned.append(planned_at)
            runner_task[0].cancel()  # the engine stops just as this poll answers
            return Reading({"up": 1.0})

    runner = SourceRunner(CancelledAsItAnswers(spec(every=60.0), []), store)
    task = asyncio.create_task(runner.run())
    runner_task.append(task)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 5.0)
    assert task.cancelled()


def test_one_line() -> None:
    assert one_line(OSError("first\nsecond")) == "first"
    assert one_line(TimeoutError()) == "TimeoutError"


def test_lag_monitor_budget_and_p99() -> None:
    lag = LagMonitor()
    assert lag.p99_ms() is None
    for i in range(100):
        lag.add(float(i), 0.001)
    assert lag.ok()
    lag.add(100.0, 0.050)
    assert not lag.ok()
    p99 = lag.p99_ms()
    assert p99 is not None
    assert 1.0 <= p99 <= 50.0


def plan_of(sources: dict[str, SourceSpec], **fields: Any) -> Plan:
    """A plan around `sources` (paths that are never written), with `fields` as given."""
    return Plan(
        name="t",
        config_path=Path("c"),
        state_path=Path("s"),
        audit_path=Path("a"),
        sources=sources,
        catalog=Catalog({n: source_fields(s.kind) for n, s in sources.items()}),
        **fields,
    )


def test_store_for_sizes_staleness_and_history() -> None:
    sources = {
        "farms": SourceSpec("farms", "http", 1.0, 5.0),
        "db": SourceSpec("db", "postgres", 2.0, 5.0),
    }
    plan = plan_of(
        sources,
        phases=(Phase("one", 10, 0.0, failure=(parse_rule("db.pool_used > 80% for 30m"),)),),
        auto_rollback=AutoRollback(when=(parse_rule("http.p95 > 2s for 10m"),), method="x"),
    )
    store = store_for(plan)
    assert store.stale_after("farms.p95") == 3.0
    assert store.stale_after("db.up") == 6.0
    assert store.stale_after("http.p95") == 3.0
    assert store.horizon_s >= 1800.0
    assert store_for(plan, keep_s=7200.0).horizon_s >= 7200.0
    assert default_duration(plan) == pytest.approx(4.5 + 2 * schedule.SLOT_S)


def test_start_offsets_spread_first_polls_within_each_interval() -> None:
    assert schedule.start_offsets([]) == []
    few = schedule.start_offsets([1.0, 1.0, 2.0])
    assert few == pytest.approx([0.0, schedule.SLOT_S, 2 * schedule.SLOT_S])
    many = schedule.start_offsets([1.0] * 400)  # too many for SLOT_S: spread over the second
    assert max(many) < 1.0
    gaps = sorted(b - a for a, b in zip(many, many[1:], strict=False))
    assert gaps[0] == pytest.approx(1.0 / 400)
    assert all(o < 0.05 for o in schedule.start_offsets([0.05] * 30))  # within its own interval


async def test_a_runner_starts_at_its_offset_and_never_before_early_s() -> None:
    source = FakeSource(spec(every=0.05), [])
    runner = SourceRunner(source, MetricStore(), offset=0.2)
    started = time.perf_counter()
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.35)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.planned[0] >= started + 0.2 - schedule.EARLY_S
    assert_on_plan(source.planned, 0.05)


def test_engine_spreads_its_sources_first_polls() -> None:
    sources = {
        n: SourceSpec(n, "http", 1.0, 5.0, {"url": f"http://127.0.0.1:9/{n}"}) for n in "abc"
    }
    plan = plan_of(sources, phases=(Phase("one", 10, 0.0),))
    engine = Engine(plan, store_for(plan))
    offsets = sorted(r.offset for r in engine.runners.values())
    assert offsets == pytest.approx([0.0, schedule.SLOT_S, 2 * schedule.SLOT_S])
