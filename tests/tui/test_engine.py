"""The real engine thread behind the screen: against closed ports every pane says its source
is down; against real local servers (HTTP, Redis, PostgreSQL) the panes fill with live values;
a change made by another cockpit on the same state file shows at the next tick."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Log

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.operator import Operator
from cockpit.core.rollout_events import Advance, Hold
from cockpit.tui.app import CockpitApp
from cockpit.tui.widgets.cache import CachePane
from cockpit.tui.widgets.dbpool import DbPane
from cockpit.tui.widgets.header import HeaderBar
from cockpit.tui.widgets.latency import LatencyPane
from tests.servers.http_server import HttpServerControl
from tests.servers.postgres_server import PgDatabase
from tests.servers.redis_server import RedisServer
from tests.tui.helpers import make_cockpit, screen_text, write_plan

pytestmark = pytest.mark.integration


async def wait_for(app: CockpitApp, pilot: object, ok: object, seconds: float = 20.0) -> str:
    """Poll the screen until `ok(text)` (a generous deadline: shared, noisy machines)."""
    text = ""
    for _ in range(int(seconds * 10)):
        await asyncio.sleep(0.1)
        text = screen_text(app)
        if ok(text):  # type: ignore[operator]
            break
    await pilot.pause()  # type: ignore[attr-defined]
    return screen_text(app)


async def test_sources_down_are_shown_as_down(tmp_path: Path) -> None:
    app = CockpitApp(make_cockpit(tmp_path), environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        # The HTTP probes call a source down after 3 failures.
        text = await wait_for(app, pilot, lambda t: t.count("DOWN:") >= 5)
        assert text.count("DOWN:") >= 5, text  # farms, farm, search, cache, db
        assert "connection refused" in text.lower() or "connect" in text.lower()
        engine = app.engine
        assert engine is not None
    assert not engine.is_alive()


def live_cockpit(
    tmp_path: Path, http: HttpServerControl, redis: RedisServer, db: PgDatabase
) -> Cockpit:
    environ = {
        "APP_URL": f"http://127.0.0.1:{http.port}",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "DATABASE_URL": db.dsn,
    }
    plan = load_plan(write_plan(tmp_path), environ)
    return Cockpit(plan=plan, operator=Operator("alice", "10.0.0.5"), metrics=store_for(plan))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_real_servers_fill_the_panes_and_another_cockpits_hold_shows(
    tmp_path: Path,
    http_server: HttpServerControl,
    redis_server: RedisServer,
    pg_database: PgDatabase,
    size: tuple[int, int],
) -> None:
    http_server.configure(delay_s=0.02)
    cockpit = live_cockpit(tmp_path, http_server, redis_server, pg_database)
    app = CockpitApp(cockpit, environ={})
    async with app.run_test(size=size) as pilot:

        def live(text: str) -> bool:
            return "DOWN:" not in text and "waiting for first poll" not in text and "ms" in text

        text = await wait_for(app, pilot, live)
        assert "DOWN:" not in text, text
        latency = str(app.query_one(LatencyPane).render())
        assert "farms" in latency
        assert "ms" in latency  # measured p50/p95 against the 20 ms server
        cache = str(app.query_one(CachePane).render())
        assert "%" in cache or "hit" in cache.lower()
        assert "DOWN" not in cache
        db = str(app.query_one(DbPane).render())
        assert "act " in db, db  # connection states read from the real server
        assert "DOWN" not in db

        # Another cockpit (another operator, another process in real life) holds the rollout.
        other = Cockpit(
            plan=cockpit.plan, operator=Operator("bob", "10.0.0.6"), metrics=store_for(cockpit.plan)
        )
        other.apply(other.store.load(), Advance(by="bob@10.0.0.6", force=True, reason="go"))
        other.apply(other.store.load(), Hold(by="bob@10.0.0.6", reason="bob looks at p99"))
        text = await wait_for(app, pilot, lambda t: "HOLDING: bob looks at p99" in t)
        assert "HOLDING: bob looks at p99" in str(app.query_one(HeaderBar).render())
        events = "\n".join(str(line) for line in app.query_one("#events", Log).lines)
        assert "rollout holding phase 1/3" in events  # the transition, in the event pane too
        assert "(by bob@10.0.0.6)" in events
