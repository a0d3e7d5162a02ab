"""The engine: builds a source per `[sources.NAME]`, runs them on their schedules, keeps the
pooled `http.*` and `cockpit.*` metrics, and tells its caller once a tick.

Headless commands run it in their own event loop for a while (`collect`); a long-running
cockpit runs `watch` until it is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress

from cockpit.core.lag import LagMonitor
from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan, SourceSpec
from cockpit.core.sources.base import PollResult, Reading, Source
from cockpit.core.sources.schedule import SLOT_S, SourceRunner, start_offsets

Tick = Callable[[MetricStore, dict[str, SourceRunner]], None]


def make_source(spec: SourceSpec, lag: LagMonitor) -> Source:
    """The poller for one source, by kind (imported on demand: a plan pays only for its kinds)."""
    if spec.kind == "http":
        from cockpit.core.sources.http import HttpSource

        return HttpSource(spec, lag_ok=lag.ok)
    if spec.kind == "redis":
        from cockpit.core.sources.redis import RedisSource

        return RedisSource(spec)
    if spec.kind == "postgres":
        from cockpit.core.sources.postgres import PostgresSource

        return PostgresSource(spec)
    if spec.kind == "prometheus":
        from cockpit.core.sources.prometheus import PrometheusSource

        return PrometheusSource(spec)
    if spec.kind == "logs":
        from cockpit.core.sources.logs import LogsSource

        return LogsSource(spec)
    raise ValueError(f"no poller for kind {spec.kind!r}")


def default_duration(plan: Plan) -> float:
    """Long enough for every source to answer twice (their first polls are spread a little)."""
    spread = min(len(plan.sources) * SLOT_S, 1.0)
    return max((2 * s.every_s for s in plan.sources.values()), default=0.0) + 0.5 + spread


class Engine:
    """Everything the pollers need for one run; `watch` runs it."""

    def __init__(
        self, plan: Plan, store: MetricStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.plan = plan
        self.store = store
        self.clock = clock
        self.lag = LagMonitor()
        self.sources = {name: make_source(spec, self.lag) for name, spec in plan.sources.items()}
        self._pooled_due = False  # an HTTP source read something since the pooled http.* row
        offsets = start_offsets([spec.every_s for spec in plan.sources.values()])
        self.runners = {
            name: SourceRunner(
                source, store, clock=clock, on_result=self._after_poll, offset=offset
            )
            for (name, source), offset in zip(self.sources.items(), offsets, strict=True)
        }

    def _after_poll(self, name: str, result: PollResult) -> None:
        if self.plan.sources[name].kind == "http" and isinstance(result, Reading):
            self._pooled_due = True  # merged once per tick: per poll it is quadratic in sources

    def _record_pooled_http(self) -> None:
        from cockpit.core.sources.http import HttpSource, pooled_reading

        if not self._pooled_due:
            return
        self._pooled_due = False

        probes = [s for s in self.sources.values() if isinstance(s, HttpSource)]
        now = self.clock()
        pooled = pooled_reading(probes, now)
        for field, value in pooled.values.items():
            self.store.record(f"http.{field}", now, value, pooled.reasons.get(field))

    def _record_engine_health(self) -> None:
        p99 = self.lag.p99_ms()
        reason = None if p99 is not None else "measuring"
        self.store.record("cockpit.loop_lag_p99", self.clock(), p99, reason)

    async def watch(self, seconds: float | None = None, on_tick: Tick | None = None) -> None:
        """Poll every source until `seconds` pass (or forever), calling `on_tick` each second."""
        tasks = [asyncio.create_task(r.run()) for r in self.runners.values()]
        tasks.append(asyncio.create_task(self.lag.run()))
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                await asyncio.sleep(max(left, 0.0))
                self._record_engine_health()
                self._record_pooled_http()
                if on_tick is not None:
                    on_tick(self.store, self.runners)
        finally:
            self._record_pooled_http()  # what the last polls read, for a command's verdict
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for source in self.sources.values():
                with suppress(Exception):
                    await source.close()


def collect(plan: Plan, store: MetricStore, seconds: float) -> None:
    """Poll every source for `seconds`, then return (for headless commands)."""
    if seconds <= 0 or not plan.sources:
        return
    asyncio.run(Engine(plan, store).watch(seconds))


def store_for(plan: Plan, *, keep_s: float = 0.0) -> MetricStore:
    """A metric store sized for the plan: staleness per source, history for its longest `for`."""
    stale_after = {name: spec.stale_after_s for name, spec in plan.sources.items()}
    http = [spec.stale_after_s for spec in plan.sources.values() if spec.kind == "http"]
    stale_after["http"] = max(http, default=3.0)
    stale_after["cockpit"] = 3.0
    rules = [*plan.preflight_rules, *(plan.auto_rollback.when if plan.auto_rollback else ())]
    for phase in plan.phases:
        rules += [*phase.success, *phase.failure]
    longest_for = max((r.for_s or 0.0 for r in rules), default=0.0)
    horizon = max(longest_for, keep_s) + max(stale_after.values()) + 60.0
    return MetricStore(stale_after=stale_after, horizon_s=horizon)
