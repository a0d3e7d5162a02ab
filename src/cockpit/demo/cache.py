"""The plan's two cache layers: L1 an in-process LRU (10,000 items, 5 minutes, age refreshed
on read), L2 Redis with a TTL per kind of key (list 1 h, detail 30 min, search 30 min)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

L1_MAX_ITEMS = 10_000
L1_TTL_S = 5 * 60
L2_TTL_S = {"list": 3600, "detail": 1800, "search": 1800}


class LruCache:
    """OrderedDict LRU with a TTL; the clock is injected so tests need not sleep."""

    def __init__(
        self,
        max_items: int = L1_MAX_ITEMS,
        ttl_s: float = L1_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_items = max_items
        self.ttl_s = ttl_s
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now - entry[0] > self.ttl_s:
            del self._items[key]
            return None
        self._items[key] = (now, entry[1])  # updateAgeOnGet
        self._items.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        self._items[key] = (self.clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class SharedCache(Protocol):
    """L2: a miss and an outage both answer None; `ping` tells them apart for /api/health."""

    async def get(self, key: str) -> Any | None: ...
    async def put(self, key: str, kind: str, value: Any) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class CacheDown(Exception):
    """L2 could not be reached: the request goes on to the database."""


class RedisCache:
    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True
        )

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self.client.get(key)
        except (RedisError, OSError) as error:
            raise CacheDown(str(error)) from error
        return None if raw is None else json.loads(raw)

    async def put(self, key: str, kind: str, value: Any) -> None:
        try:
            await self.client.set(key, json.dumps(value), ex=L2_TTL_S[kind])
        except (RedisError, OSError) as error:
            raise CacheDown(str(error)) from error

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.client.aclose()


class MemorySharedCache:
    """The fallback L2 without Redis: a second LRU with the plan's TTLs; 'down' on demand."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.down = False
        self._items: dict[str, tuple[float, Any]] = {}

    async def get(self, key: str) -> Any | None:
        if self.down:
            raise CacheDown("in-process cache is down (fault)")
        entry = self._items.get(key)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    async def put(self, key: str, kind: str, value: Any) -> None:
        if self.down:
            raise CacheDown("in-process cache is down (fault)")
        if len(self._items) >= L1_MAX_ITEMS * 10:
            self._items.clear()  # crude bound; the fallback only has to stay small
        self._items[key] = (self.clock() + L2_TTL_S[kind], value)

    async def ping(self) -> bool:
        return not self.down

    def fill_ratio(self) -> float:
        """How full it is, as Redis' used/maxmemory."""
        return len(self._items) / (L1_MAX_ITEMS * 10)

    async def close(self) -> None:
        pass
