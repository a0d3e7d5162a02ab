"""SIGKILL writers of the state file and the audit log at random moments: the state file always
parses as one complete version, the audit log always reads and its chain always verifies."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cockpit
from cockpit.core.atomic import temp_files
from cockpit.core.audit import AuditLog
from cockpit.core.operator import Operator
from cockpit.core.rollout_model import HistoryEntry, RolloutState, Status
from cockpit.core.state import StateStore, Versioned, dump_state

HELPERS = Path(__file__).parent / "helpers"
SRC = Path(cockpit.__file__).resolve().parents[1]
KILLS = 32

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KillWriter = Callable[..., None]


@pytest.fixture
def kill_writer() -> Iterator[KillWriter]:
    """Start a helper, read its lines up to `until`, SIGKILL it up to `within` s later, reap it."""
    chance = random.Random()
    live: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    def run(argv: list[str], *, until: str = "ready", within: float = 0.05) -> None:
        child = subprocess.Popen(
            [sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=env
        )
        live.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        if until != "ready":
            assert child.stdout.readline() == f"{until}\n"
        try:
            child.wait(timeout=chance.uniform(0, within))
        except subprocess.TimeoutExpired:
            child.kill()
        assert child.wait() == -9, "the writer should still have been writing"
        child.stdout.close()
        live.remove(child)

    try:
        yield run
    finally:
        for child in live:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()


def big_state(entries: int, tag: str) -> RolloutState:
    history = tuple(
        HistoryEntry(1.746e9 + i, "alice", "advance", Status.RUNNING, Status.RUNNING, i, i + 1,
                     reason=f"{tag} {i} " + "r" * 100)
        for i in range(entries)
    )  # fmt: skip
    return RolloutState(status=Status.RUNNING, phase=entries, history=history, updated_by=tag)


def test_state_file_always_parses_as_one_whole_version(
    tmp_path: Path, kill_writer: KillWriter
) -> None:
    path = tmp_path / ".cockpit" / "state.toml"
    store = StateStore(path)
    expected = {v: Versioned(big_state(60 + 40 * v, f"v{v}"), v) for v in range(1, 5)}
    texts = []
    for v, versioned in expected.items():
        texts.append(tmp_path / f"v{v}.toml")
        texts[-1].write_text(dump_state(versioned.state, v))

    killed_mid_write = 0
    for _ in range(KILLS):
        kill_writer([str(HELPERS / "state_writer.py"), "raw", str(path), *map(str, texts)])
        loaded = store.load()
        assert loaded == expected[loaded.version]
        leftovers = temp_files(path)
        assert len(leftovers) <= 1, leftovers  # each writer clears older ones under the lock
        killed_mid_write += len(leftovers)
        with store.lock(timeout=2):  # a killed holder never keeps the lock
            pass
    assert killed_mid_write > 0, "no kill landed inside a write: the test proved nothing"

    store.commit(RolloutState(), store.load().version)
    assert temp_files(path) == []


def test_state_updates_killed_at_random_never_corrupt_or_go_back(
    tmp_path: Path, kill_writer: KillWriter
) -> None:
    store = StateStore(tmp_path / "state.toml")
    last = 0
    for _ in range(KILLS):
        kill_writer([str(HELPERS / "state_writer.py"), "update", str(store.path)])
        loaded = store.load()
        assert loaded.version >= last + 1  # the writer committed at least once before "ready"
        assert loaded.state.phase == loaded.version  # every update moved both by one
        assert len(temp_files(store.path)) <= 1
        last = loaded.version
    store.commit(RolloutState(), last)
    assert temp_files(store.path) == []


def kill_audit_writers(log: AuditLog, kills: int, run: Callable[[], None]) -> int:
    """Kill `kills` writers of `log` (each started by `run`); return how many tore a line."""
    count, torn = 0, 0
    for _ in range(kills):
        run()
        entries = log.read()
        assert len(entries) > count  # every complete line is still there
        assert log.verify() is None
        count = len(entries)
        torn += log.torn_tail > 0
    log.append("final", operator=Operator("parent"))
    entries = log.read()
    assert log.torn_tail == 0
    assert log.verify() is None
    assert sum(e["event"] == "audit_repaired" for e in entries) == torn  # one per torn line
    assert [e["event"] for e in entries].count("writer_started") == kills
    return torn


def test_audit_log_killed_mid_appends_always_reads_and_verifies(
    tmp_path: Path, kill_writer: KillWriter
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    writer = [str(HELPERS / "audit_writer.py"), "loop", str(log.path)]
    kill_audit_writers(log, KILLS, lambda: kill_writer(writer))


def test_audit_line_torn_by_a_kill_is_skipped_then_repaired(
    tmp_path: Path, kill_writer: KillWriter
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    writer = [str(HELPERS / "audit_writer.py"), "tear", str(log.path)]
    # killed within 3 ms of starting to write 8 MB: the kernel usually leaves part of it
    torn = kill_audit_writers(log, 16, lambda: kill_writer(writer, until="writing", within=0.003))
    assert torn > 0, "no kill tore a line: the repair path was not exercised"
