"""The engine's own health: how late its event loop wakes up.

A probe measured on a loop that is late measures the loop, not the server. The monitor
sleeps a fixed tick and records how much later than asked it woke; while the latest lag is
over budget, latency figures are not trusted (the HTTP source reports them as unknown).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Callable

LAG_BUDGET_S = 0.010  # 10 ms
TICK_S = 0.1
WINDOW_S = 60.0


class LagMonitor:
    def __init__(self, *, perf: Callable[[], float] = time.perf_counter) -> None:
        self.perf = perf
        self.samples: deque[tuple[float, float]] = deque(maxlen=int(WINDOW_S / TICK_S) + 1)
        self.latest_s = 0.0

    def add(self, at: float, lag_s: float) -> None:
        self.latest_s = max(0.0, lag_s)
        self.samples.append((at, self.latest_s))
        while self.samples and self.samples[0][0] < at - WINDOW_S:
            self.samples.popleft()

    def ok(self) -> bool:
        """True while the loop keeps its budget (latency measurements can be trusted)."""
        return self.latest_s <= LAG_BUDGET_S

    def p99_ms(self) -> float | None:
        lags = [lag for _, lag in self.samples]
        if len(lags) < 2:
            return None
        return statistics.quantiles(lags, n=100, method="inclusive")[98] * 1000

    async def run(self) -> None:
        while True:
            asked = self.perf()
            await asyncio.sleep(TICK_S)
            woke = self.perf()
            self.add(woke, woke - asked - TICK_S)
