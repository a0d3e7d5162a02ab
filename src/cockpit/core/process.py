"""Run a command step: in its own process group, output streamed, killed at its timeout.

Commands never go through a shell unless the config says `shell = true`. Every run has a
timeout; on timeout the whole process group is killed (SIGTERM, then SIGKILL after a grace),
so a hung `vercel` and its children do not outlive the action. Output streams line by line,
time-stamped, while the command runs.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import IO

from cockpit.core.step import OUTPUT_LIMIT, Step, StepResult

KILL_GRACE_S = 5.0  # after SIGTERM at a timeout, how long the group has before SIGKILL
MAX_LINE = 8192  # a longer line (a progress bar without newlines) is passed on in pieces
_DRAIN_AFTER_KILL_S = 1.0  # reading what is left once the group is dead


def run_command(
    step: Step,
    *,
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
    kill_grace_s: float = KILL_GRACE_S,
    clock: Callable[[], float] = time.time,
) -> StepResult:
    """Run a command step in its own process group, streaming its output as it arrives.

    stdout and stderr lines reach `on_output` interleaved in the order they arrive, each
    stamped with the UTC time (`14:02:03.123 line`); the last OUTPUT_LIMIT bytes of them are
    the result's output. At the timeout the group gets SIGTERM, then SIGKILL once
    `kill_grace_s` has passed with any of it still alive.
    """
    started = time.monotonic()
    argv = ["/bin/sh", "-c", step.argv[0]] if step.shell else list(step.argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        return StepResult(step, False, error=f"cannot run {_name(step)}: {why}")
    streams = _Streams(proc, (step.stdin or "").encode(), _Lines(on_output, clock))
    try:
        deadline = started + step.timeout_s
        finished = streams.pump(deadline) and _exited(proc, deadline)
        if not finished:
            _stop_group(proc, streams, kill_grace_s)
    except BaseException:
        streams.lines.on_output = None  # a callback that failed once is not called again
        try:
            _stop_group(proc, streams, kill_grace_s)  # Ctrl-C must not leave the command running
        except BaseException:
            _signal_group(proc, signal.SIGKILL)  # a second Ctrl-C: no more grace
            raise
        raise
    finally:
        streams.close()
    elapsed = time.monotonic() - started
    output = streams.lines.tail()
    error: str | None = None
    if not finished:
        error = f"timed out after {step.timeout_s:g}s: killed"
    elif proc.returncode != 0:
        error = f"{_name(step)} exited with status {proc.returncode}"
    return StepResult(step, error is None, output, proc.returncode, elapsed, error)


def _name(step: Step) -> str:
    return "sh" if step.shell else step.argv[0]


def _exited(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


class _Lines:
    """Time-stamped lines of both streams, handed on as they complete; the last ones kept."""

    def __init__(self, on_output: Callable[[str], None] | None, clock: Callable[[], float]):
        self.on_output = on_output
        self.clock = clock
        self.kept: deque[bytes] = deque()
        self.size = 0

    def emit(self, line: str) -> None:
        seconds, millis = divmod(round(self.clock() * 1000), 1000)
        stamped = f"{time.strftime('%H:%M:%S', time.gmtime(seconds))}.{millis:03d} {line}"
        self.kept.append(stamped.encode() + b"\n")
        self.size += len(self.kept[-1])
        while self.size - len(self.kept[0]) >= OUTPUT_LIMIT:
            self.size -= len(self.kept.popleft())
        if self.on_output is not None:
            self.on_output(stamped)

    def tail(self) -> str:
        return b"".join(self.kept)[-OUTPUT_LIMIT:].decode(errors="ignore")


class _Stream:
    """One output pipe: bytes in, whole lines out (an endless line in MAX_LINE pieces)."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def feed(self, data: bytes) -> None:
        """Take what was read; b"" means the pipe is closed."""
        *complete, self.pending = (self.pending + self.decoder.decode(data, not data)).split("\n")
        if not data and self.pending:
            complete.append(self.pending)
            self.pending = ""
        while len(self.pending) > MAX_LINE:
            complete.append(self.pending[:MAX_LINE])
            self.pending = self.pending[MAX_LINE:]
        for line in complete:
            self.lines.emit(line.removesuffix("\r"))


class _Streams:
    """stdin written and stdout/stderr read together, so no pipe can fill up and block."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: bytes, lines: _Lines) -> None:
        self.lines = lines
        self.selector = selectors.DefaultSelector()
        self.stdin = memoryview(stdin)
        self.pipes: dict[int, IO[bytes]] = {}
        if proc.stdin is not None:
            self._add(proc.stdin, selectors.EVENT_WRITE, None)
            if not stdin:
                self._drop(proc.stdin.fileno())
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            self._add(pipe, selectors.EVENT_READ, _Stream(lines))

    def pump(self, until: float) -> bool:
        """Move data until every pipe is closed (True) or `until` (monotonic) passes."""
        while self.pipes:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in self.selector.select(remaining):
                if key.data is None:
                    try:
                        written = os.write(key.fd, self.stdin[: select.PIPE_BUF])
                    except BrokenPipeError:  # the command stopped reading: it wants no more
                        written = len(self.stdin)
                    self.stdin = self.stdin[written:]
                    if not self.stdin:
                        self._drop(key.fd)
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    self._drop(key.fd)
                key.data.feed(data)
        return True

    def close(self) -> None:
        """Close what is still open; a last partial line is kept."""
        for fd in list(self.pipes):
            stream = self.selector.get_key(fd).data
            self._drop(fd)
            if stream is not None:
                stream.feed(b"")
        self.selector.close()

    def _add(self, pipe: IO[bytes], events: int, stream: _Stream | None) -> None:
        self.pipes[pipe.fileno()] = pipe
        self.selector.register(pipe.fileno(), events, stream)

    def _drop(self, fd: int) -> None:
        self.selector.unregister(fd)
        self.pipes.pop(fd).close()


def _stop_group(proc: subprocess.Popen[bytes], streams: _Streams, grace_s: float) -> None:
    """SIGTERM the group, keep reading while it winds down, SIGKILL whatever is left."""
    _signal_group(proc, signal.SIGTERM)
    until = time.monotonic() + grace_s
    while time.monotonic() < until and (proc.poll() is None or _group_alive(proc.pid)):
        if streams.pump(min(until, time.monotonic() + 0.05)):
            time.sleep(0.02)  # the pipes are closed: nothing to read while it winds down
    if proc.poll() is None or _group_alive(proc.pid):
        _signal_group(proc, signal.SIGKILL)
    proc.wait()
    # A process that left the group may still hold the pipes: read briefly, then let go.
    streams.pump(time.monotonic() + _DRAIN_AFTER_KILL_S)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies nobody reaped do not count)."""
    try:
        os.killpg(pgid, 0)
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except ProcessLookupError:
        return False
    except OSError:
        return True  # not ours to signal, or no /proc to tell zombies apart: assume alive
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state, _, group = stat.read().rpartition(b")")[2].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(group) == pgid and state not in (b"Z", b"X"):
            return True
    return False
