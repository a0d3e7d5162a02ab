"""User traffic for the demo: a few hundred simulated users at a steady rate, a mix of list,
detail and search requests with popular farms and pages, so the caches warm up."""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

import httpx

from cockpit.demo.seed import FARM_COUNT

SEARCH_TERMS = (
    "apple", "honey", "eggs", "berries", "tomatoes", "cheese", "maple", "flowers", "beef",
    "Portland", "Madison", "Austin", "Boulder", "Ithaca", "Asheville", "garlic", "cider",
)  # fmt: skip


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0  # 5xx answers and transport errors
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadShape:
    users: int = 300
    rate: float = 40.0  # requests per second: a 2-core machine keeps up with API + servers
    list_share: float = 0.45
    detail_share: float = 0.40  # the rest are searches
    max_in_flight: int = 64  # a slow database queues users instead of piling up sockets


def next_request(rng: random.Random, shape: LoadShape) -> tuple[str, str]:
    """(user, path): popular pages and farms come up most, as in real traffic."""
    user = f"user-{rng.randrange(shape.users)}"
    roll = rng.random()
    if roll < shape.list_share:
        page = min(int(rng.expovariate(0.5)), 24)
        return user, f"/api/farms?page={page}"
    if roll < shape.list_share + shape.detail_share:
        popular = rng.random() < 0.8
        farm_id = rng.randint(1, 200) if popular else rng.randint(1, FARM_COUNT)
        return user, f"/api/farms/{farm_id}"
    return user, f"/api/farms?search={rng.choice(SEARCH_TERMS)}"


class LoadGenerator:
    """Open-loop traffic (requests leave on schedule, not after the last answer) from a
    background thread with its own event loop."""

    def __init__(self, base_url: str, shape: LoadShape | None = None, seed: int = 7) -> None:
        self.base_url = base_url
        self.shape = shape or LoadShape()
        self.stats = LoadStats()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="demo-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.shape.max_in_flight)
        gate = asyncio.Semaphore(self.shape.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, limits=limits) as client:
            loop = asyncio.get_running_loop()
            interval = 1.0 / self.shape.rate
            due = loop.time()
            while not self._stop.is_set():
                due += interval
                await gate.acquire()
                user, path = next_request(self._rng, self.shape)
                task = asyncio.create_task(self._one(client, gate, user, path))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(max(0.0, due - loop.time()))
            if tasks:
                await asyncio.wait(tasks, timeout=10)

    async def _one(
        self, client: httpx.AsyncClient, gate: asyncio.Semaphore, user: str, path: str
    ) -> None:
        try:
            self.stats.sent += 1
            answer = await client.get(path, headers={"X-User": user})
            status = answer.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status >= 500:
                self.stats.failed += 1
            else:
                self.stats.ok += 1
        except httpx.HTTPError:
            self.stats.failed += 1
        finally:
            gate.release()
