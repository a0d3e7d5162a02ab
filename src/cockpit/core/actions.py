"""Run what the plan says to run: argv lists (never through a shell), manual steps, verify URLs.

Every run has a timeout; on timeout the whole process group is killed (SIGTERM, then SIGKILL),
so a hung `vercel` and its children do not outlive the action. Placeholders `{percent}`,
`{phase}` and `{method}` are filled at run time; anything else in braces is left alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from cockpit.core.plan import HttpRequest, Plan

OUTPUT_LIMIT = 64 * 1024  # keep the last 64 KiB of an action's output
_PLACEHOLDER = re.compile(r"\{(percent|phase|method)\}")


@dataclass(frozen=True)
class Step:
    """One thing to do: a command, a manual instruction, or a URL that must answer 2xx."""

    argv: tuple[str, ...] = ()
    http: HttpRequest | None = None  # placeholders already filled
    stdin: str | None = None
    manual: str | None = None
    verify_url: str | None = None
    timeout_s: float = 300.0
    verify_for_s: float = 60.0

    def describe(self, secrets: Iterable[str] = ()) -> str:
        if self.manual is not None:
            text = f"manual: {self.manual}"
        elif self.verify_url is not None:
            text = f"verify: GET {self.verify_url} answers 2xx"
        elif self.http is not None:
            text = f"http: {self.http.method} {self.http.url}"
            if self.http.json is not None:
                text += f" {json.dumps(self.http.json)}"
        else:
            text = "run: " + " ".join(_quote(a) for a in self.argv)
            if self.stdin is not None:
                text += f"  (stdin: {self.stdin!r})"
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
        steps.append(Step(argv=argv, stdin=stdin, timeout_s=traffic.timeout_s))
    for argv in traffic.then:
        steps.append(Step(argv=tuple(fill(a, values) for a in argv), timeout_s=traffic.timeout_s))
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
        Step(argv=tuple(fill(a, values) for a in argv), timeout_s=method.timeout_s)
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


def run_command(step: Step, *, env: Mapping[str, str] | None = None) -> StepResult:
    """Run an argv step in its own process group; kill the group if it outlives its timeout."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(step.argv),
            stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        return StepResult(step, False, error=f"cannot run {step.argv[0]}: {exc.strerror}")
    try:
        out, _ = proc.communicate(step.stdin.encode() if step.stdin else None, step.timeout_s)
    except BaseException as exc:
        if not isinstance(exc, subprocess.TimeoutExpired):
            _kill_group(proc)  # Ctrl-C or a crash here must not leave the command running
            raise
        _kill_group(proc)
        out, _ = proc.communicate()
        return StepResult(
            step,
            False,
            _tail(out),
            proc.returncode,
            time.monotonic() - started,
            error=f"timed out after {step.timeout_s:g}s: killed",
        )
    elapsed = time.monotonic() - started
    ok = proc.returncode == 0
    error = None if ok else f"{step.argv[0]} exited with status {proc.returncode}"
    return StepResult(step, ok, _tail(out), proc.returncode, elapsed, error)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(out: bytes | None) -> str:
    return (out or b"")[-OUTPUT_LIMIT:].decode(errors="replace")


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
