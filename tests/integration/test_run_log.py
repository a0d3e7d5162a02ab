"""`cockpit run --log FILE` end to end: the real command, its stdout and its log file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def without_stamp(line: str) -> str:
    return line.split(" ", 1)[1]


def test_headless_run_appends_what_it_prints_to_the_log(
    cockpit_run: CockpitRun, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    log.write_text("a line from before\n")
    first = cockpit_run("run", "--headless", "--for", "3s", "--log", str(log))
    assert first.returncode == 0, first.stderr
    printed = [without_stamp(line) for line in first.stdout.splitlines()]
    assert "source cache DOWN: connection refused (127.0.0.1:9)" in printed
    lines = log.read_text().splitlines()
    assert lines[0] == "a line from before"  # appended, never truncated
    assert all(re.match(f"{STAMP} ", line) for line in lines[1:])
    assert re.fullmatch(f"{STAMP} INFO cockpit.run: cockpit .* headless started: .*", lines[1])
    assert lines[-1].endswith(" INFO cockpit.run: stopped")
    assert [without_stamp(line) for line in lines[2:-1]] == printed  # the same lines, in order

    second = cockpit_run("run", "--headless", "--for", "1s", "--log", str(log))
    assert second.returncode == 0, second.stderr
    again = log.read_text().splitlines()
    assert again[: len(lines)] == lines
    assert sum("headless started" in line for line in again) == 2


@pytest.mark.parametrize("headless", [True, False])
def test_a_bad_log_path_is_one_line_and_exit_2_before_anything_starts(
    cockpit_run: CockpitRun, tmp_path: Path, headless: bool
) -> None:
    mode = ["--headless"] if headless else []
    missing = cockpit_run("run", *mode, "--log", str(tmp_path / "nowhere" / "run.log"))
    assert missing.returncode == 2
    assert missing.stderr == (
        f"cockpit: --log {tmp_path}/nowhere/run.log: folder {tmp_path}/nowhere does not exist\n"
    )
    assert missing.stdout == ""  # nothing started: no line, no screen
    folder = cockpit_run("run", *mode, "--log", str(tmp_path))
    assert folder.returncode == 2
    assert folder.stderr == f"cockpit: --log {tmp_path}: is a folder, not a file\n"
    assert not (tmp_path / "nowhere").exists()
