"""`[keymap]` is checked with the plan: unknown binding ids and things that are not keys are
refused with the file, line and key, and the core's list of ids is the UI's."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.core.config import ConfigError, load_plan
from cockpit.core.keys import KEY_IDS

BUNDLED = Path(__file__).resolve().parents[2] / "cockpit.toml"


def plan_with(tmp_path: Path, keymap: str) -> Path:
    path = tmp_path / "cockpit.toml"
    path.write_text(BUNDLED.read_text() + f"\n[keymap]\n{keymap}\n")
    return path


def test_known_ids_remap(tmp_path: Path) -> None:
    plan = load_plan(
        plan_with(tmp_path, 'advance = "A"\nrollback = "ctrl+r"\nhelp = "f1,question_mark"'), {}
    )
    assert dict(plan.keymap) == {"advance": "A", "rollback": "ctrl+r", "help": "f1,question_mark"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('advnce = "A"', "keymap.advnce: no key binding 'advnce' (did you mean 'advance'?)"),
        ('frobnicate = "A"', "keymap.frobnicate: no key binding 'frobnicate' (one of: advance"),
        ('advance = "ctrl r"', "keymap.advance: 'ctrl r' is not a key"),
        ('advance = ""', "keymap.advance: must not be blank"),
    ],
)
def test_bad_keymaps_name_file_line_and_key(tmp_path: Path, line: str, expected: str) -> None:
    path = plan_with(tmp_path, line)
    with pytest.raises(ConfigError) as caught:
        load_plan(path, {})
    message = str(caught.value)
    assert "\n" not in message
    line_number = len(path.read_text().splitlines())
    assert message.startswith(f"{path}:{line_number}: ")
    assert expected in message


def test_the_ui_binds_exactly_the_core_ids() -> None:
    from cockpit.demo.app import DemoApp
    from cockpit.tui.app import CockpitApp

    def ids(app_class: type) -> set[str]:
        return {b.id for b in app_class.BINDINGS if b.id is not None}  # type: ignore[attr-defined]

    assert ids(CockpitApp) == {i for i in KEY_IDS if not i.startswith("demo.")}
    assert ids(DemoApp) - ids(CockpitApp) == {i for i in KEY_IDS if i.startswith("demo.")}
