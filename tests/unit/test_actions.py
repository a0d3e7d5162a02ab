"""Actions: placeholders, masking, step lists from the plan, and real subprocess runs."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cockpit.core.actions import (
    Step,
    fill,
    mask,
    rollback_steps,
    run_command,
    traffic_steps,
    verify,
)
from cockpit.core.catalog import Catalog
from cockpit.core.plan import Phase, Plan, RollbackMethod, TrafficAction


def make_plan(traffic: TrafficAction | None) -> Plan:
    return Plan(
        name="t",
        config_path=Path("c.toml"),
        state_path=Path("s.toml"),
        audit_path=Path("a.jsonl"),
        sources={},
        catalog=Catalog({}),
        phases=(Phase("one", 10, 0.0), Phase("two", 50, 0.0)),
        rollbacks=(
            RollbackMethod("instant", "Instant", 30.0, "now", run=(("vercel", "rollback"),)),
            RollbackMethod("flag", "Flag", 120.0, "app ok", traffic=0, verify="http://x/h"),
            RollbackMethod("disable", "Manual", None, "last", manual="edit the file"),
        ),
        traffic=traffic,
    )


TRAFFIC = TrafficAction(
    run=("vercel", "env", "add", "PCT", "production"),
    stdin="{percent}",
    then=(("vercel", "--prod", "--phase={phase}"),),
    verify="http://127.0.0.1:1/health",
)


def test_fill_only_known_placeholders() -> None:
    assert fill("{percent}% {phase} {method} {other}", {"percent": "50", "phase": "2"}) == (
        "50% 2 {method} {other}"
    )


def test_mask_hides_every_secret_longest_first() -> None:
    assert mask("token=abc123 and abc", ["abc", "abc123"]) == "token=**** and ****"
    assert mask("nothing", [""]) == "nothing"


def test_traffic_steps_fill_percent_and_phase() -> None:
    steps = traffic_steps(make_plan(TRAFFIC), 50, 2)
    assert steps[0].argv == ("vercel", "env", "add", "PCT", "production")
    assert steps[0].stdin == "50"
    assert steps[1].argv == ("vercel", "--prod", "--phase=2")
    assert steps[2].verify_url == "http://127.0.0.1:1/health"
    assert traffic_steps(make_plan(None), 50, 2) == []


def test_rollback_steps_per_method() -> None:
    plan = make_plan(TRAFFIC)
    assert [s.argv for s in rollback_steps(plan, "instant", 1)] == [("vercel", "rollback")]
    flag = rollback_steps(plan, "flag", 1)
    assert flag[0].stdin == "0"  # traffic = 0 reuses [traffic] at 0%
    assert flag[-1].verify_url == "http://x/h"
    assert [s.manual for s in rollback_steps(plan, "disable", 1)] == ["edit the file"]
    assert rollback_steps(plan, "nope", 1) == []


def test_describe_masks_secrets() -> None:
    step = Step(argv=("curl", "-H", "Authorization: Bearer s3cr3t"))
    assert "s3cr3t" not in step.describe(["s3cr3t"])
    assert "****" in step.describe(["s3cr3t"])


def test_run_command_passes_stdin_and_captures_output() -> None:
    code = "import sys; print('got', sys.stdin.read()); print('err', file=sys.stderr)"
    result = run_command(Step(argv=(sys.executable, "-c", code), stdin="50"))
    assert result.ok
    assert "got 50" in result.output
    assert "err" in result.output


def test_run_command_reports_failure_and_missing_program() -> None:
    failed = run_command(Step(argv=(sys.executable, "-c", "raise SystemExit(3)")))
    assert not failed.ok
    assert failed.returncode == 3
    missing = run_command(Step(argv=("no-such-program-cockpit",)))
    assert not missing.ok
    assert missing.error is not None
    assert "cannot run no-such-program-cockpit" in missing.error


@pytest.mark.integration
def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    result = run_command(Step(argv=(sys.executable, "-c", code), timeout_s=1.0))
    assert not result.ok
    assert result.error == "timed out after 1s: killed"
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(grandchild, 9)
        pytest.fail("the grandchild outlived the timeout")


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/health", handler
    finally:
        server.shutdown()
        server.server_close()


def test_verify_passes_on_2xx(health_server: tuple[str, type[_Health]]) -> None:
    url, _ = health_server
    assert verify(Step(verify_url=url)).ok


def test_verify_retries_then_fails_on_5xx(health_server: tuple[str, type[_Health]]) -> None:
    url, handler = health_server
    handler.status = 503
    sleeps: list[float] = []
    result = verify(Step(verify_url=url, verify_for_s=0.0), sleep=sleeps.append)
    assert not result.ok
    assert result.error == f"verify failed: {url}: HTTP 503"
