"""The process runner: real subprocess runs (stdin, exit status, shell = true), output streamed
line by line as it arrives, and timeouts that kill the whole process group.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.process import MAX_LINE, run_command
from cockpit.core.step import OUTPUT_LIMIT, Step


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


def test_shell_runs_one_string_through_sh() -> None:
    result = run_command(Step(argv=("echo $((40 + 2)) | tr 4 x; echo err >&2",), shell=True))
    assert result.ok
    assert [line[13:] for line in result.output.splitlines()] == ["x2", "err"]
    failed = run_command(Step(argv=("exit 4",), shell=True))
    assert failed.error == "sh exited with status 4"


# -- streaming output --------------------------------------------------------------------------

STAMP = re.compile(r"\d\d:\d\d:\d\d\.\d{3} ")


def python(code: str, **step: Any) -> Step:
    return Step(argv=(sys.executable, "-c", code), **step)


def test_output_streams_while_the_command_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('done')\n"
    )
    seen: list[str] = []

    def on_output(line: str) -> None:
        seen.append(line)
        go.touch()  # the command only finishes once its first line has been seen

    result = run_command(python(code, timeout_s=10.0), on_output=on_output)
    assert result.ok, result.error
    assert [line[13:] for line in seen] == ["ready", "done"]
    assert all(STAMP.match(line) for line in seen)
    assert result.output == "".join(line + "\n" for line in seen)


def test_stdout_and_stderr_are_interleaved_in_arrival_order() -> None:
    # Each write waits until the cockpit has read the pipe, so the order is the child's.
    code = (
        "import fcntl, os, struct, termios, time\n"
        "for n, fd in enumerate([1, 2, 2, 1, 2, 1, 1]):\n"
        '    os.write(fd, f\'{"out" if fd == 1 else "err"} {n}\\n\'.encode())\n'
        "    while struct.unpack('i', fcntl.ioctl(fd, termios.FIONREAD, b'0000'))[0]:\n"
        "        time.sleep(0.001)\n"
    )
    seen: list[str] = []
    result = run_command(python(code, timeout_s=10.0), on_output=seen.append)
    assert result.ok, result.error
    expected = ["out 0", "err 1", "err 2", "out 3", "err 4", "out 5", "out 6"]
    assert [line[13:] for line in seen] == expected


def test_lines_are_stamped_with_the_utc_time() -> None:
    moments = iter([1_700_000_000.123, 1_700_000_059.9996])
    code = "import sys; print('a'); sys.stdout.write('b\\r\\nno newline')"
    result = run_command(python(code), clock=lambda: next(moments, 0.0))
    assert result.output == "22:13:20.123 a\n22:14:20.000 b\n00:00:00.000 no newline\n"


def test_output_keeps_the_last_64_kib_and_passes_every_line_on() -> None:
    code = "import sys\nfor n in range(5000): print(f'line {n:05d} ' + 'x' * 30)"
    seen: list[str] = []
    result = run_command(python(code), on_output=seen.append)
    assert len(seen) == 5000
    kept = result.output.encode()
    assert OUTPUT_LIMIT - 60 < len(kept) <= OUTPUT_LIMIT
    assert result.output.endswith(f"line 04999 {'x' * 30}\n")
    assert seen[-1].endswith("line 04999 " + "x" * 30)


def test_big_stdin_stdout_and_stderr_at_once_do_not_deadlock() -> None:
    code = (
        "import sys\n"
        "sys.stderr.write('e' * 300_000 + '\\n')\n"
        "data = sys.stdin.read()\n"
        "print('x' * 300_000)\n"
        "print('read', len(data))\n"
    )
    result = run_command(python(code, stdin="s" * 1_000_000, timeout_s=20.0))
    assert result.ok, result.error
    assert result.output.endswith(" read 1000000\n")


def test_an_endless_line_is_passed_on_in_pieces() -> None:
    seen: list[str] = []
    code = "import sys; sys.stdout.write('y' * 20000)"
    assert run_command(python(code), on_output=seen.append).ok
    assert [len(line) - 13 for line in seen] == [MAX_LINE, MAX_LINE, 20000 - 2 * MAX_LINE]


# -- timeouts kill the whole process group -----------------------------------------------------


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Processes a test started indirectly; if one is still alive, its whole group is killed."""
    started: list[int] = []
    yield started
    for pid in started:
        if not gone(pid, within=0.0):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def gone(pid: int, within: float = 3.0) -> bool:
    """Exited (a zombie nobody reaped counts: it runs nothing)."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def grandchild(pid_file: Path, command: str) -> str:
    """Python lines that start `command` as a grandchild and record its pid."""
    return (
        f"import subprocess\n"
        f"g = subprocess.Popen(['sh', '-c', {command!r}])\n"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
    )


@pytest.mark.integration
def test_timeout_kills_a_group_that_dies_on_sigterm_without_waiting_the_grace(
    tmp_path: Path, pids: list[int]
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        grandchild(pid_file, "exec sleep 60")
        + "import time; print('up', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    result = run_command(python(code, timeout_s=1.0))  # the default 5 s grace
    pids.append(int(pid_file.read_text()))
    assert time.monotonic() - started < 3.0
    assert not result.ok
    assert result.error == "timed out after 1s: killed"
    assert result.returncode == -signal.SIGTERM
    assert result.output.endswith(" up\n")
    assert gone(pids[0])


@pytest.mark.integration
def test_a_child_ignoring_sigterm_is_killed_after_the_grace(
    tmp_path: Path, pids: list[int]
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('TERM ignored', flush=True))\n"
        + grandchild(pid_file, "trap '' TERM; exec sleep 60")
        + "print('up', flush=True)\n"
        "while True: time.sleep(60)\n"
    )
    started = time.monotonic()
    result = run_command(python(code, timeout_s=0.5), kill_grace_s=0.5)
    pids.append(int(pid_file.read_text()))
    assert 1.0 <= time.monotonic() - started < 3.0
    assert result.error == "timed out after 0.5s: killed"
    assert result.returncode == -signal.SIGKILL
    assert [line[13:] for line in result.output.splitlines()] == ["up", "TERM ignored"]
    assert gone(pids[0])


@pytest.mark.integration
def test_a_grandchild_ignoring_sigterm_is_killed_after_its_parent_died(
    tmp_path: Path, pids: list[int]
) -> None:
    # The leader dies at once and the pipes close: the group still has a live member.
    pid_file = tmp_path / "pid"
    script = f"sh -c \"trap '' TERM; exec sleep 60\" >/dev/null 2>&1 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    result = run_command(Step(argv=(script,), shell=True, timeout_s=0.5), kill_grace_s=0.5)
    pids.append(int(pid_file.read_text()))
    assert time.monotonic() - started >= 1.0
    assert result.returncode == -signal.SIGTERM
    assert gone(pids[0])


@pytest.mark.integration
def test_an_interrupt_mid_run_kills_the_group_then_goes_on(tmp_path: Path, pids: list[int]) -> None:
    pid_file = tmp_path / "pid"
    code = (
        grandchild(pid_file, "exec sleep 60")
        + "import time; print('up', flush=True); time.sleep(60)"
    )

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_command(python(code, timeout_s=30.0), on_output=interrupt, kill_grace_s=0.5)
    pids.append(int(pid_file.read_text()))
    assert gone(pids[0])
