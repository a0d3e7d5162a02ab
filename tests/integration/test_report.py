"""`cockpit report` on a recorded rollout: real `cockpit` processes on the bundled plan, a real
HTTP server to probe, stand-in `vercel`; the history is recorded by `run --headless`."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from cockpit.core.report_model import SPARK
from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration

PHASES = ("Phase 1 Shadow (10%)", "Phase 2 Partial (50%)", "Phase 3 Full (100%)")


def watch_a_while(cockpit_run: CockpitRun, cockpits: int = 1) -> None:
    """`run --headless --for 4s`, by several cockpits at once (all record one history)."""
    procs = [cockpit_run.popen("run", "--headless", "--for", "4s") for _ in range(cockpits)]
    try:
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"metric history not recorded" not in out


def test_report_of_a_recorded_rollout(cockpit_run: CockpitRun) -> None:
    for cockpits, reason in enumerate(("staging signed off", "bake cut short", "last"), 1):
        advanced = cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", reason)
        assert advanced.returncode == 0, advanced.stderr
        watch_a_while(cockpit_run, cockpits)
    held = cockpit_run("hold", "--reason", "p99 | spike <on> /api/farms")
    assert held.returncode == 0, held.stderr
    assert cockpit_run("resume").returncode == 0
    rolled = cockpit_run("rollback", "flag", "--yes", "--reason", "error spike")
    assert rolled.returncode == 0, rolled.stderr

    history = cockpit_run.folder / ".cockpit" / "state.toml.history.sqlite"
    with closing(sqlite3.connect(history)) as conn:
        recorded = conn.execute("SELECT count(*), sum(n) FROM samples").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert recorded[0] > 0
    assert recorded[1] > 0

    report = cockpit_run("report")
    assert report.returncode == 0, report.stderr
    text = report.stdout
    for title in PHASES:
        assert f"### {title}" in text
    assert "**forced**: staging signed off" in text
    assert "### Rollback `flag` — Feature flag to 0% (by alice)" in text
    assert "- Why: error spike" in text
    assert "stand-in vercel env add PHASE\\_3\\_ROLLOUT\\_PERCENTAGE" not in text  # verbatim:
    assert "stand-in vercel env add PHASE_3_ROLLOUT_PERCENTAGE" in text  # outputs in code blocks
    assert "p99 \\| spike \\<on> /api/farms" in text
    assert "| Outcome | **rolled back** |" in text
    assert any(bar in text for bar in SPARK)

    page = cockpit_run("report", "--html", "-o", "report.html")
    assert page.returncode == 0, page.stderr
    html = (cockpit_run.folder / "report.html").read_text()
    assert "<svg" in html
    assert "<polyline" in html
    for title in PHASES:
        assert f"<h3>{title}</h3>" in html
    assert "p99 | spike &lt;on&gt; /api/farms" in html
