"""Automatic rollback end to end: real `cockpit run --headless` processes, a real HTTP server
turned bad, a stand-in `vercel`. Two cockpits on one state file roll back exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.conftest import CockpitRun
from tests.servers.http_server import HttpServerControl

pytestmark = pytest.mark.integration

PLAN = """
[rollout]
name = "auto"

[sources.farms]
kind = "http"
url = "{url}"
every = "200ms"
timeout = "500ms"
window = "5s"

[[phase]]
name = "Shadow"
traffic = 10

[traffic]
run = ["vercel", "env", "add", "PHASE_3_ROLLOUT_PERCENTAGE", "production", "--force"]
stdin = "{{percent}}"

[[rollback]]
name = "flag"
title = "Feature flag to 0%"
traffic = 0

[auto_rollback]
when = ["farms.error_rate > 50% for 1s"]
method = "flag"
grace = "1s"
cooldown = "10m"
"""


def start(cockpit_run: CockpitRun, http_server: HttpServerControl) -> None:
    cockpit_run.config.write_text(PLAN.format(url=http_server.url))
    go = cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go")
    assert go.returncode == 0, go.stderr


def watchers(cockpit_run: CockpitRun, count: int, seconds: str) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cockpit", "run", "--headless", "--for", seconds],
            cwd=cockpit_run.folder,
            env=cockpit_run.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    outputs: list[tuple[int, str]] = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            outputs.append((proc.returncode, out))
    finally:
        for proc in procs:  # never leave a cockpit running, whatever failed above
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    for code, out in outputs:
        assert code == 0, out
    return [out for _, out in outputs]


def audit(cockpit_run: CockpitRun) -> list[dict[str, object]]:
    result = cockpit_run("log", "--json")
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_two_cockpits_roll_back_exactly_once(
    cockpit_run: CockpitRun, http_server: HttpServerControl
) -> None:
    start(cockpit_run, http_server)
    http_server.configure(status=500)
    outputs = watchers(cockpit_run, 2, "7s")
    both = "\n".join(outputs)
    assert "AUTO-ROLLBACK in 1s: farms.error_rate > 50% for 1s" in both
    assert both.count("AUTO-ROLLBACK by 'flag'") == 1
    calls = [c for c in cockpit_run.stand_in_calls() if c["stdin"] == "0"]
    assert len(calls) == 1  # the flag went to 0% once
    events = [e["event"] for e in audit(cockpit_run)]
    assert events.count("auto_rollback") == 1
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolled_back"
    assert status["rollout"]["rollback"]["auto"] is True


def test_cancelled_trigger_does_not_fire_during_cooldown(
    cockpit_run: CockpitRun, http_server: HttpServerControl
) -> None:
    start(cockpit_run, http_server)
    http_server.configure(status=500)
    cancel = cockpit_run(
        "cancel", "--reason", "the 500s are a load test", "farms.error_rate > 50% for 1s"
    )
    assert cancel.returncode == 0, cancel.stderr
    [output] = watchers(cockpit_run, 1, "4s")
    assert "AUTO-ROLLBACK" not in output
    assert not [c for c in cockpit_run.stand_in_calls() if c["stdin"] == "0"]
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "running"
    cancels = [e for e in audit(cockpit_run) if e["event"] == "cancel_auto"]
    assert cancels[0]["operator"] == "alice"
    assert cancels[0]["reason"] == "the 500s are a load test"


def test_unknown_alone_never_rolls_back(
    cockpit_run: CockpitRun, http_server: HttpServerControl
) -> None:
    start(cockpit_run, http_server)
    http_server.stop()  # no data at all: the trigger is UNKNOWN, not FAIL
    [output] = watchers(cockpit_run, 1, "4s")
    assert "AUTO-ROLLBACK" not in output
    assert not [c for c in cockpit_run.stand_in_calls() if c["stdin"] == "0"]


def test_read_only_cockpit_sees_the_trigger_but_never_acts(
    cockpit_run: CockpitRun, http_server: HttpServerControl
) -> None:
    start(cockpit_run, http_server)
    before = audit(cockpit_run)
    http_server.configure(status=500)
    result = cockpit_run("run", "--headless", "--read-only", "--for", "4s")
    assert result.returncode == 0, result.stderr
    assert "AUTO-ROLLBACK in 1s" in result.stdout
    assert "read-only: not rolling back by 'flag'" in result.stdout
    assert not [c for c in cockpit_run.stand_in_calls() if c["stdin"] == "0"]
    assert audit(cockpit_run) == before  # wrote nothing


class Recorder(BaseHTTPRequestHandler):
    bodies: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[type[Recorder]]:
    handler = type("Hook", (Recorder,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_team_is_told_every_step(
    cockpit_run: CockpitRun, http_server: HttpServerControl, webhook: type[Recorder]
) -> None:
    plan = PLAN.format(url=http_server.url) + f'\n[notify]\nwebhook = "{webhook.url}"\n'  # type: ignore[attr-defined]
    cockpit_run.config.write_text(plan)
    assert (
        cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go").returncode == 0
    )
    http_server.configure(status=500)
    watchers(cockpit_run, 1, "6s")
    events = [b["event"] for b in webhook.bodies]
    assert events[0] == "phase_change"
    for expected in ("auto_rollback_armed", "auto_rollback_fired", "rollback_finished"):
        assert expected in events, events
    fired = next(b for b in webhook.bodies if b["event"] == "auto_rollback_fired")
    assert fired["rollout"] == "auto"
    assert fired["percent"] == 10
    assert "farms.error_rate > 50% for 1s" in str(fired["reason"])
