"""`cockpit demo` as a person runs it: bad input refused in one line; the headless watch with
scheduled faults and --keep; the full screen in tmux with a fault key; and whatever stops it
(the end of --for, `q`, SIGTERM, SIGHUP), nothing it started is left: no server on its
ports, no folder."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.tmux import Tmux, write_script

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"(APP_URL|REDIS_URL|DATABASE_URL)=\S+://[^:/]+:(\d+)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No plan anywhere near, and temporary files where the test can see them."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    clean.update(TMPDIR=str(temp), PYTHONPATH=str(REPO / "src"), USER="alice")
    return clean


def cockpit(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def ports(output: str) -> dict[str, int]:
    return {name: int(port) for name, port in URL.findall(output)}


def assert_nothing_left(output: str, env: dict[str, str]) -> None:
    found = ports(output)
    assert set(found) == {"APP_URL", "REDIS_URL", "DATABASE_URL"}, output
    for name, port in found.items():
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"{name} still answers"
    assert list(Path(env["TMPDIR"]).iterdir()) == []  # the plan, state and audit are gone


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--fault", "meteor-at=10s"], "--fault: bad fault 'meteor-at=10s'"),
        (["--fault", "errors-at=soon"], "--fault: bad fault 'errors-at=soon'"),
        (["--for", "10s"], "--for works with --headless only"),
        (["--headless", "--for", "a while"], "--for: bad duration"),
        (["-c", "missing.toml"], "-c missing.toml: no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], said: str, env: dict[str, str], tmp_path: Path
) -> None:
    result = cockpit("demo", *args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cockpit: {said}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_keep_refuses_a_folder_with_things_in_it(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    result = cockpit("demo", "--keep", "full", env=env, cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "cockpit: --keep full: not empty (name a new or empty folder)",
    )
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_headless_with_a_fault_keeps_what_report_needs(env: dict[str, str], tmp_path: Path) -> None:
    result = cockpit(
        "demo", "--headless", "--for", "12s", "--fault", "slow-db-at=4s", "--keep", "run1",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "rollout pending phase 0/3 pre-flight" in out
    for source in ("farms", "farm", "search", "cache", "db"):
        assert f"source {source} up" in out
    assert "demo: fault ON: slow database" in out
    assert "cockpit report -c" in out

    kept = tmp_path / "run1"
    assert {p.name for p in kept.iterdir()} >= {"cockpit.toml", ".cockpit"}
    assert (kept / ".cockpit" / "state.toml").is_file()
    assert cockpit("validate", "-c", "run1/cockpit.toml", env=env, cwd=tmp_path).returncode == 0
    log = cockpit("log", "-c", "run1/cockpit.toml", "--verify", env=env, cwd=tmp_path)
    assert log.returncode == 0, log.stderr
    assert_nothing_left(out, env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_everything(
    sig: signal.Signals, env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "demo", "--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "source db up" in line:
                break
        process.send_signal(sig)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out = "".join(lines) + rest
    assert process.returncode == 0, out
    assert "stopped: the platform, its servers and the demo's files are gone" in out
    assert_nothing_left(out, env)


def session_members(sid: int) -> list[str]:
    """Processes still in session `sid` (what the demo started runs in its session)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
            found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def orphan_postmasters() -> list[str]:
    """Demo PostgreSQL servers whose folder is gone: started, then abandoned (pg_ctl puts the
    postmaster in a session of its own, so session_members cannot see it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        data = argv[argv.index("-D") + 1] if "-D" in argv[:-1] else ""
        if data.startswith("/tmp/cockpit-demo-") and not Path(data).exists():
            found.append(" ".join(argv))
    return found


def test_sigterm_while_starting_stops_what_was_started(env: dict[str, str], tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "demo", "--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert "starting the demo platform" in first
        time.sleep(1.5)  # PostgreSQL's initdb takes longer than this
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "stopping: signal received" in rest
    assert "Traceback" not in rest
    deadline = time.monotonic() + 10  # a postmaster told to stop may take a moment
    while session_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_members(process.pid) == []
    assert orphan_postmasters() == []
    assert list(Path(env["TMPDIR"]).iterdir()) == []


# -- the full screen, in tmux ----------------------------------------------------------------


@pytest.fixture
def tmux_demo(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Tmux, Path]]:
    pid_file = tmp_path / "pid"
    script = write_script(
        tmp_path / "run.sh",
        {**env, "TERM": "screen-256color"},
        tmp_path,
        # In the background for its pid; bash would give a background job /dev/null for stdin.
        f"{shlex.quote(sys.executable)} -m cockpit demo < /dev/tty &",
        f"echo $! > {pid_file}",
        "wait $!",
        "echo DEMO-EXITED $?",
        "sleep 60",
    )
    with Tmux.start("cockpit-demo", script) as tmux:
        yield tmux, pid_file


def test_full_screen_notice_redis_key_and_sigterm(
    tmux_demo: tuple[Tmux, Path], env: dict[str, str]
) -> None:
    tmux, pid_file = tmux_demo
    tmux.wait_until(
        "the notice and live numbers", lambda s: "DEMO: 1h=1.25s" in s and "q/min" in s, 40
    )
    tmux.keys("3")  # Redis down: its pane says so (the event log may be scrolled elsewhere)
    tmux.wait_until("the cache pane down", lambda s: "DOWN: connection refuse" in s, 20)
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    screen = tmux.wait_until("the demo gone", lambda s: "DEMO-EXITED 0" in s, 60)
    assert "stopped: the platform, its servers and the demo's files are gone" in screen
    assert_nothing_left(screen, env)
