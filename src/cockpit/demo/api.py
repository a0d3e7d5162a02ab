"""The farmers-market API (Starlette). Standard path: every request queries the database.
Phase 3 path: L1 (in-process LRU), then L2 (Redis), then the database, filling both caches."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cockpit.demo.cache import CacheDown, LruCache, MemorySharedCache, SharedCache
from cockpit.demo.exporter import ExporterFigures, cache_page, db_page
from cockpit.demo.faults import FaultState
from cockpit.demo.flags import Rollout
from cockpit.demo.latency import RemoteLatency
from cockpit.demo.metrics import DemoMetrics
from cockpit.demo.store import FarmStore

INSTANCES = 8
INSTANCE_LIFE_S = 60.0  # then the instance is replaced by a cold one (serverless recycling)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Backend:
    """Everything a request touches; shared with the platform, which flips faults and rollout."""

    store: FarmStore
    l2: SharedCache
    rollout: Rollout
    faults: FaultState
    metrics: DemoMetrics = field(default_factory=DemoMetrics)
    latency: RemoteLatency = field(default_factory=lambda: RemoteLatency(scale=0))
    figures: ExporterFigures = field(default_factory=ExporterFigures)
    # Production runs several app instances, each with its own L1, behind a load balancer:
    # without that, one process's L1 would answer everything and Redis would never see a hit.
    # Serverless instances are also recycled: a fresh one starts with an empty L1, and its
    # first reads are what the shared L2 is for.
    l1s: list[LruCache] = field(default_factory=lambda: [LruCache() for _ in range(INSTANCES)])
    instance_life_s: float = INSTANCE_LIFE_S  # 0: instances live forever
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    _next: itertools.count[int] = field(default_factory=itertools.count)
    _born: list[float] = field(default_factory=list)

    def pick_l1(self) -> LruCache:
        """Round robin over the simulated instances, replacing those past their life."""
        index = next(self._next) % len(self.l1s)
        now = time.monotonic()
        if not self._born:  # staggered, so they are not all replaced at once
            life, count = self.instance_life_s, len(self.l1s)
            self._born = [now - life * k / count for k in range(count)]
        if self.instance_life_s > 0 and now - self._born[index] > self.instance_life_s:
            self.l1s[index].clear()
            self._born[index] = now
        return self.l1s[index]


class _Answer(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Answer(400, f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise _Answer(400, f"{name} must not be negative")
    return value


def build_app(backend: Backend) -> Starlette:
    b = backend

    async def cached(
        key: str, kind: str, phase3: bool, load: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, str]:
        l1 = b.pick_l1()
        if phase3:
            value = l1.get(key)
            if value is not None:
                b.metrics.cache_hits.labels("l1").inc()
                return value, "L1"
            b.metrics.cache_misses.labels("l1").inc()
            try:
                value = await b.l2.get(key)
            except CacheDown:
                b.metrics.cache_errors.inc()
            else:
                b.figures.l2_read(hit=value is not None)
                if value is not None:
                    b.metrics.cache_hits.labels("l2").inc()
                    l1.put(key, value)
                    return value, "L2"
                b.metrics.cache_misses.labels("l2").inc()
        value = await query(kind, load)
        if phase3 and value is not None:
            l1.put(key, value)
            try:
                await b.l2.put(key, kind, value)
            except CacheDown:
                b.metrics.cache_errors.inc()
        return value, "DB"

    async def query(kind: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """One database read: the remote round trips, then the statement (timed)."""
        wait = b.latency.sample(kind, b.rng)
        if wait > 0:
            await asyncio.sleep(wait)
        started = time.perf_counter()
        b.figures.in_flight += 1
        try:
            value = await load()
        finally:
            b.figures.in_flight -= 1
        b.figures.query_done(time.perf_counter() - started)
        b.metrics.db_queries.labels(kind).inc()
        return value

    async def farm_route(
        request: Request, endpoint: str, fetch: Callable[[bool], Awaitable[tuple[Any, str]]]
    ) -> Response:
        started = time.perf_counter()
        user = request.headers.get("x-user") or request.query_params.get("user")
        phase3 = b.rollout.includes(user)
        path = "phase3" if phase3 else "standard"
        headers = {"X-Path": path}
        try:
            spiking = b.faults.error_fraction > 0 and (phase3 or not b.faults.errors_phase3_only)
            if spiking and b.rng.random() < b.faults.error_fraction:
                raise _Answer(500, "internal error (injected fault)")
            value, source = await fetch(phase3)
            if value is None:
                raise _Answer(404, "no such farm")
            headers["X-Cache"] = source
            response: Response = JSONResponse(value, headers=headers)
        except _Answer as answer:
            response = JSONResponse({"error": answer.message}, answer.status, headers=headers)
        except Exception as error:  # a database that failed: the user sees a 500, not a hang
            message = f"internal error: {type(error).__name__}"
            response = JSONResponse({"error": message}, 500, headers=headers)
        b.metrics.latency.labels(endpoint, path).observe(time.perf_counter() - started)
        b.metrics.requests.labels(endpoint, path, str(response.status_code)).inc()
        return response

    async def farms(request: Request) -> Response:
        search = request.query_params.get("search", "").strip()
        endpoint = "search" if search else "farms"

        async def fetch(phase3: bool) -> tuple[Any, str]:
            page = _int_param(request, "page", 0)
            if search:
                key = f"farms:search:{search.lower()}:{page}"
                load = lambda: b.store.search_farms(search, page)  # noqa: E731
                items, source = await cached(key, "search", phase3, load)
            else:
                key = f"farms:list:{page}"
                items, source = await cached(key, "list", phase3, lambda: b.store.list_farms(page))
            return {"page": page, "search": search or None, "items": items}, source

        return await farm_route(request, endpoint, fetch)

    async def farm(request: Request) -> Response:
        async def fetch(phase3: bool) -> tuple[Any, str]:
            raw = request.path_params["farm_id"]
            if not raw.isdigit():
                raise _Answer(404, "no such farm")
            farm_id = int(raw)
            return await cached(
                f"farms:detail:{farm_id}", "detail", phase3, lambda: b.store.get_farm(farm_id)
            )

        return await farm_route(request, "farm", fetch)

    async def health(request: Request) -> Response:
        db_ok = await b.store.ping()
        cache_ok = (not b.faults.redis_down) and await b.l2.ping()
        body = {"db": "ok" if db_ok else "down", "cache": "ok" if cache_ok else "down"}
        return JSONResponse(body, 200 if db_ok and cache_ok else 503)

    async def metrics(request: Request) -> Response:
        b.metrics.rollout.set(b.rollout.percent)
        return Response(b.metrics.exposition(), headers={"Content-Type": PROMETHEUS_TEXT})

    async def rollout(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body())
                percent = body["percent"]
                if isinstance(percent, str):  # a plan's placeholder ("{percent}") is text
                    percent = float(percent)
                if isinstance(percent, bool) or not isinstance(percent, int | float):
                    raise TypeError
                b.rollout.set(percent)
            except (ValueError, KeyError, TypeError) as error:
                detail = (
                    str(error) if isinstance(error, ValueError) and "0-100" in str(error) else ""
                )
                message = detail or 'send JSON {"percent": N} with N within 0-100'
                return JSONResponse({"error": message}, 400)
        return JSONResponse({"percent": b.rollout.percent})

    async def cache_exporter(request: Request) -> Response:
        if b.faults.redis_down or not await b.l2.ping():
            return Response("cache down\n", 503, media_type="text/plain")
        fill = b.l2.fill_ratio() if isinstance(b.l2, MemorySharedCache) else 0.0
        return Response(cache_page(b.figures, fill), headers={"Content-Type": PROMETHEUS_TEXT})

    async def db_exporter(request: Request) -> Response:
        return Response(db_page(b.figures), headers={"Content-Type": PROMETHEUS_TEXT})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await b.store.open()
        try:
            yield
        finally:
            await b.store.close()
            await b.l2.close()

    routes = [
        Route("/api/farms", farms),
        Route("/api/farms/{farm_id}", farm),
        Route("/api/health", health),
        Route("/metrics", metrics),
        Route("/metrics/cache", cache_exporter),
        Route("/metrics/db", db_exporter),
        Route("/admin/rollout", rollout, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
