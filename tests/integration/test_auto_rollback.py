"""Automatic rollback end to end: real `cockpit run --headless` processes, a real HTTP server
turned bad, a stand-in `vercel`. Two cockpits on one state file roll back exactly once."""

from __future__ import annotations

import json
import subprocess
import sys

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
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, out
        outputs.append(out)
    return outputs


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
