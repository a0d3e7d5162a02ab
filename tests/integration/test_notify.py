"""Notifier against a real local HTTP server that records what it received.

The server answers 500 a given number of times per path before it succeeds, or hangs; the
notifier uses real httpx. Only the backoff wait is injected (no 1 + 2 + 4 s pauses here).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cockpit.core.notify import AUTO_ROLLBACK_FIRED, HOLD, PHASE_CHANGE, Delivery, Notifier
from cockpit.core.plan import Notify

pytestmark = pytest.mark.integration

ROLLOUT = "Phase 3: multi-layer caching"
PHASES = ("Shadow", "Partial", "Full")
SECRET = "s3cr3t-hunter2"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        with server.lock:
            server.received.append(
                Received("POST", self.path, self.headers.get("Content-Type", ""), body)
            )
            failing = server.fail_left.get(self.path, 0)
            if failing:
                server.fail_left[self.path] = failing - 1
        if server.hang.is_set():
            server.release.wait(30)  # never answers while the test runs
            self.close_connection = True
            return
        status = 500 if failing else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.fail_left: dict[str, int] = {}
        self.hang, self.release = threading.Event(), threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def requests(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


delays: list[float] = []  # the backoff waits asked for, in the current test


async def quick_sleep(seconds: float) -> None:
    delays.append(seconds)


@pytest.fixture
def notifier_for() -> Iterator[Callable[..., Notifier]]:
    """Builds notifiers with the test's secret; none is left running after the test."""
    made: list[Notifier] = []
    delays.clear()

    def build(notify: Notify, **options: Any) -> Notifier:
        options.setdefault("sleep", quick_sleep)
        made.append(Notifier(notify, secrets={SECRET}, rollout=ROLLOUT, phases=PHASES, **options))
        return made[-1]

    yield build
    for notifier in made:
        notifier.close(1.0)
    assert not any(n.running for n in made)


def test_slack_and_webhook_receive_their_json_after_retries(
    recorder: _Recorder, notifier_for: Any
) -> None:
    recorder.fail_left = {"/slack/T0/B0/x": 2, "/hook": 1}
    slack, hook = recorder.url("/slack/T0/B0/x"), recorder.url("/hook")
    results: list[Delivery] = []
    notifier = notifier_for(Notify(slack=slack, webhook=hook), on_result=results.append)
    notifier.send(PHASE_CHANGE, phase=2, percent=50, operator="alice", reason="bake done")
    notifier.close(10.0)
    assert not notifier.running

    slack_requests = recorder.requests("/slack/T0/B0/x")
    assert [(r.method, r.content_type) for r in slack_requests] == [
        ("POST", "application/json")
    ] * 3
    assert slack_requests[-1].json() == {
        "text": f"[{ROLLOUT}] phase 2/3 Partial 50%: advance by alice — bake done"
    }
    hook_requests = recorder.requests("/hook")
    assert len(hook_requests) == 2
    body = hook_requests[-1].json()
    assert {k: body[k] for k in ("event", "rollout", "phase", "percent", "operator")} == {
        "event": "phase_change",
        "rollout": ROLLOUT,
        "phase": 2,
        "percent": 50,
        "operator": "alice",
    }
    assert (body["reason"], body["gates"], body["phase_name"]) == ("bake done", [], "Partial")
    assert body["time"].endswith("+00:00")
    assert sorted(delays) == [1, 1, 2]  # two retries for Slack, one for the webhook
    assert sorted((d.target, d.ok, d.attempts) for d in results) == [
        ("slack", True, 3),
        ("webhook", True, 2),
    ]


def test_a_target_that_keeps_failing_is_reported_without_its_url(
    recorder: _Recorder, notifier_for: Any
) -> None:
    recorder.fail_left = {"/slack/T0/B0/x": 100}
    notifier = notifier_for(Notify(slack=recorder.url("/slack/T0/B0/x")))
    notifier.send(HOLD, phase=1, percent=10, operator="bob", reason="errors up")
    notifier.close(10.0)
    assert len(recorder.requests()) == 5
    assert delays == [1, 2, 4, 8]
    assert [d.describe() for d in notifier.failures()] == ["slack: HTTP 500 after 5 tries"]


def test_an_unreachable_target_is_a_failure_that_names_no_url(notifier_for: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/slack/T0/B0/x"
    notifier = notifier_for(Notify(slack=url), max_attempts=2)
    notifier.send(HOLD, phase=1, percent=10, operator="bob", reason=f"see {url}")
    notifier.close(10.0)
    (failure,) = notifier.failures()
    assert failure.error is not None
    assert failure.error.startswith("ConnectError")
    assert failure.error.endswith("after 2 tries")
    assert str(port) not in failure.error
    assert "/slack" not in failure.error


def test_send_never_waits_for_a_hanging_server(recorder: _Recorder, notifier_for: Any) -> None:
    recorder.hang.set()
    url = recorder.url("/hook")
    notifier = notifier_for(Notify(webhook=url))
    started = time.perf_counter()
    for n in range(20):
        notifier.send(HOLD, phase=1, percent=10, operator="bob", reason=f"hold {n}")
    assert time.perf_counter() - started < 0.5
    deadline = time.monotonic() + 10
    while not recorder.requests() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first delivery has reached the hanging server
    assert len(recorder.requests()) == 1
    notifier.close(0.3)
    assert not notifier.running
    failures = notifier.failures()
    assert len(failures) == 20
    assert failures[0].error == "not delivered: closed during try 1"
    assert {f.error for f in failures[1:]} == {"not delivered: closed before it was sent"}


def test_a_hanging_server_times_out_each_try(recorder: _Recorder, notifier_for: Any) -> None:
    recorder.hang.set()
    notifier = notifier_for(Notify(webhook=recorder.url("/hook")), timeout_s=0.2, max_attempts=2)
    notifier.send(HOLD, phase=1, percent=10, operator="bob", reason="x")
    notifier.close(10.0)
    assert len(recorder.requests()) == 2
    assert [d.error for d in notifier.failures()] == ["no answer within 0.2s after 2 tries"]


def test_no_secret_reaches_the_server(recorder: _Recorder, notifier_for: Any) -> None:
    slack, hook = recorder.url("/slack/T0/B0/x"), recorder.url("/hook")
    recorder.fail_left = {"/hook": 1}
    notifier = notifier_for(Notify(slack=slack, webhook=hook))
    gates = [
        {"rule": "http.error_rate > 2% for 5m", "verdict": "fail", "reason": f"token {SECRET}"},
    ]
    notifier.send(
        AUTO_ROLLBACK_FIRED,
        phase=2,
        percent=50,
        operator=f"cockpit ({SECRET})",
        reason=f"Authorization: Bearer {SECRET}; posted to {slack} and {hook}",
        gates=gates,
    )
    notifier.close(10.0)
    received = recorder.requests()
    assert len(received) == 3
    for request in received:
        assert SECRET.encode() not in request.body
        assert slack.encode() not in request.body
        assert hook.encode() not in request.body
        assert b"****" in request.body
    assert recorder.requests("/slack/T0/B0/x")[0].json()["text"] == (
        f"[{ROLLOUT}] phase 2/3 Partial 50%: AUTO-ROLLBACK FIRED by cockpit (****)"
        " — Authorization: Bearer ****; posted to **** and ****"
        " | failing: http.error_rate &gt; 2% for 5m (token ****)"
    )
