"""Running one source: a fixed schedule, one poll in flight, timeouts, recording.

The next poll is planned from the previous plan, not from when the last poll ended, so the
schedule does not drift; a poll that starts late is handed its planned time, and the HTTP
probe counts the lateness in its latency (no coordinated omission). A source that is down
is retried every interval, without backoff: it must be seen again within one interval of its
return, and a refused or timed-out poll costs little (one poll in flight at most, so a hung
server is asked once per timeout). Its last good values stay in the store to go stale with
their age: nothing stale reaches a gate.

Two details keep probes honest and the loop calm:
- asyncio wakes a sleeper up to a millisecond late (epoll's timeout is rounded up to whole
  milliseconds), which an HTTP probe would count as latency. So the runner wakes EARLY_S before
  the plan and hands the poll the *earlier* of the plan and the moment it starts: a probe that
  starts a little early is timed from its real start, a late one from its plan.
- The engine gives each runner an `offset` (SLOT_S apart, spread over the interval) so that
  200 sources at 1 s do not all start in the same millisecond and stall the loop together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.sources.base import PollResult, Reading, Source, SourceDown, one_line

# Grace on top of the source's own timeout, so its own (better-worded) timeout wins the race.
TIMEOUT_GRACE_S = 1.0
EARLY_S = 0.002  # wake this much before the plan: asyncio's timers fire up to 1 ms late
SLOT_S = 0.005  # first polls of successive sources are this far apart (when the interval allows)


def start_offsets(every_s: list[float]) -> list[float]:
    """When each source's first poll is due, after the start: SLOT_S apart, spread evenly over
    the shortest interval when there are too many sources for that, and always within a
    source's own interval."""
    if not every_s:
        return []
    step = min(SLOT_S, min(every_s) / len(every_s))
    return [(i * step) % every for i, every in enumerate(every_s)]


class SourceRunner:
    """Polls one source until cancelled and records what it answers."""

    def __init__(
        self,
        source: Source,
        store: MetricStore,
        *,
        clock: Callable[[], float] = time.time,
        perf: Callable[[], float] = time.perf_counter,
        on_result: Callable[[str, PollResult], None] | None = None,
        offset: float = 0.0,
    ) -> None:
        self.source = source
        self.store = store
        self.clock = clock
        self.perf = perf
        self.on_result = on_result
        self.offset = offset
        self.failures = 0
        self.polls = 0
        self.details: dict[str, Any] = {}

    async def poll_once(self, planned_at: float) -> PollResult:
        spec = self.source.spec
        try:
            return await asyncio.wait_for(
                self.source.poll(planned_at), spec.timeout_s + TIMEOUT_GRACE_S
            )
        except TimeoutError:
            return SourceDown(f"timed out after {spec.timeout_s:g}s")
        except Exception as exc:  # errors are data: nothing a server does escapes as an exception
            return SourceDown(one_line(exc))

    def record(self, result: PollResult) -> None:
        name = self.source.spec.name
        now = self.clock()
        before = self.store.source(name)
        if isinstance(result, Reading):
            for field, value in result.values.items():
                self.store.record(f"{name}.{field}", now, value, result.reasons.get(field))
            self.store.set_source(name, SourceStatus(True, None, now, now))
            self.details = dict(result.details)
            self.store.set_details(name, self.details)  # e.g. a logs source's newest lines
            self.failures = 0
        else:
            self.store.record(f"{name}.up", now, 0.0)
            self.store.set_source(name, SourceStatus(False, result.error, before.last_ok, now))
            self.failures += 1
        self.polls += 1
        if self.on_result is not None:
            self.on_result(name, result)

    async def run(self) -> None:
        every = self.source.spec.every_s
        planned = self.perf() + self.offset
        while True:
            delay = planned - self.perf() - EARLY_S
            if delay > 0:
                await asyncio.sleep(delay)
            self.record(await self.poll_once(min(planned, self.perf())))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Python 3.11's wait_for can swallow a cancel that lands as the poll finishes;
                # without this the runner sleeps on and the engine's shutdown never ends.
                raise asyncio.CancelledError
            planned += every
            now = self.perf()
            if now - planned > self.source.spec.timeout_s:
                # Far behind (the machine stalled): start afresh rather than firing a burst.
                planned = now
