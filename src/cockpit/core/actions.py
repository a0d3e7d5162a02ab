"""Run what the plan says to run: argv lists, manual steps, HTTP requests, verify URLs.

Commands never go through a shell unless the config says `shell = true`. Every run has a
timeout; on timeout the whole process group is killed (SIGTERM, then SIGKILL after a grace),
so a hung `vercel` and its children do not outlive the action. Output streams line by line,
time-stamped, while the command runs. Placeholders `{percent}`, `{phase}` and `{method}` are
filled at run time; anything else in braces is left alone.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import select
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO

import httpx

from cockpit.core.plan import HttpRequest, Plan

OUTPUT_LIMIT = 64 * 1024  # keep the last 64 KiB of an action's output
KILL_GRACE_S = 5.0  # after SIGTERM at a timeout, how long the group has before SIGKILL
MAX_LINE = 8192  # a longer line (a progress bar without newlines) is passed on in pieces
_DRAIN_AFTER_KILL_S = 1.0  # reading what is left once the group is dead
_PLACEHOLDER = re.compile(r"\{(percent|phase|method)\}")


@dataclass(frozen=True)
class Step:
    """One thing to do: a command, a manual instruction, or a URL that must answer 2xx."""

    argv: tuple[str, ...] = ()  # with shell, exactly one string: the /bin/sh -c script
    http: HttpRequest | None = None  # placeholders already filled
    stdin: str | None = None
    manual: str | None = None
    verify_url: str | None = None
    timeout_s: float = 300.0
    verify_for_s: float = 60.0
    shell: bool = False

    def describe(self, secrets: Iterable[str] = ()) -> str:
        """What will run, as a person would type it, with every secret masked.

        Each value is masked before it is quoted, so quoting cannot split a secret apart.
        """
        secrets = tuple(secrets)
        if self.manual is not None:
            text = f"manual: {mask(self.manual, secrets)}"
        elif self.verify_url is not None:
            text = f"verify: GET {mask(self.verify_url, secrets)} answers 2xx"
        elif self.http is not None:
            text = f"http: {self.http.method} {mask(self.http.url, secrets)}"
            if self.http.json is not None:
                text += f" {json.dumps(_mask_value(self.http.json, secrets))}"
        elif self.shell:
            text = "run: sh -c " + _sh_quote(mask(self.argv[0], secrets))
        else:
            text = "run: " + " ".join(_quote(mask(a, secrets)) for a in self.argv)
        if self.stdin is not None and self.manual is None:
            text += f"  (stdin: {mask(self.stdin, secrets)!r})"
        return mask(text, secrets)


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    output: str = ""
    returncode: int | None = None
    duration_s: float = 0.0
    error: str | None = None  # one line: why it failed

    def summary(self) -> str:
        if self.ok:
            return f"ok in {self.duration_s:.1f}s"
        return self.error or "failed"


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value with ****; longest first so overlapping ones all go."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w@%+=:,./{}-]+", arg) else repr(arg)


def _sh_quote(script: str) -> str:
    """Single quotes, as sh reads them: the script exactly as /bin/sh -c gets it."""
    return "'" + script.replace("'", "'\"'\"'") + "'"


def _mask_value(value: object, secrets: tuple[str, ...]) -> object:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [_mask_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v, secrets) for k, v in value.items()}
    return value


def fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def traffic_steps(plan: Plan, percent: int, phase: int, method: str = "") -> list[Step]:
    """The [traffic] action for one percentage, then its verify."""
    traffic = plan.traffic
    if traffic is None:
        return []
    values = {"percent": str(percent), "phase": str(phase), "method": method}
    steps = []
    if traffic.http is not None:
        steps.append(Step(http=_fill_request(traffic.http, values), timeout_s=traffic.timeout_s))
    if traffic.run:
        stdin = fill(traffic.stdin, values) if traffic.stdin is not None else None
        argv = tuple(fill(a, values) for a in traffic.run)
        steps.append(Step(argv=argv, stdin=stdin, timeout_s=traffic.timeout_s, shell=traffic.shell))
    for argv in traffic.then:
        filled = tuple(fill(a, values) for a in argv)
        steps.append(Step(argv=filled, timeout_s=traffic.timeout_s, shell=traffic.shell))
    if traffic.verify:
        steps.append(Step(verify_url=traffic.verify, verify_for_s=traffic.verify_for_s))
    return steps


def rollback_steps(plan: Plan, method_name: str, phase: int) -> list[Step]:
    """The steps of one rollback method, in the order they run."""
    method = plan.rollback(method_name)
    if method is None:
        return []
    values = {"percent": "0", "phase": str(phase), "method": method.name}
    steps = [
        Step(
            argv=tuple(fill(a, values) for a in argv),
            timeout_s=method.timeout_s,
            shell=method.shell,
        )
        for argv in method.run
    ]
    if method.traffic is not None:
        steps += [
            s
            for s in traffic_steps(plan, method.traffic, phase, method.name)
            if s.verify_url is None
        ]
    if method.manual is not None:
        steps.append(Step(manual=method.manual))
    if method.verify:
        steps.append(Step(verify_url=method.verify))
    return steps


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


def verify(
    step: Step, *, sleep: Callable[[float], None] = time.sleep, try_timeout_s: float = 5.0
) -> StepResult:
    """GET the URL until it answers 2xx or `verify_for_s` runs out."""
    assert step.verify_url is not None
    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            answer = httpx.get(step.verify_url, timeout=try_timeout_s)
            if 200 <= answer.status_code < 300:
                return StepResult(
                    step,
                    True,
                    f"HTTP {answer.status_code}",
                    answer.status_code,
                    time.monotonic() - started,
                )
            last = f"HTTP {answer.status_code}"
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() - started >= step.verify_for_s:
            return StepResult(
                step,
                False,
                last,
                None,
                time.monotonic() - started,
                error=f"verify failed: {step.verify_url}: {last}",
            )
        sleep(1.0)


def _fill_request(request: HttpRequest, values: Mapping[str, str]) -> HttpRequest:
    def filled(value: object) -> object:
        if isinstance(value, str):
            return fill(value, values)
        if isinstance(value, list):
            return [filled(v) for v in value]
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        return value

    return HttpRequest(
        url=fill(request.url, values),
        method=request.method,
        headers={k: fill(v, values) for k, v in request.headers.items()},
        json=filled(request.json),
    )


def run_http(step: Step) -> StepResult:
    """Send an HTTP action; any 2xx is success."""
    assert step.http is not None
    request = step.http
    started = time.monotonic()
    try:
        answer = httpx.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            json=request.json,
            timeout=step.timeout_s,
        )
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return StepResult(step, False, error=f"{request.url}: {str(exc) or type(exc).__name__}")
    elapsed = time.monotonic() - started
    body = answer.text[-OUTPUT_LIMIT:]
    if 200 <= answer.status_code < 300:
        return StepResult(step, True, body, answer.status_code, elapsed)
    return StepResult(
        step,
        False,
        body,
        answer.status_code,
        elapsed,
        error=f"{request.url}: HTTP {answer.status_code}",
    )
