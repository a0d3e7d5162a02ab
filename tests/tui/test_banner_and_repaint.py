"""The rollback banner (method, live output, result) and repaint-only-what-changed."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Log

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.operator import Operator
from cockpit.core.rollout_events import Advance
from cockpit.core.rollout_model import Status
from cockpit.tui.app import CockpitApp
from cockpit.tui.widgets.banner import ArmedBanner
from cockpit.tui.widgets.latency import LatencyPane
from cockpit.tui.widgets.pane import Pane
from tests.tui.helpers import PASS, closed_port, environ, feed, fill, write_plan

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
TALK = (
    f'["{sys.executable}", "-c", '
    "\"print('switching alias to v41', flush=True); print('alias now v41')\"]"
)


def talking_rollback_app(tmp_path: Path) -> CockpitApp:
    """The bundled plan whose `instant` rollback prints two lines, with the rollout running."""
    path = write_plan(tmp_path)
    text = path.read_text()
    assert f"run = [{PASS}]" in text
    path.write_text(text.replace(f"run = [{PASS}]", f"run = [{TALK}]", 1))
    plan = load_plan(path, environ(closed_port()))
    cockpit = Cockpit(plan=plan, operator=Operator("alice", "10.0.0.5"), metrics=store_for(plan))
    fill(cockpit)
    cockpit.apply(cockpit.store.load(), Advance(by="bob", force=True, reason="test"))
    return CockpitApp(cockpit, engine=False, environ={})


def banner_text(app: CockpitApp) -> str:
    return str(app.query_one(ArmedBanner).render())


@SIZES
async def test_banner_shows_the_rollback_method_output_and_result(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = talking_rollback_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.pause()
        banner = app.query_one(ArmedBanner)
        assert not banner.display
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("enter", *"instant", "enter")  # the first method, typed to confirm
        await asyncio.wait_for(app.workers.wait_for_complete(), 20)
        await pilot.pause()
        assert app.cockpit.store.load().state.status is Status.ROLLED_BACK
        feed(app)
        await pilot.pause()
        log = "\n".join(str(line) for line in app.query_one("#events", Log).lines)
        output = [line for line in log.splitlines() if line.startswith("  │ ")]
        assert len(output) == 2  # the command's output, live, line by line (time-stamped)
        assert output[0].endswith(" switching alias to v41")
        assert output[1].endswith(" alias now v41")
        assert banner.display
        text = banner_text(app)
        assert "ROLLED BACK by 'instant'" in text
        assert ": done" in text
        if size[1] >= 30:  # a tall terminal shows the rollback's last lines in the banner
            assert text.splitlines()[-2].endswith(" alias now v41")
            assert re.search(r"^│ run: .*: ok in [\d.]+s$", text.splitlines()[-1])
            assert text.splitlines()[1].startswith("│ ")
            assert "│ │" not in text


async def test_banner_shows_a_running_rollback_and_its_newest_line(tmp_path: Path) -> None:
    app = talking_rollback_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        from cockpit.core.rollout_events import Rollback

        c = app.cockpit
        c.apply(c.store.load(), Rollback(by="alice", method="instant", reason="p99 spike"))
        feed(app)
        await pilot.pause()
        banner = app.query_one(ArmedBanner)
        assert banner.display
        assert "ROLLING BACK by 'instant' (by alice" in banner_text(app)
        assert "p99 spike" in banner_text(app)
        banner.output("  │ first line")
        banner.output("  │ second line")
        await pilot.pause()
        lines = banner_text(app).splitlines()
        assert len(lines) == 2  # 80x24: the head and only the newest line
        assert "second line" in lines[1]


async def test_an_unchanged_snapshot_repaints_nothing_and_a_new_value_its_line_only(
    tmp_path: Path,
) -> None:
    """Each second over a slow link: an unchanged pane sends nothing, a changed number
    repaints its own line (no layout, which would redraw the whole screen), and the screen
    then shows the new number while the pane's other lines stay as they were."""
    from tests.tui.helpers import make_cockpit

    cockpit = make_cockpit(tmp_path)
    fill(cockpit)
    app = CockpitApp(cockpit, engine=False, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        feed(app)
        await pilot.pause()
        latency = app.query_one(LatencyPane)
        lines_before = [latency.render_line(y).text for y in range(latency.size.height)]
        refreshed: list[tuple[str, tuple[Region, ...], bool]] = []
        for pane in app.query(Pane):
            original = pane.refresh

            def counting(*regions: Region, _p=pane, _o=original, **kw):  # type: ignore[no-untyped-def]
                refreshed.append((type(_p).__name__, regions, bool(kw.get("layout"))))
                return _o(*regions, **kw)

            pane.refresh = counting  # type: ignore[method-assign]
        feed(app)  # the same values again
        await pilot.pause()
        assert refreshed == []
        cockpit.metrics.record("farms.p95", time.time(), 990.0)  # one shown value changes
        feed(app)
        await pilot.pause()
        names = [name for name, _, _ in refreshed]
        assert "CachePane" not in names
        assert "DbPane" not in names
        latency_calls = [
            (regions, layout) for name, regions, layout in refreshed if name == "LatencyPane"
        ]
        assert len(latency_calls) == 1
        regions, layout = latency_calls[0]
        assert not layout
        rows = [lines_before[r.y] for r in regions]
        assert [r.height for r in regions] == [1] * len(regions)
        assert any(row.lstrip().startswith("farms") for row in rows)
        assert not any(row.lstrip().startswith("Latency") for row in rows)  # the head stays
        await pilot.pause()
        screen = app.export_screenshot()
        assert "990ms" in screen
        lines_after = [latency.render_line(y).text for y in range(latency.size.height)]
        assert lines_after[0] == lines_before[0]
