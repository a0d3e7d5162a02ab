"""`cockpit init`: the starter plan is written whole, validates, and never replaces a file."""

from __future__ import annotations

import errno
import fnmatch
import os
import tomllib
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from cockpit.cli import main
from cockpit.commands.init import env_references, starter_text
from cockpit.core.actions import rollback_steps, traffic_steps
from cockpit.core.config import ENV_VAR, load_config, load_plan
from cockpit.core.config_locate import line_index
from cockpit.core.process import run_command

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable the starter reads, and no $COCKPIT_CONFIG: every default applies."""
    for name in (*env_references(starter_text()), ENV_VAR):
        monkeypatch.delenv(name, raising=False)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_writes_the_starter_here_and_it_validates(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / "cockpit.toml"
    assert written.read_text(encoding="utf-8") == starter_text()
    assert sorted(os.listdir(tmp_path)) == ["cockpit.toml"]  # no temp file left behind
    capsys.readouterr()
    assert main(["validate", "-c", str(written)]) == 0
    assert "ok — Phase 3: multi-layer caching" in capsys.readouterr().out
    # And with an empty environment, not just without the plan's own variables.
    plan = load_plan(written, {})
    assert [phase.traffic for phase in plan.phases] == [10, 50, 100]
    assert [method.name for method in plan.rollbacks] == ["instant", "flag", "revert", "disable"]


def test_next_steps_name_the_variables_and_the_commands(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_URL", "https://farms.example.com")
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    for name in ("APP_URL", "REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL"):
        assert name in out
    assert "default redis://127.0.0.1:6379/0" in out
    assert "https://farms.example.com" not in out  # says it is set, never echoes a value
    for command in ("cockpit validate", "cockpit status", "cockpit run"):
        assert f"{command}  " in out  # no -c needed: they find ./cockpit.toml
    assert "TODO" in out


def test_with_c_writes_there_making_folders_and_the_steps_say_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    target = tmp_path / "deploy" / "plan one.toml"
    assert main(["--config", str(target), "init"]) == 0
    assert target.read_text(encoding="utf-8") == starter_text()
    out = capsys.readouterr().out
    assert f"cockpit validate -c '{target}'" in out
    assert main(["validate", "-c", str(target)]) == 0


def test_steps_say_c_when_cockpit_config_points_elsewhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "other.toml"))
    assert main(["init"]) == 0
    assert "cockpit status -c cockpit.toml" in capsys.readouterr().out


@pytest.mark.parametrize("old", [b"# mine\n", b"", b"\xff\x00 not even text"])
def test_refuses_to_overwrite_leaving_the_file_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: bytes
) -> None:
    target = tmp_path / "cockpit.toml"
    target.write_bytes(old)
    assert main(["init", "-c", str(target)]) == 2
    assert "already exists: not overwriting it" in one_line_error(capsys)
    assert target.read_bytes() == old
    assert os.listdir(tmp_path) == ["cockpit.toml"]


def test_refuses_a_dangling_symlink_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cockpit.toml"
    target.symlink_to(tmp_path / "nowhere.toml")
    assert main(["init", "-c", str(target)]) == 2
    assert "already exists" in one_line_error(capsys)
    assert not (tmp_path / "nowhere.toml").exists()


def test_a_folder_is_not_a_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "-c", str(tmp_path)]) == 2
    assert f"is a folder: name the file, e.g. -c {tmp_path}/cockpit.toml" in one_line_error(capsys)
    assert os.listdir(tmp_path) == []


def test_a_file_in_the_way_of_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "deploy").write_text("a file, not a folder")
    assert main(["init", "-c", str(tmp_path / "deploy" / "cockpit.toml")]) == 2
    assert "cannot write" in one_line_error(capsys)


def deny_creating_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a file in `folder` fails as in a folder without write permission (even for
    root, whom the mode would not stop)."""
    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and Path(path).parent == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)


def test_unwritable_folder_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deny_creating_in(tmp_path, monkeypatch)
    assert main(["init", "-c", str(tmp_path / "cockpit.toml")]) == 2
    line = one_line_error(capsys)
    assert line == f"cockpit: cannot write {tmp_path / 'cockpit.toml'}: Permission denied"
    assert os.listdir(tmp_path) == []


def racing_link(target: Path, content: bytes) -> Callable[..., None]:
    """os.link, after someone else has just created `target`."""
    real_link = os.link

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        target.write_bytes(content)
        real_link(src, dst, *args, **kwargs)

    return link


def test_a_file_created_meanwhile_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cockpit.toml"
    monkeypatch.setattr(os, "link", racing_link(target, b"theirs\n"))
    assert main(["init", "-c", str(target)]) == 2
    assert "already exists" in one_line_error(capsys)
    assert target.read_bytes() == b"theirs\n"
    assert os.listdir(tmp_path) == ["cockpit.toml"]


def no_hard_links(*_: Any, **__: Any) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")


def test_without_hard_links_it_still_creates_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setattr(os, "link", no_hard_links)
    target = tmp_path / "cockpit.toml"
    assert main(["init", "-c", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == starter_text()
    assert os.listdir(tmp_path) == ["cockpit.toml"]
    assert main(["init", "-c", str(target)]) == 2
    assert target.read_text(encoding="utf-8") == starter_text()


def test_the_template_is_package_data() -> None:
    """Found through importlib.resources (so an installed cockpit finds it), inside a
    package that setuptools finds, under a package-data pattern pyproject.toml ships."""
    resource = files("cockpit.templates").joinpath("starter.toml")
    assert resource.is_file()
    assert resource.read_text(encoding="utf-8") == starter_text()
    assert files("cockpit.templates").joinpath("__init__.py").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cockpit"]
    assert any(fnmatch.fnmatch("templates/starter.toml", p) for p in patterns)


def test_a_comment_above_every_key_and_table() -> None:
    text = starter_text()
    lines = text.splitlines()
    for path, number in line_index(text).items():
        if isinstance(path[-1], int):
            continue  # an array element (a rule, a checklist item), not a key
        above = lines[number - 2].strip()
        assert above.startswith("#"), f"line {number} ({'.'.join(map(str, path))}) has no comment"


def uncomment_examples(text: str) -> str:
    """Every commented-out table (`# [name]` down to the next blank line) made live."""
    out: list[str] = []
    live = False
    for line in text.splitlines():
        live = live or line.startswith("# [")
        if live and not line:
            live = False
        out.append(line[2:] if live else line)
    return "\n".join(out) + "\n"


def test_the_commented_examples_validate_once_uncommented(tmp_path: Path) -> None:
    text = uncomment_examples(starter_text())
    target = tmp_path / "cockpit.toml"
    target.write_text(text, encoding="utf-8")
    loaded = load_config(target, {})
    assert {"logs", "app"} <= set(loaded.plan.sources)
    assert loaded.plan.keymap == {"tick": "x"}


@pytest.mark.integration
def test_the_todo_commands_fail_loudly_until_replaced(tmp_path: Path) -> None:
    """An untouched starter never reports a traffic change or a rollback that did not happen."""
    target = tmp_path / "cockpit.toml"
    target.write_text(starter_text(), encoding="utf-8")
    plan = load_plan(target, {})
    commands = [s for s in traffic_steps(plan, 10, 1) if s.argv]
    commands += [s for name in ("instant", "revert") for s in rollback_steps(plan, name, 1)]
    commands = [s for s in commands if s.argv]
    assert len(commands) == 3
    for step in commands:
        result = run_command(step)
        assert not result.ok
        assert "TODO: edit" in result.output
    assert "set traffic to 10%" in run_command(commands[0]).output
