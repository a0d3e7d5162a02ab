"""What the plan says to run, as steps (argv lists, manual steps, HTTP requests, verify URLs),
and the runners for HTTP actions and verify URLs.

Placeholders `{percent}`, `{phase}` and `{method}` are filled at run time; anything else in
braces is left alone. Commands are run by cockpit.core.process; `run_command`, `Step`,
`StepResult` and `mask` are importable from here as well.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import httpx

from cockpit.core.plan import HttpRequest, Plan
from cockpit.core.process import run_command
from cockpit.core.step import OUTPUT_LIMIT, Step, StepResult, mask

__all__ = [
    "OUTPUT_LIMIT",
    "Step",
    "StepResult",
    "fill",
    "mask",
    "rollback_steps",
    "run_command",
    "run_http",
    "traffic_steps",
    "verify",
]

_PLACEHOLDER = re.compile(r"\{(percent|phase|method)\}")


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
