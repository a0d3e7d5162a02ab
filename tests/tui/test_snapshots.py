"""SVG snapshots (pytest-textual-snapshot) of the fixed sample in `cockpit.tui.sample`: the main
screen in each theme, the rollback picker, the armed automatic rollback and a down source.

After an intended change to the screen, look at the failure report, then rewrite them:
`.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from cockpit.tui.sample import Sample, Scene, build
from cockpit.tui.screens.rollback import RollbackPicker
from cockpit.tui.themes import THEMES
from tests.tui.helpers import BUNDLED

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def fixed_zone() -> Iterator[None]:
    """The header's local time is UTC here, and Textual's own NO_COLOR handling stays off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        patch.delenv("NO_COLOR", raising=False)
        time.tzset()
        yield
    time.tzset()


def sample(tmp_path: Path, scene: Scene = "healthy") -> Sample:
    return build(BUNDLED, tmp_path, scene)


@pytest.mark.parametrize("theme", list(THEMES))
def test_main_screen_in_each_theme(snap_compare: SnapCompare, tmp_path: Path, theme: str) -> None:
    shown = sample(tmp_path)
    assert snap_compare(shown.app(theme), run_before=shown.show)


def test_main_screen_at_160x48(snap_compare: SnapCompare, tmp_path: Path) -> None:
    shown = sample(tmp_path)
    assert snap_compare(shown.app(), run_before=shown.show, terminal_size=(160, 48))


def test_rollback_picker(snap_compare: SnapCompare, tmp_path: Path) -> None:
    shown = sample(tmp_path)

    async def open_picker(pilot: Pilot[Any]) -> None:
        await shown.show(pilot)
        await pilot.press("r")
        deadline = time.monotonic() + 30
        while not isinstance(pilot.app.screen, RollbackPicker):  # previews come from a worker
            assert time.monotonic() < deadline, "the rollback picker never opened"
            await asyncio.sleep(0.05)
        await pilot.pause()

    assert snap_compare(shown.app(), run_before=open_picker)


def test_armed_automatic_rollback(snap_compare: SnapCompare, tmp_path: Path) -> None:
    shown = sample(tmp_path, "breaching")
    assert shown.armed is not None
    assert snap_compare(shown.app(), run_before=shown.show)


def test_armed_automatic_rollback_at_160x48(snap_compare: SnapCompare, tmp_path: Path) -> None:
    shown = sample(tmp_path, "breaching")
    assert snap_compare(shown.app(), run_before=shown.show, terminal_size=(160, 48))


def test_database_down(snap_compare: SnapCompare, tmp_path: Path) -> None:
    shown = sample(tmp_path, "db-down")
    assert snap_compare(shown.app(), run_before=shown.show)
