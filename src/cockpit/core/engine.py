"""The engine: runs the pollers that feed the metric store.

Pollers per source kind register in `POLLERS` (they arrive with the sources work). A source
whose kind has no poller is never polled: its metrics stay "no data" and its gates UNKNOWN,
which is the honest answer until it can be measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan, SourceSpec

# kind -> coroutine function that polls one source until cancelled, recording into the store
PollLoop = Callable[[SourceSpec, MetricStore], Coroutine[Any, Any, None]]
POLLERS: dict[str, PollLoop] = {}


def pollable_sources(plan: Plan) -> list[SourceSpec]:
    return [spec for spec in plan.sources.values() if spec.kind in POLLERS]


async def _collect(plan: Plan, store: MetricStore, seconds: float) -> None:
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(POLLERS[s.kind](s, store)) for s in pollable_sources(plan)
    ]
    try:
        await asyncio.sleep(seconds)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def collect(plan: Plan, store: MetricStore, seconds: float) -> None:
    """Poll every pollable source for `seconds`; returns at once when none can be polled."""
    if not pollable_sources(plan):
        return
    asyncio.run(_collect(plan, store, seconds))
