"""`cockpit report` on files: Markdown to stdout, --html and -o to files, errors in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cockpit.cli import main
from cockpit.core.config import load_plan
from cockpit.core.history import history_path
from cockpit.core.plan import Plan
from cockpit.core.state import StateStore
from tests.unit.test_report import REPO, rolled_back, write_audit, write_history


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    shutil.copy(REPO / "cockpit.toml", tmp_path / "cockpit.toml")
    monkeypatch.chdir(tmp_path)
    for name in ("COCKPIT_CONFIG", "APP_URL", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return load_plan(tmp_path / "cockpit.toml", environ={})


@pytest.fixture
def recorded(plan: Plan) -> Plan:
    StateStore(plan.state_path).commit(rolled_back(), 0)
    write_audit(plan.audit_path)
    write_history(history_path(plan.state_path))
    return plan


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_markdown_on_stdout(recorded: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Rollout report: Phase 3: multi-layer caching")
    assert "### Phase 3 Full (100%)" in out
    assert "### Rollback `flag`" in out
    # write_audit stamps lines with a fake clock: the chain still holds.
    assert "audit log: hash chain intact" in out


def test_html_to_the_default_file_and_markdown_to_a_named_one(
    recorded: Plan, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--html"]) == 0
    page = Path("rollout-report.html").read_text()
    assert "<svg" in page
    assert "report written to rollout-report.html" in capsys.readouterr().out
    assert main(["report", "-o", "r.md"]) == 0
    assert Path("r.md").read_text().startswith("# Rollout report")


def test_no_state_yet_is_one_line(plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 2
    assert "no state yet" in one_error_line(capsys)


def test_damaged_history_is_one_line(recorded: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    path = history_path(recorded.state_path)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    path.write_bytes(b"not a database at all" * 50)
    assert main(["report"]) == 2
    assert "cannot read the metric history" in one_error_line(capsys)


def test_damaged_audit_log_is_one_line(recorded: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    lines = recorded.audit_path.read_text().splitlines(keepends=True)
    lines[2] = "{not json\n"
    recorded.audit_path.write_text("".join(lines))
    assert main(["report"]) == 2
    assert "audit.jsonl:3" in one_error_line(capsys)


def test_unwritable_output_is_one_line(recorded: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--html", "-o", "no/such/folder/r.html"]) == 2
    assert "cannot write" in one_error_line(capsys)


def test_without_history_the_report_says_so(plan: Plan, capsys: pytest.CaptureFixture[str]) -> None:
    StateStore(plan.state_path).commit(rolled_back(), 0)
    write_audit(plan.audit_path)
    assert main(["report"]) == 0
    assert "no metric history" in capsys.readouterr().out
