"""Command-line parsing details: options before or after the command, safe printing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.cli import main
from cockpit.commands.common import printable

BUNDLED = str(Path(__file__).resolve().parents[2] / "cockpit.toml")


@pytest.mark.parametrize(
    "argv",
    [["-c", BUNDLED, "validate"], ["validate", "-c", BUNDLED], ["--config", BUNDLED, "validate"]],
)
def test_config_option_before_or_after_the_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    assert "ok — Phase 3: multi-layer caching" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: cockpit" in capsys.readouterr().out


def test_printable_escapes_control_characters() -> None:
    assert printable("evil\x1b[2J\nforged") == "evil\\x1b[2J\\nforged"
    assert printable("plain text, ünïcode ✔") == "plain text, ünïcode ✔"
