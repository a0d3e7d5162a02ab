"""Running `Engine.watch` for a benchmark, and getting it to stop.

On Python 3.11, `asyncio.wait_for` returns the inner result and drops the outer cancellation
when both happen in the same loop iteration; `SourceRunner.poll_once` polls under `wait_for`,
so a runner cancelled at the moment its poll finishes keeps running (its task stays
"cancelling" but sleeps towards its next poll), and `Engine.watch` waits for it forever at
shutdown. With 200 sources this happens on most runs. Until the scheduler checks for it, this
re-cancels such runners (and counts them, so the benchmark reports it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from cockpit.core.engine import Engine


async def watch(engine: Engine, seconds: float, on_tick: Any = None) -> int:
    """`engine.watch(seconds, on_tick)`; returns how many runners had to be cancelled again."""
    task = asyncio.create_task(engine.watch(seconds, on_tick))
    rescued = 0
    wait_s = seconds + 2.0
    while True:
        done, _ = await asyncio.wait({task}, timeout=wait_s)
        if done:
            task.result()
            return rescued
        wait_s = 1.0
        for other in asyncio.all_tasks():
            coro: Any = other.get_coro()
            name = getattr(coro, "__qualname__", "")
            if name == "SourceRunner.run" and other.cancelling() and not other.done():
                other.cancel()
                rescued += 1
