"""The cockpit screen driven by a fake snapshot feed (real Snapshots, no engine thread)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Log, OptionList

from cockpit.core.autopilot import Armed
from cockpit.core.rollout_events import Advance
from cockpit.core.rollout_model import PREFLIGHT, Status
from cockpit.tui.app import CockpitApp, theme_for
from cockpit.tui.messages import SnapshotReady
from cockpit.tui.screens.ask import AskScreen
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.rollback import RollbackPicker
from tests.tui.helpers import feed, fill, make_cockpit, screen_text

# Every key at the smallest supported terminal and at a roomy one.
SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


def app_for(tmp_path: Path, *, running: bool = False, **kwargs: object) -> CockpitApp:
    cockpit = make_cockpit(tmp_path)
    fill(cockpit)
    if running:
        cockpit.apply(cockpit.store.load(), Advance(by="bob", force=True, reason="test"))
    return CockpitApp(cockpit, engine=False, environ={}, **kwargs)  # type: ignore[arg-type]


def events(app: CockpitApp) -> str:
    return "\n".join(str(line) for line in app.query_one("#events", Log).lines)


async def said(app: CockpitApp, pilot: object, text: str, seconds: float = 20.0) -> None:
    """The event pane shows `text` (its messages arrive asynchronously: poll, don't race)."""
    for _ in range(int(seconds * 20)):
        if text in events(app):
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"never said {text!r}; the events were:\n{events(app)}")


async def settle(app: CockpitApp, pilot: object) -> None:
    await asyncio.wait_for(app.workers.wait_for_complete(), 20)
    await pilot.pause()  # type: ignore[attr-defined]


async def test_panes_show_a_snapshot_at_80x24(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        feed(app)
        await pilot.pause()
        text = screen_text(app)
        assert "Phase 3: multi-layer caching" in text
        assert "PENDING" in text
        assert "farms" in text
        assert "search" in text
        assert "http" in text
        assert "75ms" in text
        assert "179ms" in text
        assert "+78%" in text  # p50, p95, improvement
        assert "Waiting:" in text
        assert "checks open" in text
        assert "alice@10.0.0.5" in text
        assert app.theme == "dark"


async def test_bigger_terminal_shows_the_whole_checklist(tmp_path: Path) -> None:
    app = app_for(tmp_path, running=True)
    async with app.run_test(size=(160, 48)) as pilot:
        feed(app)
        await pilot.pause()
        text = screen_text(app)
        assert "1/3 Shadow" in text
        assert "10%" in text
        assert "RUNNING" in text
        assert "improvement(farms.p95) >= 40%" in text
        assert "of 48h" in text  # time in phase against bake
        checks = app.query_one(OptionList)
        assert checks.option_count == 3  # phase 1's manual checks


async def test_small_terminal_asks_for_room(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(70, 20)) as pilot:
        feed(app)
        await pilot.pause()
        assert app.screen.has_class("-small")
        assert not app.query_one("#main").display
        assert "needs 80x24" in screen_text(app)
        assert "this terminal is 70x20" in screen_text(app)


@SIZES
async def test_advance_refused_with_reasons_then_forced(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path)
    store = app.cockpit.store
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        assert "refused" in app.screen.title_text
        assert any("check open" in str(line) for line in app.screen.body)
        await pilot.press("escape")
        await settle(app, pilot)
        await said(app, pilot, "advance refused")
        assert store.load().state.status is Status.PENDING
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("enter")  # no reason: not accepted
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"staging signed off", "enter")
        await settle(app, pilot)
        state = store.load().state
        assert state.status is Status.RUNNING
        assert state.phase == 1
        assert state.history[-1].forced
        assert state.history[-1].reason.startswith("staging signed off (overrode: check open")
        await said(app, pilot, "advanced to phase 1 Shadow")


@SIZES
async def test_hold_asks_a_reason_and_resume_lifts_it(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path, running=True)
    store = app.cockpit.store
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"p99 spike", "enter")
        await settle(app, pilot)
        state = store.load().state
        assert state.status is Status.HOLDING
        assert state.hold_reason == "p99 spike"
        assert "HOLDING: p99 spike" in screen_text(app)
        await pilot.press("u")
        await settle(app, pilot)
        assert store.load().state.status is Status.RUNNING


@SIZES
async def test_rollback_picker_lists_methods_and_needs_the_name(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path, running=True)
    store = app.cockpit.store
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("r")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, RollbackPicker)
        methods = picker.query_one(OptionList)
        assert [methods.get_option_at_index(i).id for i in range(methods.option_count)] == [
            "instant",
            "flag",
            "revert",
            "disable",
        ]
        assert "ETA 30s" in str(methods.get_option_at_index(0).prompt)
        assert "git revert --no-edit HEAD" in str(methods.get_option_at_index(2).prompt)
        await pilot.press("down", "enter")  # flag
        await pilot.press(*"instant", "enter")  # the wrong name
        await pilot.pause()
        assert app.screen is picker
        assert store.load().state.status is Status.RUNNING
        await pilot.press(*"flag", "enter")
        await settle(app, pilot)
        state = store.load().state
        assert state.status is Status.ROLLED_BACK
        assert state.rollback is not None
        assert state.rollback.method == "flag"
        await said(app, pilot, "rolling back by 'flag'")


@SIZES
async def test_space_ticks_and_unticks_the_selected_check(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path)
    store = app.cockpit.store
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.pause()
        await pilot.press("down", "space")  # the second preflight item
        await settle(app, pilot)
        ticks = store.load().state.ticks[PREFLIGHT]
        assert list(ticks) == ["Integration tests passing (20/20)"]
        assert ticks["Integration tests passing (20/20)"].by == "alice@10.0.0.5"
        assert "alice@10.0.0.5" in str(app.query_one(OptionList).get_option_at_index(1).prompt)
        await pilot.press("space")
        await settle(app, pilot)
        assert dict(store.load().state.ticks.get(PREFLIGHT, {})) == {}


@SIZES
async def test_t_cycles_themes_and_no_color_is_mono(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("t")
        assert app.theme == "light"
        await pilot.press("t", "t", "t")
        assert app.theme == "dark"
    assert theme_for("light", None, {"NO_COLOR": "1"}) == "mono"
    assert theme_for("light", "high-contrast", {}) == "high-contrast"
    assert theme_for("light", None, {}) == "light"


@SIZES
async def test_help_lists_the_live_keys_and_the_keymap_remaps(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=size) as pilot:
        app.set_keymap({"advance": "A"})
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {row[2]: row[0] for row in app.screen.rows}
        assert rows["advance"] == "A"
        assert rows["rollback"] == "r"
        assert rows["quit"] == "q"
        await pilot.press("escape")
        await pilot.press("a")  # no longer bound
        await pilot.pause()
        assert not isinstance(app.screen, AskScreen)


@SIZES
async def test_read_only_refuses_acting_keys(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_for(tmp_path, running=True, read_only=True)
    version = app.cockpit.store.load().version
    async with app.run_test(size=size) as pilot:
        feed(app)
        for key in ("a", "h", "r", "space"):
            await pilot.press(key)
            await settle(app, pilot)
            assert not isinstance(app.screen, (AskScreen, RollbackPicker))
        log = events(app)
        for what in ("advance", "hold", "rollback", "tick"):
            assert f"read-only cockpit: {what} refused" in log
        assert "READ-ONLY" in screen_text(app)
    assert app.cockpit.store.load().version == version


@SIZES
async def test_dry_run_shows_what_would_run_and_changes_nothing(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path, running=True)
    version = app.cockpit.store.load().version
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("d", "a")
        await settle(app, pilot)
        await said(app, pilot, "dry run: would NOT advance to phase 2 Partial (50%)")
        await said(app, pilot, "-c pass")
        await pilot.press("h")
        await settle(app, pilot)
        await said(app, pilot, "dry run: would hold")
    assert app.cockpit.store.load().version == version


@SIZES
async def test_armed_banner_counts_down_and_c_cancels(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_for(tmp_path, running=True)
    rule = "http.error_rate > 2% for 5m"
    async with app.run_test(size=size) as pilot:
        snapshot = app.cockpit.snapshot()
        armed = Armed(rule, f"{rule}: 2.4% > 2%", snapshot.taken_at, snapshot.taken_at + 30)
        app.post_message(SnapshotReady(snapshot, {}, armed))
        await pilot.pause()
        banner = app.query_one("#banner")
        assert banner.display
        assert "AUTO-ROLLBACK by 'flag' in 30s" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"load test", "enter")
        await settle(app, pilot)
        cancelled = app.cockpit.store.load().state.auto_cancelled
        assert cancelled[rule].reason == "load test"
        app.post_message(SnapshotReady(app.cockpit.snapshot(), {}, None))
        await pilot.pause()
        assert not banner.display


@SIZES
async def test_q_quits(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@SIZES
async def test_q_asks_first_while_an_action_runs(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=size) as pilot:
        app.acting = 1  # as while a rollback's commands run
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        assert "Quit anyway?" in app.screen.title_text
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.is_running
        assert not isinstance(app.screen, AskScreen)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_code == 0


@SIZES
async def test_s_shows_the_slow_queries_screen_even_read_only(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    from cockpit.tui.screens.slow import SlowScreen

    app = app_for(tmp_path, read_only=True)
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SlowScreen)
        assert "the engine is not running" in screen_text(app)  # no engine in this test
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SlowScreen)


@SIZES
async def test_b_captures_a_baseline_after_asking(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_for(tmp_path)
    app.started_at -= 60  # the cockpit has watched for the minute `fill` recorded
    store = app.cockpit.store
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        assert "baseline" in app.screen.title_text
        await pilot.press("escape")
        await settle(app, pilot)
        assert store.load().state.baseline is None  # not confirmed: nothing kept
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("enter")
        await settle(app, pilot)
        baseline = store.load().state.baseline
        assert baseline is not None
        assert baseline.by == "alice@10.0.0.5"
        assert baseline.values["farms.p95"] == 164.5  # the median of 150..179 that `fill` wrote
        await said(app, pilot, "baseline captured over")


async def test_the_event_pane_follows_the_newest_line(tmp_path: Path) -> None:
    app = app_for(tmp_path, running=True)
    async with app.run_test(size=(80, 24)) as pilot:
        for i in range(40):
            app.say(f"line {i}")
        feed(app)  # the panes fill and the event pane shrinks
        await said(app, pilot, "line 39")
        for i in range(40, 60):
            app.say(f"line {i}")
        await said(app, pilot, "line 59")
        log = app.query_one("#events", Log)
        assert log.scroll_y == log.max_scroll_y > 0
        assert "line&#160;59" in app.export_screenshot()  # on screen, not only in the buffer
