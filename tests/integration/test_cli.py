"""The headless CLI end to end: real processes on a temporary copy of the bundled plan."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration


def test_validate_and_version(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("validate")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "phase 3 Full: 100%" in result.stdout
    version = cockpit_run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("cockpit ")


def test_every_command_help_shows_an_example(cockpit_run: CockpitRun) -> None:
    for command in (
        "validate",
        "status",
        "advance",
        "hold",
        "resume",
        "check",
        "uncheck",
        "baseline",
        "rollback",
        "log",
    ):
        result = cockpit_run(command, "--help")
        assert result.returncode == 0
        assert "example:" in result.stdout, command


def test_status_json_before_anything_is_measured(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("status", "--json", "--for", "0")
    assert result.returncode == 3  # nothing measured yet: UNKNOWN, not PASS
    doc = json.loads(result.stdout)
    assert doc["rollout"]["status"] == "pending"
    assert doc["rollout"]["traffic"] == 0
    assert doc["sources"]["farms"]["up"] is None
    assert all(g["verdict"] == "unknown" for g in doc["gates"])
    assert doc["metrics"]["farms.p95"]["status"] == "no data"


def test_drive_a_rollout(cockpit_run: CockpitRun) -> None:
    refused = cockpit_run("advance", "--for", "0", "--yes")
    assert refused.returncode == 1
    assert "check open:" in refused.stderr
    assert "advance refused" in refused.stderr

    ticked = cockpit_run("check", "1")
    assert ticked.returncode == 0, ticked.stderr
    assert ticked.stdout.startswith("ticked: ")

    advanced = cockpit_run(
        "advance", "--for", "0", "--yes", "--force", "--reason", "staging signed off"
    )
    assert advanced.returncode == 0, advanced.stderr
    assert "phase 1/3 Shadow, traffic 10%" in advanced.stdout
    calls = cockpit_run.stand_in_calls()
    assert calls[0]["argv"][:4] == ["vercel", "env", "add", "PHASE_3_ROLLOUT_PERCENTAGE"]
    assert calls[0]["stdin"] == "10"
    assert calls[1]["argv"] == ["vercel", "--prod"]

    held = cockpit_run("hold", "--reason", "p99 spike on /api/farms")
    assert held.returncode == 0, held.stderr
    blocked = cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "x")
    assert blocked.returncode == 1
    assert "p99 spike" in blocked.stderr
    resumed = cockpit_run("resume")
    assert resumed.returncode == 0, resumed.stderr

    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "running"
    assert status["rollout"]["phase"] == 1

    log = cockpit_run("log", "--json")
    assert log.returncode == 0
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    events = [e["event"] for e in entries]
    assert events[:2] == ["check", "advance"]
    assert events.count("action.start") == events.count("action.end") == 2
    assert events[-2:] == ["hold", "resume"]
    assert {e["operator"] for e in entries} == {"alice"}
    advance = entries[1]
    assert advance["before"]["status"] == "pending"
    assert advance["after"]["phase"] == 1
    assert advance["reason"] == "staging signed off"
    assert advance["gates"], "the verdicts that justified the advance are recorded"
    assert cockpit_run("log", "--verify").returncode == 0
    human = cockpit_run("log")
    assert "pending/0 -> running/1" in human.stdout


def test_rollback_dry_run_then_for_real(cockpit_run: CockpitRun) -> None:
    assert (
        cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go").returncode == 0
    )
    before = len(cockpit_run.stand_in_calls())
    dry = cockpit_run("rollback", "flag", "--dry-run")
    assert dry.returncode == 0
    assert "stdin: '0'" in dry.stdout
    assert len(cockpit_run.stand_in_calls()) == before  # nothing ran
    assert (
        json.loads(cockpit_run("status", "--json", "--for", "0").stdout)["rollout"]["status"]
        == "running"
    )

    wrong = cockpit_run("rollback", "flag", stdin="instant\n")
    assert wrong.returncode == 1  # typing another name does not confirm
    done = cockpit_run("rollback", "flag", stdin="flag\n")
    assert done.returncode == 0, done.stderr + done.stdout
    calls = cockpit_run.stand_in_calls()[before:]
    assert calls[0]["stdin"] == "0"
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolled_back"
    assert status["rollout"]["traffic"] == 0


def _read_until(stream, marker: bytes, timeout: float = 30.0) -> bytes:  # type: ignore[no-untyped-def]
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} in {seen!r}"
        chunk = stream.read1(4096)
        assert chunk, f"stream closed before {marker!r}: {seen!r}"
        seen += chunk
    return seen


def test_two_operators_advancing_at_once_produce_one_advance(cockpit_run: CockpitRun) -> None:
    args = ("advance", "--for", "0", "--force", "--reason", "race")
    first, second = cockpit_run.popen(*args), cockpit_run.popen(*args)
    try:
        for proc in (first, second):  # both have read the state and wait for confirmation
            _read_until(proc.stdout, b"[y/N] ")
        for proc in (first, second):
            assert proc.stdin is not None
            proc.stdin.write(b"y\n")
            proc.stdin.flush()
        results = [(p.wait(60), p.stderr.read().decode()) for p in (first, second)]
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream:
                    stream.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1]
    loser = next(err for code, err in results if code == 1)
    assert "state changed: now in phase 1 (by alice at" in loser
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["phase"] == 1
    advances = [
        e
        for e in map(json.loads, cockpit_run("log", "--json").stdout.splitlines())
        if e["event"] == "advance"
    ]
    assert len(advances) == 1


def test_no_config_found_is_one_line(cockpit_run: CockpitRun) -> None:
    cockpit_run.config.unlink()
    result = cockpit_run("status")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cockpit init" in result.stderr
    assert "cockpit demo" in result.stderr


def test_bad_config_is_one_line_naming_file_line_key(cockpit_run: CockpitRun) -> None:
    text = cockpit_run.config.read_text().replace("http.error_rate > 1%", "http.p59 > 1%", 1)
    cockpit_run.config.write_text(text)
    result = cockpit_run("validate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "cockpit.toml:" in line
    assert "phase[1].failure[1]" in line
    assert "http.p59" in line


def test_unknown_check_item_is_a_usage_error(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("check", "no such item anywhere at all")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_status_polls_the_sources_before_judging(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("status", "--json", "--for", "2s")
    assert result.returncode == 3, result.stderr
    doc = json.loads(result.stdout)
    # The HTTP probes reach the test's server; Redis and PostgreSQL point at closed ports.
    assert doc["sources"]["farms"]["up"] is True
    assert doc["sources"]["cache"]["up"] is False
    assert doc["sources"]["cache"]["error"]
    assert doc["sources"]["db"]["up"] is False
    assert doc["metrics"]["farms.samples"]["value"] >= 1
    assert doc["metrics"]["cache.up"]["value"] == 0.0
    up_gate = next(g for g in doc["gates"] if g["rule"] == "cache.up == 1")
    assert up_gate["verdict"] == "fail"


def test_run_headless_logs_one_line_per_change(cockpit_run: CockpitRun) -> None:
    result = cockpit_run("run", "--headless", "--for", "3s")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.endswith("rollout pending phase 0/3 pre-flight, traffic 0%") for line in lines)
    assert any(" source farms up" in line for line in lines)
    assert any(" source cache DOWN: " in line for line in lines)
    assert sum(" source cache " in line for line in lines) == 1  # transitions, not every poll
    assert any(" gate success cache.up == 1: - -> fail" in line for line in lines)


def test_manual_rollback_step_needs_a_person_even_with_yes(cockpit_run: CockpitRun) -> None:
    assert (
        cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go").returncode == 0
    )
    result = cockpit_run("rollback", "disable", "--yes")  # stdin is empty: nobody said done
    assert result.returncode == 1
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolling_back"
    assert status["rollout"]["rollback"]["ok"] is False
    assert "manual step not confirmed" in status["rollout"]["rollback"]["detail"]


def test_secrets_never_reach_screen_or_files(cockpit_run: CockpitRun) -> None:
    secret = "sekrit-vercel-token-123"
    text = cockpit_run.config.read_text().replace(
        'then = [["vercel", "--prod"]]',
        'then = [["vercel", "--prod", "--token", "${VERCEL_TOKEN}"]]',
    )
    assert "${VERCEL_TOKEN}" in text
    cockpit_run.config.write_text(text)
    cockpit_run.env["VERCEL_TOKEN"] = secret
    cockpit_run.env["STAND_IN_EXIT"] = "1"  # the deploy fails, so its output (the token) is shown
    cockpit_run.env["STAND_IN_FAIL_ON"] = "--prod"
    outputs = [
        cockpit_run("advance", "--for", "0", "--yes", "--force", "--reason", "go"),
        cockpit_run("rollback", "flag", "--dry-run"),
        cockpit_run("status", "--json", "--for", "0"),
        cockpit_run("log", "--json"),
    ]
    assert cockpit_run.stand_in_calls()[1]["argv"][-1] == secret  # it was really passed on
    for result in outputs:
        assert secret not in result.stdout + result.stderr
    for path in (cockpit_run.folder / ".cockpit").iterdir():
        assert secret not in path.read_text(errors="replace"), path
