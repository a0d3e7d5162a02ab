"""Operators side by side and the rollback methods, with real processes and stand-in tools."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit.cli import main
from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration


def go(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("method", "argvs"),
    [
        ("instant", [["vercel", "rollback", "--yes"]]),
        ("revert", [["git", "revert", "--no-edit", "HEAD"], ["git", "push", "origin", "master"]]),
    ],
)
def test_command_rollback_methods_run_in_order_then_verify(
    cockpit_run: CockpitRun, method: str, argvs: list[list[str]]
) -> None:
    go(cockpit_run)
    before = len(cockpit_run.stand_in_calls())
    result = cockpit_run("rollback", method, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["argv"] for c in cockpit_run.stand_in_calls()[before:]] == argvs
    assert "verify: GET" in result.stdout
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolled_back"
    assert status["rollout"]["rollback"]["method"] == method


def test_failing_step_stops_the_rollback_and_another_method_can_follow(
    cockpit_run: CockpitRun,
) -> None:
    go(cockpit_run)
    cockpit_run.env.update(STAND_IN_EXIT="1", STAND_IN_FAIL_ON="revert")
    failed = cockpit_run("rollback", "revert", "--yes")
    assert failed.returncode == 1
    assert [c["argv"][1] for c in cockpit_run.stand_in_calls()][-1] == "revert"  # no push
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolling_back"
    assert "git exited with status 1" in status["rollout"]["rollback"]["detail"]
    assert cockpit_run("rollback", "flag", "--yes").returncode == 0


def test_sigkill_mid_rollback_shows_interrupted_not_done(cockpit_run: CockpitRun) -> None:
    go(cockpit_run)
    proc = cockpit_run.popen("rollback", "disable", "--yes")  # waits at the manual step
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"Is it done?" not in seen:
            assert time.monotonic() < deadline, seen
            assert proc.stdout is not None
            seen += proc.stdout.read1(4096)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolling_back"
    assert status["rollout"]["rollback"]["ok"] is None
    assert status["rollout"]["rollback"]["interrupted"] is True
    human = cockpit_run("status", "--for", "0")
    assert "INTERRUPTED: pick a method" in human.stdout
    assert cockpit_run("rollback", "flag", "--yes").returncode == 0


def test_a_change_by_one_cockpit_shows_in_another_within_a_second(
    cockpit_run: CockpitRun,
) -> None:
    go(cockpit_run)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "run", "--headless", "--read-only", "--for", "6s"],
        cwd=cockpit_run.folder,
        env=cockpit_run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(2.5)  # the watcher is up and has shown the running rollout
        held_at = time.time()
        assert cockpit_run("hold", "--reason", "from the lead").returncode == 0
        out, _ = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    line = next(x for x in out.splitlines() if "rollout holding" in x)
    stamp = time.mktime(time.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert stamp - held_at < 2.0  # seen on its next one-second tick (stamps are whole seconds)


@pytest.fixture
def two_operators(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Two Unix users in one group: the on-call and the release lead."""
    tag = uuid.uuid4().hex[:6]
    group, oncall, lead = f"ckg{tag}", f"cko{tag}", f"ckl{tag}"
    subprocess.run(["groupadd", group], check=True)
    try:
        for user in (oncall, lead):
            subprocess.run(["useradd", "-M", "-N", "-g", group, user], check=True)
        yield group, oncall, lead
    finally:
        for user in (oncall, lead):
            subprocess.run(["userdel", user], check=False, capture_output=True)
        subprocess.run(["groupdel", group], check=False, capture_output=True)


def test_two_unix_users_share_a_setgid_state_folder(
    cockpit_run: CockpitRun, two_operators: tuple[str, str, str], tmp_path: Path
) -> None:
    group, oncall, lead = two_operators
    shared = Path("/tmp") / f"cockpit-shared-{uuid.uuid4().hex[:8]}"
    shared.mkdir()
    try:
        shutil.copy(cockpit_run.config, shared / "cockpit.toml")
        gid = grp.getgrnam(group).gr_gid
        os.chown(shared, 0, gid)
        shared.chmod(0o2775)  # setgid: files inside keep the operators' group
        os.chmod(shared / "cockpit.toml", 0o644)

        def as_user(user: str, *args: str) -> int:
            """Run the command in a child that has become `user` (the interpreter lives under
            /root, so exec'ing it as another user is not possible here: fork instead)."""
            account = pwd.getpwnam(user)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                code = 99
                try:
                    os.setgroups([])
                    os.setgid(account.pw_gid)
                    os.setuid(account.pw_uid)
                    os.environ["USER"] = user
                    os.chdir(shared)
                    code = main(["--yes", *args])
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        assert as_user(oncall, "check", "1") == 0
        assert as_user(lead, "check", "2") == 0  # writes the file the on-call created
        state_dir = shared / ".cockpit"
        assert state_dir.stat().st_mode & 0o2070 == 0o2070  # setgid, group rwx, any umask
        for path in state_dir.iterdir():
            assert path.stat().st_gid == gid, path
            assert path.stat().st_mode & 0o060 == 0o060, path  # group read and write
        entries = [json.loads(x) for x in (state_dir / "audit.jsonl").read_text().splitlines()]
        assert [e["operator"] for e in entries] == [oncall, lead]
        assert pwd.getpwnam(oncall).pw_gid == gid
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_advance_dry_run_shows_the_filled_commands_and_changes_nothing(
    cockpit_run: CockpitRun,
) -> None:
    refused = cockpit_run("advance", "--for", "0", "--dry-run")
    assert refused.returncode == 1
    assert "dry run: would NOT advance to phase 1 Shadow (10%)" in refused.stdout
    forced = cockpit_run("advance", "--for", "0", "--dry-run", "--force", "--reason", "x")
    assert forced.returncode == 0
    assert "(stdin: '10')" in forced.stdout
    assert "run: vercel --prod" in forced.stdout
    assert cockpit_run.stand_in_calls() == []
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["version"] == 0


def test_sighup_ends_a_watcher_cleanly_and_a_restart_resumes_the_same_phase(
    cockpit_run: CockpitRun,
) -> None:
    go(cockpit_run)
    assert cockpit_run("check", "1").returncode == 0
    before = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)["rollout"]
    watcher = cockpit_run.popen("run", "--headless")
    try:
        assert watcher.stdout is not None
        seen = b""
        while b"rollout running" not in seen:
            chunk = watcher.stdout.read1(4096)
            assert chunk, seen
            seen += chunk
        watcher.send_signal(signal.SIGHUP)  # the SSH session dropped
        assert watcher.wait(15) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.communicate()
    after = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)["rollout"]
    assert (after["status"], after["phase"], after["version"]) == (
        before["status"],
        before["phase"],
        before["version"],
    )
    assert after["in_phase_s"] >= before["in_phase_s"]  # the bake clock kept its start


def test_traffic_is_set_at_each_phase_entry(cockpit_run: CockpitRun) -> None:
    for _ in range(4):  # pending -> 1 -> 2 -> 3 -> complete
        go(cockpit_run)
    percents = [c["stdin"] for c in cockpit_run.stand_in_calls() if c["argv"][1] == "env"]
    assert percents == ["10", "50", "100"]
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "complete"


def test_log_verify_names_the_altered_line(cockpit_run: CockpitRun) -> None:
    go(cockpit_run)
    assert cockpit_run("hold", "--reason", "look").returncode == 0
    assert cockpit_run("log", "--verify").returncode == 0
    audit = cockpit_run.folder / ".cockpit" / "audit.jsonl"
    lines = audit.read_text().splitlines()
    lines[0] = lines[0].replace('"reason":"go"', '"reason":"fine"')  # someone covers tracks
    assert lines[0] != audit.read_text().splitlines()[0]
    audit.write_text("\n".join(lines) + "\n")
    result = cockpit_run("log", "--verify")
    assert result.returncode == 1
    assert "line 1 was altered" in result.stdout
