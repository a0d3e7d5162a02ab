"""The whole engine and autopilot while every kind of source misbehaves: each of http, redis,
postgres and prometheus sits behind a `BadServer` in front of its real server, which turns
refused, silent, garbage-speaking, truncating, HTML-serving or slow beyond the timeout.

Judged on the engine's own poll counts, not on wall time: each source is reported down within
three polls of the fault (plus the one in flight when it began); while it is down every gate
on its metrics is UNKNOWN (never PASS, never FAIL) and the autopilot never arms; the first
poll that starts after the server's return reads it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import Gauge

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import Engine, make_source, store_for
from cockpit.core.lag import LagMonitor
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import Operator
from cockpit.core.plan import SourceSpec
from cockpit.core.rollout_events import Advance
from cockpit.core.rollout_model import Status
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.http import HttpSource
from cockpit.core.sources.schedule import SourceRunner
from cockpit.core.verdict import Verdict
from cockpit.core.watch import Watch
from tests.servers.bad_servers import BadServer
from tests.servers.http_server import HttpServerControl
from tests.servers.postgres_server import PgDatabase
from tests.servers.prometheus_server import Exporter
from tests.servers.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SOURCES = ("farms", "cache", "db", "prom")
DOWN_WITHIN = 3  # polls after the one in flight when the fault began
SLOW_S = 3.0  # what `slow` holds each answer for: beyond every timeout below

PLAN = """
[rollout]
name = "garbage"
state = "state/state.toml"
audit = "state/audit.jsonl"

[sources.farms]
kind = "http"
url = "{farms}/health"
every = "300ms"
timeout = "250ms"

[sources.cache]
kind = "redis"
url = "{cache}/0"
every = "300ms"
timeout = "250ms"

[sources.db]
kind = "postgres"
dsn = "{db}"
every = "300ms"
timeout = "600ms"

[sources.prom]
kind = "prometheus"
scrape = "{prom}/metrics"
metrics = {{ queue = "queue_depth" }}
every = "300ms"
timeout = "250ms"

# Rules a missing value would break if it were ever read as 0 or carried forward: each
# holds on real data, and each must turn UNKNOWN while its source is down.
[[phase]]
name = "Shadow"
traffic = 10
success = ["farms.samples >= 1", "cache.memory_bytes >= 1", "db.max_connections >= 1",
           "prom.queue >= 1"]
failure = ["farms.samples < 1", "cache.clients < 1", "db.max_connections < 1", "prom.queue < 1"]

[[rollback]]
name = "flag"
run = [["true"]]

[auto_rollback]
when = ["farms.samples < 1", "cache.memory_bytes < 1", "db.max_connections < 1",
        "prom.queue < 1"]
method = "flag"
grace = "1s"
on_unknown = "page"
unknown_for = "1h"
"""


@dataclass
class Polled:
    """One poll as the engine recorded it: the source's own count and whether it read."""

    index: int
    ok: bool


@dataclass
class Rig:
    engine: Engine
    watch: Watch
    proxies: dict[str, BadServer]
    polls: dict[str, list[Polled]] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def count(self, source: str) -> int:
        return self.engine.runners[source].polls

    def up(self, source: str) -> bool | None:
        return self.engine.store.source(source).up

    def verdicts(self, source: str) -> list[Verdict]:
        gates = self.watch.last.gates if self.watch.last is not None else ()
        return [g.verdict for g in gates if g.rule.metric.startswith(f"{source}.")]

    def set_mode(self, mode: str, sources: tuple[str, ...] = SOURCES) -> dict[str, int]:
        """Switch the proxies; returns each source's poll count at the switch."""
        at = {name: self.count(name) for name in sources}
        for name in sources:
            self.proxies[name].set_mode(mode, delay_s=SLOW_S)
        return at

    async def until(self, what: str, check: Callable[[], bool], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"not within {within}s: {what}; polls {self.polls}")
            await asyncio.sleep(0.02)

    def first_down(self, source: str, after: int) -> int | None:
        return next((p.index for p in self.polls[source] if p.index > after and not p.ok), None)

    def judge(self) -> None:
        """Each tick: what a down source shows must be UNKNOWN; the autopilot must not arm."""
        snapshot = self.watch.tick()
        for name in SOURCES:
            if self.up(name) is not False:
                continue
            for gate in snapshot.gates:
                metric = gate.rule.metric
                if metric.startswith(f"{name}.") and gate.verdict is not Verdict.UNKNOWN:
                    self.violations.append(f"{name} down but {gate.rule.text} {gate.verdict}")
        self.violations += [line for line in self.said if "AUTO-ROLLBACK" in line]
        self.said.clear()


@pytest.fixture
def proxies(
    http_server: HttpServerControl,
    redis_server: RedisServer,
    pg_database: PgDatabase,
    prom_exporter: Exporter,
) -> Iterator[dict[str, BadServer]]:
    Gauge("queue_depth", "jobs waiting", registry=prom_exporter.registry).set(5)
    upstreams = {
        "farms": http_server.port,
        "cache": redis_server.port,
        "db": pg_database.server.port,
        "prom": prom_exporter.port,
    }
    with contextlib.ExitStack() as stack:
        made = {}
        for name, port in upstreams.items():
            made[name] = stack.enter_context(BadServer(port, mode="pass"))
        yield made


@pytest.fixture
async def rig(
    tmp_path: Path, proxies: dict[str, BadServer], pg_database: PgDatabase
) -> AsyncIterator[Rig]:
    config = tmp_path / "cockpit.toml"
    db = pg_database.server.dsn_for(pg_database.name, port=str(proxies["db"].port))
    config.write_text(
        PLAN.format(
            farms=proxies["farms"].url(),
            cache=proxies["cache"].url("redis"),
            db=db,
            prom=proxies["prom"].url(),
        )
    )
    plan = load_plan(config, {})
    engine = Engine(plan, store_for(plan))
    cockpit = Cockpit(plan=plan, operator=Operator("tester"), metrics=engine.store)
    cockpit.apply(cockpit.store.load(), Advance(by="tester", force=True, reason="go"))
    rig = Rig(engine, Watch(cockpit, say=lambda line: rig.said.append(line)), proxies)
    for name, runner in engine.runners.items():
        rig.polls[name] = []
        runner.on_result = _logged(rig, name, runner.on_result)
    watching = asyncio.create_task(engine.watch())

    async def judging() -> None:
        while True:
            rig.judge()
            await asyncio.sleep(0.05)

    judge = asyncio.create_task(judging())
    try:
        for name in SOURCES:
            await rig.until(f"{name} up", lambda n=name: rig.up(n) is True)
        await rig.until(
            "gates judged", lambda: all(Verdict.PASS in rig.verdicts(n) for n in SOURCES)
        )
        yield rig
        assert not watching.done(), "the engine stopped"
        assert not judge.done(), "judging the gates raised"
    finally:
        for task in (judge, watching):
            task.cancel()
        await asyncio.gather(judge, watching, return_exceptions=True)
        rig.watch.close()
    state = cockpit.store.load().state
    assert state.status is Status.RUNNING  # never rolled back, never held
    events = [entry["event"] for entry in cockpit.audit.read()]
    assert not [e for e in events if e.startswith("auto_rollback")], events


def _logged(
    rig: Rig, name: str, inner: Callable[[str, PollResult], None] | None
) -> Callable[[str, PollResult], None]:
    def hook(source: str, result: PollResult) -> None:
        probe = rig.engine.sources[name]
        failing = isinstance(probe, HttpSource) and probe.failures_in_a_row > 0
        ok = isinstance(result, Reading) and not failing
        rig.polls[name].append(Polled(rig.engine.runners[name].polls, ok))
        if inner is not None:
            inner(source, result)

    return hook


# What each kind makes of each fault: a health probe judges statuses, so an HTML page with
# 200 is a healthy answer for http; for every other kind it is not their protocol.
FAULTS = {
    "refuse": SOURCES,
    "silent": SOURCES,
    "garbage": SOURCES,
    "truncated": SOURCES,
    "wrong_type": ("cache", "db", "prom"),
    "slow": SOURCES,
}


@pytest.mark.parametrize("mode", list(FAULTS))
async def test_fault_reported_down_never_judged_then_recovered(rig: Rig, mode: str) -> None:
    broken = FAULTS[mode]
    healthy = [name for name in SOURCES if name not in broken]
    began = rig.set_mode(mode)
    await rig.until("down", lambda: all(rig.up(n) is False for n in broken))
    for name in broken:
        down_at = rig.first_down(name, began[name])
        assert down_at is not None
        # the poll in flight at the switch, then at most DOWN_WITHIN more
        assert down_at - began[name] <= 1 + DOWN_WITHIN, (name, began[name], rig.polls[name])
        assert rig.engine.store.source(name).error
    # Stay broken for one more poll each: the gates stay UNKNOWN all along (judge() checks).
    more = {name: rig.count(name) + 1 for name in SOURCES}
    await rig.until("one more poll", lambda: all(rig.count(n) >= more[n] for n in SOURCES))
    for name in broken:
        assert set(rig.verdicts(name)) == {Verdict.UNKNOWN}, name
    for name in healthy:
        assert rig.up(name) is True
        assert set(rig.verdicts(name)) == {Verdict.PASS}, name

    back = rig.set_mode("pass")
    # The poll in flight at the return may still fail; the next one must read again.
    await rig.until("back", lambda: all(rig.count(n) >= back[n] + 2 for n in SOURCES))
    for name in SOURCES:
        after = [p for p in rig.polls[name] if p.index >= back[name] + 2]
        assert after, name
        assert after[0].ok, (name, back[name], rig.polls[name])
    await rig.until("judged again", lambda: all(Verdict.PASS in rig.verdicts(n) for n in SOURCES))
    assert rig.violations == []


# -- each kind, polled on its own against a server that is not what it should be ------------

KINDS: dict[str, Callable[[BadServer], dict[str, object]]] = {
    "http": lambda bad: {"kind": "http", "url": bad.url(path="/health")},
    "redis": lambda bad: {"kind": "redis", "url": bad.url("redis", "/0")},
    "upstash": lambda bad: {"kind": "redis", "url": bad.url(), "token": "t0ken"},
    "postgres": lambda bad: {
        "kind": "postgres",
        "dsn": f"host=127.0.0.1 port={bad.port} dbname=x user=postgres",
    },
    "scrape": lambda bad: {
        "kind": "prometheus",
        "scrape": bad.url(path="/metrics"),
        "metrics": {"queue": "queue_depth"},
    },
    "server": lambda bad: {
        "kind": "prometheus",
        "server": bad.url(),
        "queries": {"queue": "sum(queue_depth)"},
    },
}


async def poll_thrice(settings: dict[str, object]) -> PollResult:
    """The third poll's result through the scheduler (http needs three failures to be down)."""
    kind = str(settings.pop("kind"))
    spec = SourceSpec(name="s", kind=kind, every_s=0.2, timeout_s=0.2, settings=settings)
    source = make_source(spec, LagMonitor())
    runner = SourceRunner(source, MetricStore())
    try:
        results = [await runner.poll_once(time.perf_counter()) for _ in range(3)]
    finally:
        await source.close()
    return results[-1]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("mode", ["silent", "garbage", "truncated", "wrong_type", "refuse"])
async def test_each_kind_reads_a_bad_server_as_down(kind: str, mode: str) -> None:
    with BadServer(mode=mode) as bad:
        result = await poll_thrice(KINDS[kind](bad))
    if kind == "http" and mode == "wrong_type":  # a 200 is a healthy probe, whatever its body
        assert isinstance(result, Reading)
        assert result.values["error_rate"] == 0.0
        return
    assert isinstance(result, SourceDown), result
    assert result.error
    assert len(result.error.splitlines()) == 1


@pytest.mark.parametrize(
    "reply", [b"+OK\r\n", b"+OK POP3 server ready\r\n", b"$2\r\nhi\r\n", b"-ERR no\r\n"]
)
async def test_redis_url_at_a_server_that_is_not_redis(reply: bytes) -> None:
    """Well-formed RESP is not Redis: an INFO without Redis' fields is no reading."""
    with BadServer(mode="garbage") as bad:
        bad.garbage = reply
        result = await poll_thrice(KINDS["redis"](bad))
    assert isinstance(result, SourceDown), result


@pytest.mark.parametrize("body", [b"OK\n", b'{"status": "ok"}\n', b"Hello world\n"])
async def test_a_metrics_url_that_answers_another_page_is_down(body: bytes) -> None:
    """A health page or JSON at the scrape URL (200, text/plain) is no page of metrics."""
    with BadServer(mode="garbage") as bad:
        bad.garbage = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        bad.garbage += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        result = await poll_thrice(KINDS["scrape"](bad))
    assert isinstance(result, SourceDown), result
    assert "not the Prometheus text format" in result.error
