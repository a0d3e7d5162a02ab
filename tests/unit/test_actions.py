"""Actions: placeholders, masking, step lists from the plan, shell = true, and real subprocess
runs (streamed output, timeouts that kill the whole group).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.actions import (
    MAX_LINE,
    OUTPUT_LIMIT,
    Step,
    fill,
    mask,
    rollback_steps,
    run_command,
    traffic_steps,
    verify,
)
from cockpit.core.catalog import Catalog
from cockpit.core.config import ConfigError, load_plan
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


# -- shell = true ----------------------------------------------------------------------------

SHELL_CONFIG = """\
[rollout]
name = "r"

[[phase]]
name = "one"
traffic = 100

[traffic]
shell = true
run = ["vercel env add PCT production <<< {percent}"]
then = [["vercel --prod"]]

[[rollback]]
name = "instant"
shell = true
run = [["vercel rollback --yes && echo {method}"]]
"""


def test_shell_runs_one_string_through_sh() -> None:
    result = run_command(Step(argv=("echo $((40 + 2)) | tr 4 x; echo err >&2",), shell=True))
    assert result.ok
    assert [line[13:] for line in result.output.splitlines()] == ["x2", "err"]
    failed = run_command(Step(argv=("exit 4",), shell=True))
    assert failed.error == "sh exited with status 4"


def test_describe_shows_the_shell_form_and_stdin_masked() -> None:
    step = Step(argv=("curl -H 'X-Token: s3cr3t' x",), shell=True, stdin="pw s3cr3t")
    assert step.describe(["s3cr3t"]) == (
        "run: sh -c 'curl -H '\"'\"'X-Token: ****'\"'\"' x'  (stdin: 'pw ****')"
    )
    # A secret that quoting would escape (quotes, backslashes) is masked before quoting.
    tricky = "a'b\\c"
    described = Step(argv=("tool", f"--pw={tricky}"), stdin=tricky).describe([tricky])
    assert described == "run: tool '--pw=****'  (stdin: '****')"


def test_shell_is_carried_from_the_config_into_the_steps(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    path.write_text(SHELL_CONFIG)
    plan = load_plan(path, environ={})
    traffic = traffic_steps(plan, 100, 1)
    assert [(s.argv, s.shell) for s in traffic] == [
        (("vercel env add PCT production <<< 100",), True),
        (("vercel --prod",), True),
    ]
    (rollback,) = rollback_steps(plan, "instant", 1)
    assert (rollback.argv, rollback.shell) == (("vercel rollback --yes && echo instant",), True)
    assert rollback.describe() == "run: sh -c 'vercel rollback --yes && echo instant'"
    plain = load_plan(write(tmp_path, SHELL_CONFIG.replace("shell = true\n", "")), environ={})
    assert plain.traffic is not None
    assert not plain.traffic.shell
    assert not rollback_steps(plain, "instant", 1)[0].shell


def write(folder: Path, text: str) -> Path:
    path = folder / "cockpit.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            'run = ["vercel env add PCT production <<< {percent}"]',
            'run = ["vercel", "env", "add"]',
            ":10: traffic.run: with shell = true a command is one string for /bin/sh -c, not 3 "
            'items: write ["vercel env add"]',
        ),
        (
            'then = [["vercel --prod"]]',
            'then = [["a"], ["vercel", "--prod"]]',
            ":11: traffic.then[2]: with shell = true a command is one string for /bin/sh -c, "
            'not 2 items: write ["vercel --prod"]',
        ),
        (
            'run = [["vercel rollback --yes && echo {method}"]]',
            'run = [["ok"], ["git", "revert", "it\'s"]]',
            ":16: rollback[1].run[2]: with shell = true a command is one string for /bin/sh -c, "
            "not 3 items: write [\"git revert 'it'\\\"'\\\"'s'\"]",
        ),
        (
            'run = [["vercel rollback --yes && echo {method}"]]',
            "traffic = 0",
            ":15: rollback[1].shell: shell = true applies to run commands, and there are none here",
        ),
    ],
)
def test_shell_config_errors(tmp_path: Path, old: str, new: str, error: str) -> None:
    assert old in SHELL_CONFIG
    path = write(tmp_path, SHELL_CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == f"{path}{error}"


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
