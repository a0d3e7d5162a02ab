"""The demo for real, judged through the cockpit's own sources: the demo platform (its API,
load, a real redis-server and PostgreSQL), the demo plan, and the engine with its Watch in a
thread as the full-screen cockpit runs them. Advancing warms the cache and unloads the
database; each fault gets the reaction the plan prescribes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cockpit.core import engine_thread as commands
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.engine_thread import EngineThread, Series
from cockpit.core.gates import GateKind
from cockpit.core.operator import Operator
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.snapshot import Snapshot
from cockpit.core.verdict import Verdict
from cockpit.demo.platform import DemoOptions, DemoPlatform
from cockpit.demo.session import prepare

pytestmark = pytest.mark.integration
T = TypeVar("T")
SLACK_S = 30.0  # polls, the measurement window filling, a busy shared machine


@pytest.fixture(scope="module")
def platform() -> Iterator[DemoPlatform]:
    with DemoPlatform(DemoOptions(handle_signals=False)) as demo:
        assert not demo.in_process, demo.notice
        yield demo


@dataclass
class Watched:
    """A cockpit on a fresh demo state, its engine running; helpers read in its thread."""

    cockpit: Cockpit
    platform: DemoPlatform
    said: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    engine: EngineThread | None = None
    started: float = field(default_factory=time.monotonic)

    def on_snapshot(self, snapshot: Snapshot, series: Series) -> None:
        self.snapshot = snapshot

    def call(self, fn: Callable[[], T]) -> T:
        assert self.engine is not None
        return self.engine.call(fn).result(timeout=30)

    def value(self, metric: str) -> float | None:
        point = self.call(lambda: self.cockpit.metrics.latest(metric))
        return None if point is None else point.value

    def verdict(self, kind: GateKind, rule: str) -> Verdict | None:
        """The rule's verdict in the newest snapshot (None: not judged in this phase yet)."""
        gates = self.snapshot.gates if self.snapshot is not None else ()
        found = [g for g in gates if g.kind is kind and g.rule.text == rule]
        return found[0].verdict if found else None

    def state(self) -> RolloutState:
        return self.cockpit.store.load().state

    def advance(self) -> None:
        c = self.cockpit
        outcome = self.call(lambda: commands.advance(c, force=True, reason="demo test"))
        assert outcome.ok, outcome.message
        ok = commands.run_actions(
            c, outcome.actions, say=self.said.append, confirm_manual=lambda text: False
        )
        assert ok, self.said[-5:]

    def until(self, what: str, check: Callable[[], bool], within_s: float) -> float:
        """Poll until `check()`; returns when (monotonic). A generous deadline, no timing."""
        deadline = time.monotonic() + within_s
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within_s:.0f}s: {what}; said: {self.said[-8:]}")
            time.sleep(0.5)
        return time.monotonic()


@pytest.fixture
def watched(platform: DemoPlatform, tmp_path: Path) -> Iterator[Watched]:
    platform.faults.clear()
    platform.set_rollout(0)
    plan = prepare(tmp_path, platform)
    cockpit = Cockpit(plan=plan, operator=Operator("tester"), metrics=store_for(plan))
    w = Watched(cockpit, platform)
    w.engine = EngineThread(cockpit, on_snapshot=w.on_snapshot, say=w.said.append)
    w.engine.start()
    try:
        yield w
    finally:
        platform.faults.clear()  # before stopping: a rollback verifying /api/health ends
        w.engine.stop()
        w.engine.watch.close()
        platform.set_rollout(0)


def test_advancing_warms_the_cache_and_unloads_the_database(watched: Watched) -> None:
    w = watched
    w.until("queries per minute at 0%", lambda: w.value("db.queries_per_min") is not None, 20)
    time.sleep(max(0.0, w.started + 14 - time.monotonic()))  # a full 12 s window at 0%
    before_qpm = w.value("db.queries_per_min")
    before_hit = w.value("cache.hit_rate") or 0.0  # nothing reads the cache at 0%
    assert before_qpm is not None
    assert before_qpm > 1000  # every request of the load is a query

    def hit_rate() -> float:
        return w.value("cache.hit_rate") or 0.0

    def qpm() -> float:
        return w.value("db.queries_per_min") or before_qpm

    w.advance()
    assert (w.state().phase, w.platform.rollout.percent) == (1, 10)
    w.until("phase 1: hit rate up", lambda: hit_rate() > before_hit + 0.1, 30)
    w.until("phase 1: fewer queries", lambda: qpm() < 0.97 * before_qpm, 30)

    w.advance()
    assert (w.state().phase, w.platform.rollout.percent) == (2, 50)
    w.until("phase 2: hit rate up", lambda: hit_rate() > before_hit + 0.3, 30)
    w.until("phase 2: far fewer queries", lambda: qpm() < 0.75 * before_qpm, 30)


def test_error_spike_rolls_back_by_the_flag_within_window_plus_grace(watched: Watched) -> None:
    w = watched
    auto = w.cockpit.plan.auto_rollback
    assert auto is not None
    rule = next(r for r in auto.when if r.metric == "http.error_rate")
    assert rule.for_s is not None
    w.advance()
    assert w.platform.rollout.percent == 10

    faulted = time.monotonic()
    w.platform.faults.set("errors", True)
    rolled_back = w.until(
        f"automatic rollback after {rule.text} (grace {auto.grace_s:g}s)",
        lambda: w.state().status is Status.ROLLED_BACK,
        rule.for_s + auto.grace_s + SLACK_S,
    )
    assert rolled_back - faulted >= rule.for_s + auto.grace_s - 1  # sustained, then counted down

    # The flag method really called the admin endpoint: the platform is back at 0%.
    assert w.platform.rollout.percent == 0
    app = w.platform.urls["APP_URL"]
    assert httpx.get(f"{app}/admin/rollout", timeout=5).json() == {"percent": 0}

    entries = w.cockpit.audit.read()
    armed = next(e for e in entries if e["event"] == "auto_rollback.armed")
    fired = next(e for e in entries if e["event"] == "auto_rollback")
    assert armed["reason"].startswith(rule.text)
    assert fired["method"] == "flag"
    assert _seconds(armed, fired) >= auto.grace_s - 0.5
    assert any("POST" in line and "/admin/rollout" in line for line in w.said)
    assert any(line.startswith("AUTO-ROLLBACK by 'flag'") for line in w.said)


def test_slow_database_fails_its_criterion_without_rolling_back(watched: Watched) -> None:
    w = watched
    w.advance()
    phase = w.cockpit.plan.phases[0]
    rule = next(r for r in phase.failure if r.metric == "db.mean_query_ms")
    assert rule.for_s is not None
    w.platform.faults.set("slow-db", True)
    w.until(
        f"failure criterion {rule.text} fails",
        lambda: w.verdict(GateKind.FAILURE, rule.text) is Verdict.FAIL,
        rule.for_s + SLACK_S,
    )
    # A failure criterion blocks advancing and tells people; only [auto_rollback] acts.
    assert w.state().status is Status.RUNNING
    assert w.platform.rollout.percent == 10
    assert not any(e["event"].startswith("auto_rollback") for e in w.cockpit.audit.read())
    assert w.snapshot is not None
    assert any(rule.text in blocker for blocker in w.snapshot.blockers)


def test_redis_down_fails_its_criteria_and_missing_data_stays_unknown(watched: Watched) -> None:
    w = watched
    w.advance()
    w.until("the cache read at phase 1", lambda: (w.value("cache.hit_rate") or 0) > 0, 30)
    faulted = time.monotonic()
    w.platform.faults.set("redis-down", True)

    w.until(
        "failure criterion cache.up == 0 fails",
        lambda: w.verdict(GateKind.FAILURE, "cache.up == 0") is Verdict.FAIL,
        15,
    )
    # Hit rate with Redis gone is not 0%: it is not known, so its rule never FAILs.
    hit_rule = next(
        r.text for r in w.cockpit.plan.phases[0].failure if r.metric == "cache.hit_rate"
    )
    w.until(
        f"{hit_rule} unknown",
        lambda: w.verdict(GateKind.FAILURE, hit_rule) is Verdict.UNKNOWN,
        15,
    )
    # The API falls back to the database: no errors, so the error trigger stays clear.
    error_rule = next(r.text for r in w.cockpit.plan.auto_rollback.when if "error" in r.text)  # type: ignore[union-attr]
    assert w.verdict(GateKind.AUTO_ROLLBACK, error_rule) is Verdict.PASS

    # The plan: "cache.up == 0 for 1m" (12 s here) -> automatic rollback by the flag.
    auto = w.cockpit.plan.auto_rollback
    assert auto is not None
    trigger = next(r for r in auto.when if r.metric == "cache.up")
    assert trigger.for_s is not None
    deadline = faulted + trigger.for_s + auto.grace_s + SLACK_S / 2
    while time.monotonic() < deadline and w.platform.rollout.percent != 0:
        assert w.verdict(GateKind.FAILURE, hit_rule) is not Verdict.FAIL
        time.sleep(0.5)
    reasons = [e.get("reason", "") for e in w.cockpit.audit.read()]
    assert not any(hit_rule in reason for reason in reasons)  # never acted on missing data
    assert w.platform.rollout.percent == 0, f"no automatic rollback; said: {w.said[-6:]}"
    fired = next(e for e in w.cockpit.audit.read() if e["event"] == "auto_rollback")
    assert fired["method"] == "flag"


def _seconds(first: dict[str, Any], second: dict[str, Any]) -> float:
    def at(entry: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))

    return (at(second) - at(first)).total_seconds()


def test_in_process_the_exporter_pages_feed_the_same_rules(tmp_path: Path) -> None:
    options = DemoOptions(handle_signals=False, in_process=True)
    with DemoPlatform(options) as platform:
        plan = prepare(tmp_path, platform)
        assert plan.sources["cache"].kind == "prometheus"
        cockpit = Cockpit(plan=plan, operator=Operator("tester"), metrics=store_for(plan))
        w = Watched(cockpit, platform)
        w.engine = EngineThread(cockpit, on_snapshot=w.on_snapshot, say=w.said.append)
        w.engine.start()
        try:
            w.until("queries per minute", lambda: (w.value("db.queries_per_min") or 0) > 1000, 20)
            w.advance()
            w.until("a cache hit rate", lambda: (w.value("cache.hit_rate") or 0) > 0, 30)
            assert w.value("db.mean_query_ms") is not None
            platform.faults.set("redis-down", True)
            w.until(
                "cache.up == 0 fails",
                lambda: w.verdict(GateKind.FAILURE, "cache.up == 0") is Verdict.FAIL,
                20,
            )
        finally:
            platform.faults.clear()
            w.engine.stop()
            w.engine.watch.close()


def test_report_of_a_recorded_demo_run_has_every_phase_and_the_rollback(
    watched: Watched, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cockpit.cli import main

    w = watched
    c = w.cockpit
    for _ in c.plan.phases:  # every phase, a few polls each
        w.advance()
        time.sleep(4)
    outcome = w.call(lambda: commands.rollback(c, "flag", "demo report test"))
    assert outcome.ok, outcome.message
    assert commands.run_actions(
        c, outcome.actions, say=w.said.append, confirm_manual=lambda text: False
    )
    assert w.state().status is Status.ROLLED_BACK
    assert w.engine is not None
    w.engine.stop()
    w.engine.watch.close()  # the history's last bucket
    plan = str(c.plan.config_path)
    capsys.readouterr()
    assert main(["report", "-c", plan]) == 0
    report = capsys.readouterr().out
    for phase in c.plan.phases:
        assert phase.name in report
    assert "### Rollback `flag`" in report
    assert "demo report test" in report
    page = tmp_path / "report.html"
    assert main(["report", "-c", plan, "--html", "-o", str(page)]) == 0
    html = page.read_text()
    assert "<svg" in html
    assert all(phase.name in html for phase in c.plan.phases)
