"""`kind = "logs"`: follow a command's output and count error and warning lines per minute.

The command (an argv, never a shell line: `["vercel", "logs", "--prod", "--follow"]`) runs in
its own process group with stdin closed and stdout+stderr merged, started on the first poll
and read continuously by a background task. A line counts once: as an error when it matches
`error`, otherwise as a warning when it matches `warn` (colour codes are stripped first).
The last 200 matching lines go out in `details["lines"]`, and the newest 20 with the time they
were read and their kind in `details["recent"]` as `(t, "error" | "warn", text)` tuples (text
cut to 500 characters): the errors pane shows the newest of them.

`errors_per_min` / `warns_per_min` are the matching lines of the last `window` divided by the
time the command was actually being read in it; until that is at least half the window (just
started, or restarted after a gap) they are None, so a single early line is never blown up
into a rate.

When the command exits it is restarted with capped exponential backoff (1, 2, 4 ... 20 s),
and polls answer `SourceDown("command exited with status N: <its last line>")` until it runs
again. `close()` ends the whole process group (SIGTERM, SIGKILL after a short grace) and
waits for it: nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown

LINES_KEPT = 200
RECENT_KEPT = 20  # with their times, for the errors pane and `status --json`
RECENT_TEXT = 500  # characters: a pane shows one line of it, a reader a little more
MAX_LINE_BYTES = 64 * 1024  # longer lines are cut: one runaway line must not eat memory
BUCKETS_PER_WINDOW = 120  # counts are kept per 1/120 of the window: bounded memory
EXIT_CHECK_S = 0.1  # how soon an exit is noticed while something still holds the pipe
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def backoff_delay(restarts: int, first_s: float = 1.0, cap_s: float = 20.0) -> float:
    """Wait before restart number `restarts` (0-based): first_s, doubled each time, capped."""
    return min(first_s * 2.0 ** min(restarts, 30), cap_s)


def exit_message(status: int, last_line: str = "") -> str:
    """Why the command is not running, for a person."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        text = f"command was killed by {name}"
    elif status == 0:
        text = "command exited with status 0 (a log follower must keep running, e.g. --follow)"
    else:
        text = f"command exited with status {status}"
    return f"{text}: {last_line[:200]}" if last_line else text


@dataclass
class _Run:
    start: float
    end: float | None = None  # None while the command runs


class LineCounter:
    """Matching lines over a sliding window, and how long the command was read in it. Pure."""

    def __init__(self, error: str, warn: str, window_s: float, keep: int = LINES_KEPT) -> None:
        self.error = re.compile(error)
        self.warn = re.compile(warn)
        self.window_s = window_s
        self.lines: deque[str] = deque(maxlen=keep)
        self.recent: deque[tuple[float, str, str]] = deque(maxlen=RECENT_KEPT)
        self._width = window_s / BUCKETS_PER_WINDOW
        self._buckets: deque[list[int]] = deque()  # [bucket index, errors, warnings]
        self._runs: deque[_Run] = deque(maxlen=1000)

    def started(self, now: float) -> None:
        self.stopped(now)
        self._runs.append(_Run(now))

    def stopped(self, now: float) -> None:
        if self._runs and self._runs[-1].end is None:
            self._runs[-1].end = now

    def feed(self, line: str, now: float) -> str | None:
        """Count one line; 'error', 'warn', or None when it matches neither."""
        if self.error.search(line):
            kind, column = "error", 1
        elif self.warn.search(line):
            kind, column = "warn", 2
        else:
            return None
        self.lines.append(line)
        self.recent.append((now, kind, line[:RECENT_TEXT]))
        index = math.floor(now / self._width)
        if not self._buckets or self._buckets[-1][0] < index:
            self._buckets.append([index, 0, 0])
        self._buckets[-1][column] += 1  # a clock that steps back counts in the newest bucket
        self._trim(now)
        return kind

    def values(self, now: float) -> tuple[dict[str, float | None], dict[str, str]]:
        """errors_per_min and warns_per_min, or None with the reason."""
        self._trim(now)
        start = now - self.window_s
        covered = sum(
            max(0.0, min(now if run.end is None else run.end, now) - max(run.start, start))
            for run in self._runs
        )
        if covered < self.window_s / 2:
            reason = (
                f"counting: the command was read for {covered:.0f}s of the "
                f"{self.window_s:g}s window (rates need half of it)"
            )
            return dict.fromkeys(FIELDS, None), dict.fromkeys(FIELDS, reason)
        errors = sum(b[1] for b in self._buckets)
        warns = sum(b[2] for b in self._buckets)
        return {"errors_per_min": errors / covered * 60, "warns_per_min": warns / covered * 60}, {}

    def _trim(self, now: float) -> None:
        start = now - self.window_s
        oldest = math.floor(start / self._width)  # the bucket the window starts in stays
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()
        while self._runs and self._runs[0].end is not None and self._runs[0].end < start:
            self._runs.popleft()


FIELDS = ("errors_per_min", "warns_per_min")


async def read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    """Hand every line of `stream` to `on_line` until EOF (decoded, colour codes stripped)."""
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            on_line(_text(raw))
        if len(pending) > MAX_LINE_BYTES:
            on_line(_text(pending[:MAX_LINE_BYTES]))
            pending = b""
    if pending:
        on_line(_text(pending))


def _text(raw: bytes) -> str:
    return ANSI.sub("", raw[:MAX_LINE_BYTES].decode("utf-8", "replace")).rstrip("\r")


class LogsSource:
    """One `[sources.NAME]` of kind logs: a followed command, counted."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        clock: Callable[[], float] = time.time,
        backoff_s: tuple[float, float] = (1.0, 20.0),
        grace_s: float = 1.0,
    ) -> None:
        self.spec = spec
        settings = spec.settings
        command = settings.get("command")
        self._argv = tuple(str(a) for a in command) if isinstance(command, list | tuple) else ()
        window = settings.get("window_s", 60.0)
        self.counter = LineCounter(
            str(settings.get("error", "(?i)error")),
            str(settings.get("warn", "(?i)warn")),
            float(window) if isinstance(window, int | float) else 60.0,
        )
        self._clock = clock
        self._backoff_s = backoff_s
        self._grace_s = grace_s
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._down: str | None = None  # why the command is not running now
        self._last_line = ""
        self._closed = False
        self._spawning: asyncio.Future[asyncio.subprocess.Process | None] | None = None

    @property
    def pid(self) -> int | None:
        """The running command's pid (also its process group id), for tests and the UI."""
        return self._proc.pid if self._proc is not None else None

    async def poll(self, planned_at: float) -> PollResult:
        if self._closed:
            return SourceDown("closed")
        if not self._argv:
            return SourceDown("no command to run")
        if self._task is None or self._task.done():
            crashed = _failure(self._task)
            if self._proc is not None:  # left behind by a reader that failed: start afresh
                await self._stop(self._proc)
                self._proc = None
            self._task = asyncio.create_task(self._supervise(await self._start()))
            if crashed:
                return SourceDown(f"log reader failed: {crashed}")
        if self._down is not None:
            return SourceDown(self._down)
        values, reasons = self.counter.values(self._clock())
        details = {"lines": list(self.counter.lines), "recent": tuple(self.counter.recent)}
        return Reading({**values, "up": 1.0}, reasons, details)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._spawning is not None:  # a start cut short by the cancel still finishes
            await asyncio.gather(self._spawning, return_exceptions=True)
        proc, self._proc = self._proc, None
        if proc is not None:
            await self._stop(proc)

    async def _start(self) -> asyncio.subprocess.Process | None:
        # Shielded: a poll or task cancelled mid-start must not lose track of a new process.
        self._spawning = asyncio.ensure_future(self._spawn())
        return await asyncio.shield(self._spawning)

    async def _spawn(self) -> asyncio.subprocess.Process | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: close() can end all it started
            )
        except OSError as err:
            self._down = f"cannot run {self._argv[0]!r}: {err.strerror or err}"
            return None
        self._proc, self._down, self._last_line = proc, None, ""
        self.counter.started(self._clock())
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process | None) -> None:
        restarts = 0
        first_s, cap_s = self._backoff_s
        while True:
            if proc is not None:
                started = self._clock()
                status = await self._follow(proc)
                self.counter.stopped(self._clock())
                self._proc = None
                self._down = exit_message(status, self._last_line)
                if self._clock() - started >= cap_s:
                    restarts = 0  # it ran well for a while: start the backoff over
            await asyncio.sleep(backoff_delay(restarts, first_s, cap_s))
            restarts += 1
            proc = await self._start()

    async def _follow(self, proc: asyncio.subprocess.Process) -> int:
        if proc.stdout is None:  # never: started with stdout=PIPE
            return await proc.wait()
        reader = asyncio.create_task(read_lines(proc.stdout, self._on_line))
        try:
            # Not proc.wait() alone: it also waits for the pipe to close, and whatever the
            # command left running keeps the pipe open. returncode is set at the exit itself.
            while proc.returncode is None and not reader.done():
                await asyncio.wait({reader}, timeout=EXIT_CHECK_S)
            if reader.done() and (error := reader.exception()) is not None:
                raise error  # the next poll reports it and starts over
            if proc.returncode is None:  # its output ended first
                await proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # what it left running goes with it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), self._grace_s)
            await _group_gone(proc.pid)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        status = proc.returncode
        return status if status is not None else await proc.wait()

    def _on_line(self, line: str) -> None:
        if line.strip():
            self._last_line = line.strip()
        self.counter.feed(line, self._clock())

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        # Keep reading to EOF meanwhile: a full, unread pipe would never report its end.
        drain = asyncio.create_task(proc.stdout.read()) if proc.stdout is not None else None
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self._grace_s)
        _signal_group(proc.pid, signal.SIGKILL)  # the leader if it ignored SIGTERM, and the rest
        with contextlib.suppress(TimeoutError):  # only something that left the group can hold on
            await asyncio.wait_for(proc.wait(), self._grace_s)
        await _group_gone(proc.pid)
        if drain is not None:
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(drain, self._grace_s)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _group_gone(pgid: int, within_s: float = 0.2) -> None:
    """Wait a moment for a SIGKILLed group to be gone: its pipe closes just before it dies.

    Briefly: dead members stay in the group as zombies until reaped, by init for orphans,
    which some inits do only now and then; a zombie runs nothing.
    """
    for _ in range(math.ceil(within_s / 0.01)):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.01)


def _failure(task: asyncio.Task[None] | None) -> str | None:
    if task is None or task.cancelled() or task.exception() is None:
        return None
    error = task.exception()
    return f"{type(error).__name__}: {error}"[:300]
