"""The logs source with real commands: counting, restarts with backoff, and no orphans."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.logs import LogsSource

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_source(
    script: str, *, clock: Callable[[], float] = time.time, window_s: float = 60.0, **kw: float
) -> LogsSource:
    settings = {
        "window_s": window_s,
        "command": (sys.executable, "-c", script),
        "error": "(?i)error",
        "warn": "(?i)warn",
    }
    spec = SourceSpec("logs", "logs", 1.0, 1.0, settings)
    backoff = (kw.pop("first_s", 1.0), kw.pop("cap_s", 20.0))
    return LogsSource(spec, clock=clock, backoff_s=backoff, **kw)


async def poll(source: LogsSource) -> PollResult:
    return await asyncio.wait_for(source.poll(time.perf_counter()), 2.0)


async def poll_until(
    source: LogsSource, done: Callable[[PollResult], bool], within_s: float = 5.0
) -> PollResult:
    deadline = time.monotonic() + within_s
    while True:
        result = await poll(source)
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that is not ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


FOLLOWER = """
import sys, time
for n in range(7):
    print(f"ERROR request {n} failed", flush=True)
for n in range(3):
    print(f"warning: slow query {n}", file=sys.stderr, flush=True)
for n in range(5):
    print(f"GET /health 200", flush=True)
time.sleep(60)
"""


async def test_counts_the_lines_of_a_real_command() -> None:
    clock = Clock()
    source = make_source(FOLLOWER, clock=clock)
    try:
        first = await poll(source)
        assert isinstance(first, Reading)
        assert first.values["up"] == 1.0
        assert first.values["errors_per_min"] is None
        assert first.reasons["errors_per_min"].startswith("counting: the command was read for 0s")
        counted = await poll_until(
            source, lambda r: isinstance(r, Reading) and len(r.details["lines"]) == 10
        )
        assert isinstance(counted, Reading)
        clock.now += 30  # half the window: 7 errors in 30 s of reading
        result = await poll(source)
    finally:
        await source.close()
    assert isinstance(result, Reading)
    assert result.values == {"errors_per_min": 14.0, "warns_per_min": 6.0, "up": 1.0}
    expected = [f"ERROR request {n} failed" for n in range(7)]
    assert result.details["lines"] == expected + [f"warning: slow query {n}" for n in range(3)]


RESTARTER = """
import pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
with starts.open("a") as log:
    log.write(f"{time.time()}\\n")
if len(starts.read_text().splitlines()) <= 4:
    print("error: upstream gone", flush=True)
    sys.exit(3)
print("warning: following", flush=True)
time.sleep(60)
"""


async def test_exited_command_is_down_then_restarted_with_backoff(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    settings = {
        "window_s": 60.0,
        "command": (sys.executable, "-c", RESTARTER, str(starts)),
        "error": "error",
        "warn": "warn",
    }
    spec = SourceSpec("logs", "logs", 1.0, 1.0, settings)
    source = LogsSource(spec, backoff_s=(0.2, 0.4))
    try:
        await poll(source)
        down = await poll_until(source, lambda r: isinstance(r, SourceDown))
        assert down == SourceDown("command exited with status 3: error: upstream gone")
        back = await poll_until(
            source, lambda r: isinstance(r, Reading) and len(r.details["lines"]) == 5
        )
        assert isinstance(back, Reading)
        assert back.values["up"] == 1.0
        assert back.details["lines"] == ["error: upstream gone"] * 4 + ["warning: following"]
    finally:
        await source.close()
    times = [float(line) for line in starts.read_text().splitlines()]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(gaps) == 4
    for gap, delay in zip(gaps, (0.2, 0.4, 0.4, 0.4), strict=True):  # 0.2, 0.4, capped
        assert delay <= gap < delay + 0.5  # uncapped, the last would be 1.6


CLINGY = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(f"error: child {child.pid} started", flush=True)
time.sleep(60)
"""


async def test_close_ends_the_whole_process_group() -> None:
    source = make_source(CLINGY, grace_s=0.3)
    pid = None
    try:
        await poll(source)
        pid = source.pid
        assert pid is not None
        await poll_until(source, lambda r: isinstance(r, Reading) and bool(r.details["lines"]))
        members = group_members(pid)
        assert len(members) == 2
        assert os.getpgid(pid) == pid  # its own group, not ours
    finally:
        started = time.monotonic()
        await source.close()
        closing_s = time.monotonic() - started
    assert 0.3 <= closing_s < 2.0  # SIGTERM ignored: SIGKILL after the grace
    assert not any(alive(member) for member in members)
    assert group_members(pid) == []
    assert source.pid is None
    assert await source.poll(0.0) == SourceDown("closed")
    await source.close()  # twice is fine


LEAVER = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(f"leaving {child.pid} behind", flush=True)
sys.exit(2)
"""


async def test_a_command_that_exits_takes_what_it_left_running_with_it() -> None:
    source = make_source(LEAVER, first_s=30.0)
    try:
        await poll(source)
        pid = source.pid
        assert pid is not None
        down = await poll_until(source, lambda r: isinstance(r, SourceDown), within_s=3.0)
        assert isinstance(down, SourceDown)
        assert down.error.startswith("command exited with status 2: leaving ")
        child = int(down.error.split()[-2])
        assert not alive(child)
        assert group_members(pid) == []
    finally:
        await source.close()


async def test_a_missing_command_is_down_with_the_reason() -> None:
    spec = SourceSpec("logs", "logs", 1.0, 1.0, {"command": ("cockpit-no-such-tool", "--follow")})
    source = LogsSource(spec)
    try:
        result = await poll(source)
    finally:
        await source.close()
    assert result == SourceDown("cannot run 'cockpit-no-such-tool': No such file or directory")


async def test_a_failing_reader_is_reported_and_the_command_started_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_source(FOLLOWER, grace_s=0.3)
    feed = source.counter.feed
    calls = {"n": 0}

    def fail_once(line: str, now: float) -> str | None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return feed(line, now)

    monkeypatch.setattr(source.counter, "feed", fail_once)
    try:
        await poll(source)
        first_pid = source.pid
        assert first_pid is not None
        failed = await poll_until(source, lambda r: isinstance(r, SourceDown))
        assert failed == SourceDown("log reader failed: RuntimeError: boom")
        assert not alive(first_pid)
        again = await poll(source)
        assert isinstance(again, Reading)
        assert source.pid not in (None, first_pid)
    finally:
        await source.close()
