"""200 SIGKILLs at seeded random moments of a cockpit writing its state, appending to its
audit log and rolling back with commands; after each, what a restarted cockpit finds.

The killing is done by `helpers/crash_driver.py`, which forks each victim from one process
that already imported everything, so a kill costs a fork. After every kill: the state file
parses as one whole version that never goes back; every complete audit line parses and the
chain verifies (`cockpit log --verify`), a torn last line is cut and said by the next append;
and a restarted cockpit either finds everything as it was or reports the rollback it was
running as interrupted (`status --json` says so first, then `Cockpit.load` settles it).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import cockpit
from cockpit.cli import main as cockpit_main
from cockpit.core.atomic import temp_files
from cockpit.core.audit import AuditLog
from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import Operator
from cockpit.core.plan import Plan
from cockpit.core.rollout_model import Status
from cockpit.core.state import StateStore, Versioned

DRIVER = Path(__file__).parent / "helpers" / "crash_driver.py"
SRC = Path(cockpit.__file__).resolve().parents[1]
SEED = 7_2024
KILLS = 200
# Which work each kill interrupts, and how long after its first unit of work it lands.
WORKLOADS = {"state": 0.02, "audit": 0.03, "action": 0.06}
WEIGHTS = {"state": 1, "audit": 1, "action": 2}

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PLAN = """
[rollout]
name = "crash"
state = "state/state.toml"
audit = "state/audit.jsonl"

[[phase]]
name = "Shadow"
traffic = 10

[[phase]]
name = "Full"
traffic = 100

[[rollback]]
name = "revert"
run = [["true"], ["sleep", "0.01"]]
"""


@dataclass
class Driver:
    process: subprocess.Popen[str]

    def kill(self, workload: str, delay_s: float, seed: int) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"kill {workload} {delay_s:.6f} {seed}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer == f"killed {workload}", answer or "the driver died"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cockpit.toml"
    path.write_text(PLAN)
    return path


@pytest.fixture
def driver(config: Path, tmp_path: Path) -> Iterator[Driver]:
    errors = (tmp_path / "driver.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", (tmp_path / "driver.stderr").read_text()
        yield Driver(process)
    finally:
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the driver stops at the end of its input
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        errors.close()


@dataclass
class Findings:
    """What the kills hit, so the test can show they landed where it matters."""

    counts: Counter[str] = field(default_factory=Counter)
    version: int = 0
    entries: int = 0


def audit_after_kill(log: AuditLog, seen: Findings) -> list[dict[str, object]]:
    entries = log.read()  # every complete line parses; a torn last one is skipped
    assert log.verify() is None
    assert len(entries) >= seen.entries  # no complete line was ever lost
    seen.entries = len(entries)
    seen.counts["torn audit line"] += log.torn_tail > 0
    return entries


def restart(
    plan: Plan, before: Versioned, seen: Findings, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a cockpit started now finds: as it was, or the rollback it ran, interrupted."""
    record = before.state.rollback
    running = before.state.status is Status.ROLLING_BACK
    cut_short = running and record is not None and record.ok is None
    again = Cockpit(plan=plan, operator=Operator("restart"), metrics=MetricStore())
    assert again.interrupted(before) is cut_short  # a dead runner holds no lock
    if cut_short or seen.counts["kill"] % 10 == 0:
        capsys.readouterr()
        code = cockpit_main(["status", "--json", "--for", "0", "-c", str(plan.config_path)])
        doc = json.loads(capsys.readouterr().out)
        assert code in (0, 3)
        if cut_short:
            assert doc["rollout"]["rollback"]["interrupted"] is True
    after = again.load()
    if not cut_short:
        assert after == before  # resumes as it was: nothing to settle, nothing written
        return
    seen.counts["interrupted rollback"] += 1
    assert after.version == before.version + 1
    assert after.state.rollback is not None
    assert after.state.rollback.ok is False
    assert after.state.rollback.detail.startswith("interrupted")
    last = again.audit.read()[-1]
    assert last["event"] == "rollback_finished"
    assert str(last["detail"]).startswith("interrupted")


def mid_step(entries: list[dict[str, object]]) -> bool:
    """Was the last action step started and never ended (the kill landed inside it)?"""
    steps = [e["event"] for e in entries if str(e["event"]).startswith("action.")]
    return bool(steps) and steps[-1] == "action.start"


def test_two_hundred_kills_leave_a_state_and_journal_a_restart_can_trust(
    config: Path, driver: Driver, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = load_plan(config, {})
    store = StateStore(plan.state_path)
    log = AuditLog(plan.audit_path)
    chance = random.Random(SEED)
    seen = Findings()
    names = list(WORKLOADS)
    for n in range(KILLS):
        [workload] = chance.choices(names, weights=[WEIGHTS[w] for w in names])
        driver.kill(workload, chance.uniform(0, WORKLOADS[workload]), n)
        seen.counts["kill"] += 1
        seen.counts[workload] += 1

        before = store.load()  # parses as one whole version (StateError otherwise)
        assert before.version >= seen.version  # never goes back
        seen.version = before.version
        leftovers = temp_files(store.path)
        assert len(leftovers) <= 1, leftovers  # each writer clears older ones under the lock
        seen.counts["kill inside a state write"] += bool(leftovers)

        entries = audit_after_kill(log, seen)
        seen.counts["kill inside an action step"] += mid_step(entries)
        torn = log.torn_tail > 0
        restart(plan, before, seen, capsys)
        if torn:  # the next append, whoever makes it, cuts the torn line and says so
            if log.read() and log.torn_tail:  # the restart had nothing to write
                log.append("restarted", operator=Operator("restart"))
            now = log.read()
            assert log.torn_tail == 0
            assert "audit_repaired" in [e["event"] for e in now[len(entries) :]]
            seen.entries = len(now)
        capsys.readouterr()
        assert cockpit_main(["log", "--verify", "-c", str(config)]) == 0

    print(dict(seen.counts))
    assert seen.counts["kill"] == KILLS
    for landed in (
        "kill inside a state write",
        "kill inside an action step",
        "interrupted rollback",
    ):
        assert seen.counts[landed] > 0, f"no {landed}: the kills proved less than they should"

    # The real command, in its own process, agrees.
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for args in (["log", "--verify"], ["status", "--json", "--for", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "cockpit", *args, "-c", str(config)],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert done.returncode in (0, 3), done.stderr
        assert done.stderr == ""
