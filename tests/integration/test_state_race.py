"""Several real processes racing on one state file: compare-and-swap lets exactly one win each
round, and read-modify-writes under the lock never lose an update."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cockpit
from cockpit.core.state import StateStore

HELPER = Path(__file__).parent / "helpers" / "state_racer.py"
SRC = Path(cockpit.__file__).resolve().parents[1]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Spawn = Callable[[str], subprocess.Popen[str]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    children: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    def start(name: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(HELPER), str(tmp_path / "state.toml"), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.kill()
            child.wait()
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()


def ask_all(children: list[subprocess.Popen[str]], command: str) -> list[str]:
    """Send `command` to every child back to back (a start line), then collect the answers."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
    answers = []
    for child in children:
        assert child.stdout is not None
        answers.append(child.stdout.readline().strip())
    return answers


def test_simultaneous_commits_exactly_one_wins_each_round(tmp_path: Path, spawn: Spawn) -> None:
    racers = [spawn(f"racer-{i}") for i in range(8)]
    store = StateStore(tmp_path / "state.toml")
    rounds = 15
    for done in range(rounds):
        assert ask_all(racers, "load") == [f"loaded {done}"] * len(racers)
        answers = ask_all(racers, "commit")
        winners = [i for i, answer in enumerate(answers) if answer.startswith("won ")]
        assert len(winners) == 1, answers
        assert answers[winners[0]] == f"won {done + 1}"

        now = store.load()
        assert now.version == done + 1
        assert now.state.updated_by == f"racer-{winners[0]}"
        assert now.state.updated_at is not None
        at = time.strftime("%H:%M", time.gmtime(now.state.updated_at))
        news = f"now in phase {done + 1} (by racer-{winners[0]} at {at} UTC)"
        lost = f"lost {done + 1} state changed: {news}"
        assert [a for i, a in enumerate(answers) if i not in winners] == [lost] * 7

    final = store.load()
    assert final.version == rounds
    assert final.state.phase == rounds
    assert len(final.state.history) == rounds


def test_concurrent_updates_lose_nothing(tmp_path: Path, spawn: Spawn) -> None:
    workers = [spawn(f"worker-{i}") for i in range(6)]
    assert ask_all(workers, "bump 10") == ["bumped"] * 6
    final = StateStore(tmp_path / "state.toml").load()
    assert final.version == 60
    assert final.state.phase == 60
    assert len(final.state.history) == 60
    assert {h.by for h in final.state.history} == {f"worker-{i}" for i in range(6)}
