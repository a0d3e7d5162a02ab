"""A sample moment of the bundled plan's rollout, fixed in time: the screen the README shows and
the snapshot tests compare.

Same input, same pixels: the clock stands still at `NOW`, every metric is recorded at fixed
times before it with fixed values, nothing is polled and no engine runs. It is for looking
at, not for acting: the plan claims to be `cockpit.toml` (its temporary copy's path would
differ on every run), so an acting key would check the wrong file.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from textual.pilot import Pilot

from cockpit.core.autopilot import Arm, Armed, AutoPilot
from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.engine_thread import series_for
from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.operator import Operator
from cockpit.core.plan import Plan
from cockpit.core.rollout_events import Advance, Check, Event
from cockpit.core.sources.postgres_queries import describe_connect_error
from cockpit.tui.app import CockpitApp
from cockpit.tui.messages import SnapshotReady

NOW = datetime(2026, 3, 12, 14, 30, 5, tzinfo=UTC).timestamp()
HOUR = 3600.0
HISTORY_S = 31 * 60.0  # past the longest `for` a gate of phase 2 looks back (30m)
OPERATOR = Operator("alice", "10.0.0.5")
LEAD = "bob@10.0.0.7"
Scene = Literal["healthy", "breaching", "db-down"]

# A fixed wiggle for the sparklines: integers, so no platform's float maths moves a bar.
WIGGLE = (0, 2, -1, 3, 1, -2, 4, 2, -3, 1, 5, 0, -1, 2, -2, 3)

# Healthy values in base units (ms, fractions, counts) and how far each one wiggles.
HTTP = {"farms": (62, 168, 240), "farm": (41, 121, 180), "search": (140, 310, 480)}
CACHE = {
    "hit_rate": (0.71, 0.004),
    "memory_used": (0.38, 0.0),
    "memory_bytes": (102e6, 0.0),
    "ops_per_sec": (1840, 15),
    "clients": (14, 0),
    "latency_ms": (0.7, 0.0),
    "evicted_per_min": (0, 0),
    "up": (1, 0),
}
DB = {
    "connections": (23, 0),
    "max_connections": (100, 0),
    "pool_used": (0.23, 0.0),
    "active": (6, 0),
    "idle": (17, 0),
    "idle_in_tx": (0, 0),
    "waiting": (0, 0),
    "slow_queries": (0, 0),
    "queries_per_min": (212, 4),
    "mean_query_ms": (4.2, 0.0),
    "up": (1, 0),
}
DB_ERROR = describe_connect_error(
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'
)
ERRORS_FROM = NOW - 6 * 60.0  # the breaching scene: 5xx at 2.4% since then
DB_DOWN_FROM = NOW - 40.0  # the db-down scene: no answer since then
ARMED_AT = NOW - 12.0


class StoppedClock:
    """Time stands still until the sample moves it, so history is written at chosen times."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Sample:
    cockpit: Cockpit
    armed: Armed | None = None

    def app(self, theme: str = "dark", **kwargs: Any) -> CockpitApp:
        """The cockpit on this sample without an engine; `environ={}` so NO_COLOR is ignored."""
        return CockpitApp(self.cockpit, engine=False, theme=theme, environ={}, **kwargs)

    def message(self) -> SnapshotReady:
        snapshot = self.cockpit.snapshot()
        return SnapshotReady(snapshot, series_for(snapshot, self.cockpit.metrics), self.armed)

    async def show(self, pilot: Pilot[Any]) -> None:
        """Hand the app the sample as the engine would, and let it draw."""
        pilot.app.post_message(self.message())
        await pilot.pause()


def build(plan_file: Path, folder: Path, scene: Scene = "healthy") -> Sample:
    """Phase 2/3 (Partial, 50%) for 26h of its 72h bake, two of its three checks ticked, and
    31 minutes of metrics: healthy, or with 5xx breaching (auto-rollback armed 12s ago), or
    with the database down for 40s. The plan is copied into `folder` (state and audit go there)
    and read with an empty environment, so every ${VAR} takes the plan's default."""
    config = folder / "cockpit.toml"
    shutil.copyfile(plan_file, config)
    plan = load_plan(config, {})
    clock = StoppedClock(NOW - 76 * HOUR)
    writer = Cockpit(plan=plan, operator=OPERATOR, metrics=store_for(plan), clock=clock)
    history: list[tuple[float, Event]] = [
        (NOW - 76 * HOUR, Advance(by=LEAD, force=True, reason="go/no-go signed off in #release")),
        (NOW - 26 * HOUR, Advance(by=LEAD, force=True, reason="phase 1 baked 50h, all green")),
        (NOW - 3 * HOUR, Check(by=LEAD, item="Redis memory usage stable")),
        (NOW - 41 * 60.0, Check(by=str(OPERATOR), item="No user complaints")),
    ]
    for at, event in history:
        clock.now = at
        writer.apply(writer.store.load(), event)
    store = writer.metrics
    armed = None
    if scene == "breaching":
        record(plan, store, NOW - HISTORY_S, ARMED_AT, scene)
        clock.now = ARMED_AT
        armed = arm(plan, writer)
        record(plan, store, ARMED_AT + 0.5, NOW, scene)
    else:
        record(plan, store, NOW - HISTORY_S, NOW, scene)
    clock.now = NOW
    shown = dataclasses.replace(plan, config_path=Path("cockpit.toml"))
    return Sample(Cockpit(plan=shown, operator=OPERATOR, metrics=store, clock=clock), armed)


def arm(plan: Plan, cockpit: Cockpit) -> Armed | None:
    """What the engine's autopilot arms on the gates as they are now."""
    snapshot = cockpit.snapshot()
    decisions = AutoPilot(plan).step(snapshot.state, snapshot.gates, snapshot.taken_at)
    return next((d.armed for d in decisions if isinstance(d, Arm)), None)


def record(plan: Plan, store: MetricStore, start: float, until: float, scene: Scene) -> None:
    """Every source's metrics at its own interval (on a grid from NOW) between the times."""
    for n, spec in enumerate(plan.sources.values()):
        for t, i in _grid(spec.every_s, start, until, shift=5 * n):  # sources differ a little
            if spec.kind == "http":
                _http(store, spec.name, t, i, scene)
            elif spec.kind == "redis":
                _fields(store, spec.name, CACHE, t, i)
            elif scene == "db-down" and t >= DB_DOWN_FROM:
                store.record(f"{spec.name}.up", t, 0.0)  # what a failed poll records
                before = store.source(spec.name)
                store.set_source(spec.name, SourceStatus(False, DB_ERROR, before.last_ok, t))
                continue
            else:
                _fields(store, spec.name, DB, t, i)
            store.set_source(spec.name, SourceStatus(True, None, t, t))
    pooled = min((s.every_s for s in plan.sources.values() if s.kind == "http"), default=1.0)
    for t, i in _grid(pooled, start, until):
        _http(store, "http", t, i, scene)
        store.record("cockpit.loop_lag_p99", t, 2.0)


def _grid(every: float, start: float, until: float, shift: int = 0) -> Iterator[tuple[float, int]]:
    """(time, wiggle index) every `every` seconds, on a grid that ends at NOW."""
    first = int((NOW - start) // every)
    for k in range(first, -1, -1):
        t = NOW - k * every
        if start <= t <= until:
            yield t, k + shift


def _wiggle(i: int) -> int:
    return WIGGLE[i % len(WIGGLE)]


def _fields(
    store: MetricStore, source: str, values: dict[str, tuple[float, float]], t: float, i: int
) -> None:
    for field, (value, step) in values.items():
        store.record(f"{source}.{field}", t, value + step * _wiggle(i))


def _http(store: MetricStore, name: str, t: float, i: int, scene: Scene) -> None:
    p50, p95, p99 = HTTP.get(name, (70, 236, 410))  # "http": the pooled rows
    w = _wiggle(i)
    breaching = scene == "breaching" and t >= ERRORS_FROM
    values = {
        "p50": p50 + w,
        "p95": p95 + 3 * w,
        "p99": p99 + 5 * w,
        "error_rate": 0.024 + 0.0005 * w if breaching else 0.0004 + 0.0001 * abs(w),
        "rate_4xx": 0.012 + 0.001 * abs(w),
        "rps": 90.0 if name == "http" else 30.0,
    }
    if name != "http":
        values |= {"mean": p50 * 1.3, "rate_limited": 0.0, "samples": 60.0, "up": 1.0}
    for field, value in values.items():
        store.record(f"{name}.{field}", t, value)
