"""Where farms live: PostgreSQL (a small async connection pool) or, without it, in-process.

Each read is one database query. The delay (the demo's stand-in for a remote database doing
real work, raised by the slow-database fault) runs inside the same statement (`pg_sleep` in a
CTE), so pg_stat_statements sees slower queries, not extra ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from cockpit.demo.seed import Farm

Row = dict[str, Any]
PAGE_SIZE = 20
POOL_SIZE = 8


class FarmStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def list_farms(self, page: int) -> list[Row]: ...
    async def search_farms(self, term: str, page: int) -> list[Row]: ...
    async def get_farm(self, farm_id: int) -> Row | None: ...
    async def ping(self) -> bool: ...


_COLUMNS = "f.id, f.name, f.owner, f.city, f.state, f.products, f.rating"
_LIST = f"""WITH d AS MATERIALIZED (SELECT pg_sleep(%(delay)s))
SELECT {_COLUMNS} FROM farms f, d ORDER BY f.id LIMIT %(limit)s OFFSET %(offset)s"""
_SEARCH = f"""WITH d AS MATERIALIZED (SELECT pg_sleep(%(delay)s))
SELECT {_COLUMNS} FROM farms f, d
WHERE f.name ILIKE %(pattern)s OR f.city ILIKE %(pattern)s OR f.products ILIKE %(pattern)s
ORDER BY f.id LIMIT %(limit)s OFFSET %(offset)s"""
_DETAIL = f"""WITH d AS MATERIALIZED (SELECT pg_sleep(%(delay)s))
SELECT {_COLUMNS} FROM farms f, d WHERE f.id = %(id)s"""


def _shape(row: Row) -> Row:
    return {**row, "products": str(row["products"]).split(", ")}


class PostgresStore:
    def __init__(self, dsn: str, delay_s: Callable[[], float]) -> None:
        self.dsn = dsn
        self.delay_s = delay_s
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Row] | None] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(POOL_SIZE):
            self._idle.put_nowait(None)  # connected on first use

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                await conn.close()

    async def _query(self, sql: str, params: dict[str, object]) -> list[Row]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=3, row_factory=dict_row
                )
            cursor = await conn.execute(sql, {"delay": self.delay_s(), **params})
            return await cursor.fetchall()
        except psycopg.Error:
            if conn is not None:
                await conn.close()
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    async def list_farms(self, page: int) -> list[Row]:
        rows = await self._query(_LIST, {"limit": PAGE_SIZE, "offset": page * PAGE_SIZE})
        return [_shape(row) for row in rows]

    async def search_farms(self, term: str, page: int) -> list[Row]:
        params = {"pattern": f"%{term}%", "limit": PAGE_SIZE, "offset": page * PAGE_SIZE}
        return [_shape(row) for row in await self._query(_SEARCH, params)]

    async def get_farm(self, farm_id: int) -> Row | None:
        rows = await self._query(_DETAIL, {"id": farm_id})
        return _shape(rows[0]) if rows else None

    async def ping(self) -> bool:
        try:
            async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=2) as c:
                await c.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False


class MemoryStore:
    """The fallback without PostgreSQL: the same farms in a list, the same delay slept."""

    def __init__(self, farms: list[Farm], delay_s: Callable[[], float]) -> None:
        self.farms = farms
        self.by_id = {farm.id: farm for farm in farms}
        self.delay_s = delay_s

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_farms(self, page: int) -> list[Row]:
        await asyncio.sleep(self.delay_s())
        chosen = self.farms[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        return [farm.as_json() for farm in chosen]

    async def search_farms(self, term: str, page: int) -> list[Row]:
        await asyncio.sleep(self.delay_s())
        needle = term.lower()
        found = [
            farm
            for farm in self.farms
            if needle in f"{farm.name}\n{farm.city}\n{farm.products}".lower()
        ]
        return [farm.as_json() for farm in found[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]]

    async def get_farm(self, farm_id: int) -> Row | None:
        await asyncio.sleep(self.delay_s())
        farm = self.by_id.get(farm_id)
        return farm.as_json() if farm else None

    async def ping(self) -> bool:
        return True
