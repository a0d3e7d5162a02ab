"""The newest matching lines of a real followed command reach `cockpit status --json`:
logs source -> source runner -> metric store -> snapshot -> JSON."""

from __future__ import annotations

import json
import sys

import pytest

from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration

FOLLOWER = (
    "import time\n"
    "for n in range(3): print(f'ERROR request {n} failed', flush=True)\n"
    "print('WARN slow query', flush=True)\n"
    "print('GET /health 200', flush=True)\n"
    "time.sleep(60)\n"
)


def test_status_json_shows_the_newest_log_lines(cockpit_run: CockpitRun) -> None:
    text = cockpit_run.config.read_text()
    old = '# [sources.logs]\n# kind = "logs"\n# command = ["vercel", "logs", "--prod", "--follow"]'
    assert old in text
    command = json.dumps([sys.executable, "-c", FOLLOWER])
    cockpit_run.config.write_text(
        text.replace(old, f'[sources.logs]\nkind = "logs"\ncommand = {command}')
    )
    result = cockpit_run("status", "--json", "--for", "3s")
    assert result.returncode in (0, 1, 3), result.stderr
    logs = json.loads(result.stdout)["sources"]["logs"]
    assert logs["up"] is True
    assert [(n["kind"], n["text"]) for n in logs["lines"]] == [
        ("error", "ERROR request 0 failed"),
        ("error", "ERROR request 1 failed"),
        ("error", "ERROR request 2 failed"),
        ("warn", "WARN slow query"),
    ]
