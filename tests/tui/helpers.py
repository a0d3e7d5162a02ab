"""A real plan (the bundled cockpit.toml, with harmless stand-ins for its commands) and a
fake snapshot feed: the app under test gets real Snapshots, no engine thread."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.engine_thread import series_for
from cockpit.core.metrics.store import SourceStatus
from cockpit.core.operator import Operator
from cockpit.tui.app import CockpitApp
from cockpit.tui.messages import SnapshotReady

BUNDLED = Path(__file__).resolve().parents[2] / "cockpit.toml"
PASS = f'["{sys.executable}", "-c", "pass"]'


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_plan(tmp_path: Path) -> Path:
    """The bundled plan with every command a `python -c pass` and no verify URLs."""
    text = BUNDLED.read_text()
    text = text.replace(
        'run = ["vercel", "env", "add", "PHASE_3_ROLLOUT_PERCENTAGE", "production", "--force"]',
        f"run = {PASS}",
    )
    text = text.replace('then = [["vercel", "--prod"]]', "then = []")
    text = text.replace('run = [["vercel", "rollback", "--yes"]]', f"run = [{PASS}]")
    text = text.replace('verify = "${APP_URL:-http://127.0.0.1:8000}/api/health"\n', "")
    assert '"vercel"' not in text.split("\n[traffic]\n")[1].split("\n[[rollback]]\n")[0]
    path = tmp_path / "cockpit.toml"
    path.write_text(text)
    return path


def environ(port: int) -> dict[str, str]:
    return {
        "APP_URL": f"http://127.0.0.1:{port}",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/postgres",
    }


def make_cockpit(tmp_path: Path) -> Cockpit:
    plan = load_plan(write_plan(tmp_path), environ(closed_port()))
    return Cockpit(plan=plan, operator=Operator("alice", "10.0.0.5"), metrics=store_for(plan))


def fill(cockpit: Cockpit, *, p95: float = 150.0, error_rate: float = 0.0) -> None:
    """Healthy-looking, fresh values for every source (HTTP, cache, DB) and the pooled rows."""
    store, now = cockpit.metrics, time.time()
    for name in ("farms", "farm", "search", "cache", "db"):
        store.set_source(name, SourceStatus(up=True, last_ok=now, last_poll=now))
    for i in range(30):
        t = now - 29 + i
        for name in ("farms", "farm", "search", "http"):
            store.record(f"{name}.p50", t, p95 / 2)
            store.record(f"{name}.p95", t, p95 + i)
            store.record(f"{name}.p99", t, p95 * 2)
            store.record(f"{name}.error_rate", t, error_rate)
        store.record("http.rate_4xx", t, 0.01)
        store.record("cache.hit_rate", t, 0.6)
        store.record("cache.up", t, 1.0)
        store.record("db.up", t, 1.0)
        store.record("db.pool_used", t, 0.25)


def feed(app: CockpitApp) -> None:
    """One snapshot of the cockpit's current state and store, as the engine would send it."""
    snapshot = app.cockpit.snapshot()
    app.post_message(SnapshotReady(snapshot, series_for(snapshot, app.cockpit.metrics), app.armed))


def screen_text(app: CockpitApp) -> str:
    """Every visible Static's and Log's text, joined (what a person can read)."""
    from textual.widgets import Log, Static

    parts = [str(w.render()) for w in app.screen.query(Static) if w.display]
    parts += ["\n".join(w.lines) for w in app.query(Log)]
    return "\n".join(parts)
