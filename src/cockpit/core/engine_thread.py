"""The engine in its own thread (own event loop) for the full-screen UI, and the operator
commands the UI sends back, as plain functions returning one-line outcomes.

No UI imports here: the UI hands in callbacks. The metric store belongs to the engine's
thread, so commands that judge the gates run there (`EngineThread.call`); the commands'
actions (traffic and rollback steps) then run in a worker thread of the caller's choosing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from cockpit.core.autopilot import Armed
from cockpit.core.baseline import capture_values
from cockpit.core.control import Cockpit, Refused
from cockpit.core.durations import format_duration
from cockpit.core.engine import Engine
from cockpit.core.gates import gate_blockers
from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.rollout_events import (
    Action,
    Advance,
    CancelAuto,
    CaptureBaseline,
    Check,
    Event,
    Hold,
    Resume,
    Rollback,
    Uncheck,
)
from cockpit.core.snapshot import Snapshot
from cockpit.core.state import StateChanged
from cockpit.core.watch import Watch

if TYPE_CHECKING:  # psycopg is imported only by plans with a postgres source
    from cockpit.core.sources.postgres_slowest import Slowest

T = TypeVar("T")
Series = Mapping[str, Sequence[float]]
SPARK_FIELDS = ("p95", "hit_rate", "error_rate", "rate_4xx", "queries_per_min")
SPARK_POINTS = 60
BASELINE_WINDOW_S = 15 * 60.0


def series_for(snapshot: Snapshot, store: MetricStore, points: int = SPARK_POINTS) -> Series:
    """The last `points` known values of the metrics the UI draws sparklines for."""
    found: dict[str, tuple[float, ...]] = {}
    for name in snapshot.plan.catalog.names():
        if name.rsplit(".", 1)[-1] not in SPARK_FIELDS:
            continue
        found[name] = tuple(store.last_values(name, points))
    return found


class EngineThread:
    """Runs `Engine.watch` with a `Watch` tick in a daemon thread until `stop()`."""

    def __init__(
        self,
        cockpit: Cockpit,
        *,
        on_snapshot: Callable[[Snapshot, Series], None],
        say: Callable[[str], None],
        read_only: bool = False,
    ) -> None:
        self.cockpit = cockpit
        self.on_snapshot = on_snapshot
        self.watch = Watch(cockpit, say, read_only=read_only)
        self.started_at = cockpit.clock()
        self.engine: Engine | None = None  # the running Engine: touch it in its thread only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="cockpit-engine", daemon=True)

    @property
    def armed(self) -> Armed | None:
        """The armed automatic rollback, if any (an immutable value, safe to read anywhere)."""
        return self.watch.autopilot.armed

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._watch())
            self._ready.set()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            if self.watch.acting is not None:  # never abandon a rollback half-way
                loop.run_until_complete(asyncio.gather(self.watch.acting, return_exceptions=True))
            self.watch.close()  # the metric history's unfinished 10 s bucket
            loop.close()

    async def _watch(self) -> None:
        engine = Engine(self.cockpit.plan, self.cockpit.metrics, clock=self.cockpit.clock)
        self.engine = engine

        def on_tick(store: MetricStore, *_: object) -> None:
            try:
                snapshot = self.watch.tick()
            except Exception as exc:  # e.g. an unreadable state file: say so, keep watching
                self.watch.say(f"tick failed: {type(exc).__name__}: {exc}")
                return
            self.on_snapshot(snapshot, series_for(snapshot, store))

        on_tick(self.cockpit.metrics)  # something to show before the first second passes
        await engine.watch(None, on_tick)

    def call(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run `fn` in the engine's thread (where the metric store lives)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            future.set_exception(Refused("the engine is not running"))
            return future

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop)

    def slowest(self) -> concurrent.futures.Future[tuple[SlowReport, ...]]:
        """Each postgres source's slowest statements, read in the engine's thread."""
        return self.call(lambda: slowest_queries(self.engine))

    def stop(self, timeout: float = 30.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive():
            self._thread.join(timeout)


# -- what the UI asks for on demand ------------------------------------------------------------


@dataclass(frozen=True)
class SlowReport:
    """One postgres source's slowest statements, with its health, as of `now`."""

    source: str
    now: float
    status: SourceStatus
    slowest: Slowest
    stale_after_s: float
    slow_query_s: float


def slowest_queries(engine: Engine | None) -> tuple[SlowReport, ...]:
    """What each postgres source of the running engine last ranked (empty: none in the plan).

    Run it in the engine's thread (`EngineThread.slowest`): the sources and the store live
    there. What it returns is immutable."""
    if engine is None:
        raise Refused("the engine is starting: ask again in a moment")
    names = [name for name, spec in engine.plan.sources.items() if spec.kind == "postgres"]
    if not names:
        return ()
    from cockpit.core.sources.postgres import PostgresSource  # psycopg only when needed

    now = engine.clock()
    reports = []
    for name in names:
        source = engine.sources[name]
        if isinstance(source, PostgresSource):
            status = engine.store.source(name)
            spec = source.spec
            report = SlowReport(
                name, now, status, source.slowest, spec.stale_after_s, source.slow_query_s
            )
            reports.append(report)
    return tuple(reports)


# -- operator commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a command did, for people: `ok`, one line, details, and actions left to run."""

    ok: bool
    message: str
    details: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()


def _apply(cockpit: Cockpit, event: Event, done: str, snapshot: Snapshot | None = None) -> Outcome:
    seen = cockpit.load()
    gates = snapshot.gates if snapshot is not None else ()
    try:
        applied = cockpit.apply(seen, event, gates)
    except (Refused, StateChanged) as exc:
        return Outcome(False, str(exc))
    return Outcome(True, done, actions=applied.actions)


def advance(cockpit: Cockpit, *, force: bool = False, reason: str = "") -> Outcome:
    """Advance when the gates allow it, or with `force` and a reason; refuses with blockers."""
    seen = cockpit.load()
    snapshot = cockpit.snapshot(seen)
    if snapshot.blockers and not force:
        return Outcome(False, "advance refused: gates not met", snapshot.blockers)
    if force and not reason.strip():
        return Outcome(False, "a forced advance needs a reason")
    event = Advance(
        by=str(cockpit.operator),
        gate_blockers=tuple(gate_blockers(list(snapshot.gates))),
        force=force,
        reason=reason,
    )
    target = cockpit.plan.phase(seen.state.phase + 1)
    goal = f"phase {seen.state.phase + 1} {target.name}" if target else "complete"
    return _apply(cockpit, event, f"advanced to {goal}", snapshot)


def advance_preview(cockpit: Cockpit) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(goal, blockers, steps that would run) for an advance now."""
    from cockpit.core.actions import traffic_steps

    seen = cockpit.load()
    snapshot = cockpit.snapshot(seen)
    phase = seen.state.phase
    target = cockpit.plan.phase(phase + 1)
    goal = f"phase {phase + 1} {target.name} ({target.traffic}%)" if target else "complete"
    steps: tuple[str, ...] = ()
    if target is not None:
        found = traffic_steps(cockpit.plan, target.traffic, phase + 1)
        steps = tuple(s.describe(cockpit.plan.secrets) for s in found)
    return goal, snapshot.blockers, steps


def rollback_preview(cockpit: Cockpit, method: str) -> tuple[str, ...]:
    from cockpit.core.actions import rollback_steps

    phase = cockpit.store.load().state.phase
    steps = rollback_steps(cockpit.plan, method, phase)
    return tuple(s.describe(cockpit.plan.secrets) for s in steps)


def hold(cockpit: Cockpit, reason: str) -> Outcome:
    return _apply(cockpit, Hold(by=str(cockpit.operator), reason=reason), f"held: {reason}")


def resume(cockpit: Cockpit, reason: str = "") -> Outcome:
    return _apply(cockpit, Resume(by=str(cockpit.operator), reason=reason), "resumed")


def toggle_check(cockpit: Cockpit, item: str) -> Outcome:
    """Tick `item` of the current checklist, or untick it when it is ticked."""
    state = cockpit.store.load().state
    key, _ = cockpit.machine.checklist(state)
    by = str(cockpit.operator)
    if item in state.ticks.get(key, {}):
        return _apply(cockpit, Uncheck(by=by, item=item), f"unticked: {item}")
    return _apply(cockpit, Check(by=by, item=item), f"ticked: {item}")


def rollback(cockpit: Cockpit, method: str, reason: str = "") -> Outcome:
    if cockpit.plan.rollback(method) is None:
        return Outcome(False, f"no rollback method '{method}'")
    seen = cockpit.load()
    snapshot = cockpit.snapshot(seen)
    event = Rollback(by=str(cockpit.operator), method=method, reason=reason)
    return _apply(cockpit, event, f"rolling back by '{method}'", snapshot)


def cancel_auto(cockpit: Cockpit, rules: Sequence[str], reason: str) -> Outcome:
    auto = cockpit.plan.auto_rollback
    if auto is None:
        return Outcome(False, "the plan has no [auto_rollback]")
    if not rules:
        return Outcome(False, "no automatic rollback is armed")
    until = cockpit.clock() + auto.cooldown_s
    event = CancelAuto(by=str(cockpit.operator), rules=tuple(rules), reason=reason, until=until)
    quiet = format_duration(auto.cooldown_s)
    return _apply(cockpit, event, f"automatic rollback cancelled for {quiet}")


def capture_baseline(cockpit: Cockpit, since: float) -> Outcome:
    """Keep the medians of what the engine measured since `since` (at most 15m) as baseline."""
    now = cockpit.clock()
    start = max(since, now - BASELINE_WINDOW_S)
    values = capture_values(cockpit.plan, cockpit.metrics, start, now)
    window = format_duration(now - start)
    if not values:
        return Outcome(False, f"nothing measured in the last {window}: no baseline captured")
    event = CaptureBaseline(by=str(cockpit.operator), values=values, window_s=now - start)
    return _apply(cockpit, event, f"baseline captured over {window} ({len(values)} metrics)")


def run_actions(
    cockpit: Cockpit,
    actions: Sequence[Action],
    *,
    say: Callable[[str], None],
    confirm_manual: Callable[[str], bool],
) -> bool:
    """Run the actions an accepted command asked for (blocking); True when all succeeded."""
    secrets = cockpit.plan.secrets
    ok = True
    for action in actions:
        results = cockpit.run_action(
            action,
            confirm_manual=confirm_manual,
            on_step=lambda step, result: say(f"  {step.describe(secrets)}: {result.summary()}"),
        )
        ok = ok and all(r.ok for r in results)
    state = cockpit.store.load().state
    say(f"{'done' if ok else 'FAILED'}: now {state.status.value}, phase {state.phase}")
    return ok
