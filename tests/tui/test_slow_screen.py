"""The slow-queries screen, pushed onto the cockpit with made-up reports (no engine), at
80x24 and 160x48: what it says in each case, and that Esc, q and s close it."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any, cast

import pytest
from textual.containers import VerticalScroll

from cockpit.core.control import Refused
from cockpit.core.engine_thread import EngineThread, SlowReport
from cockpit.core.metrics.store import SourceStatus
from cockpit.core.sources.postgres_slowest import Slowest, SlowQuery
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.slow import SlowScreen, ms_text, slow_screen
from tests.tui.helpers import feed, fill, make_cockpit, screen_text

NOW = 1_000_000.0
SIZES = [(80, 24), (160, 48)]
LONG = "SELECT f.id, f.name, f.region FROM farms f JOIN regions r ON r.id = f.region_id " * 3

QUERIES = (
    SlowQuery(11, 1, 2500.0, 2500.0, "SELECT pg_sleep($1)"),
    SlowQuery(12, 40, 310.5, 12420.0, LONG[:199] + "…"),
    SlowQuery(13, 9000, 0.42, 3780.0, "SELECT $1::int * $2"),
)


def report(
    slowest: Slowest, *, up: bool | None = True, error: str | None = None, name: str = "db"
) -> SlowReport:
    status = SourceStatus(up, error, NOW - 1, NOW - 1)
    return SlowReport(name, NOW, status, slowest, stale_after_s=6.0, slow_query_s=2.0)


def ranked(age: float = 1.0, **changes: Any) -> Slowest:
    values: dict[str, Any] = {
        "queries": QUERIES,
        "taken_at": NOW - age,
        "span_s": 62.0,
        "checked_at": NOW - age,
    }
    values.update(changes)
    return Slowest(**values)


def app_for(tmp_path: Path) -> CockpitApp:
    cockpit = make_cockpit(tmp_path)
    fill(cockpit)
    return CockpitApp(cockpit, engine=False, environ={})


async def shown(tmp_path: Path, size: tuple[int, int], screen: SlowScreen) -> str:
    app = app_for(tmp_path)
    async with app.run_test(size=size) as pilot:
        feed(app)
        await pilot.pause()
        await app.push_screen(screen)
        await pilot.pause()
        assert app.screen is screen
        return screen_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_the_slowest_are_listed_with_their_numbers_and_age(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    text = await shown(tmp_path, size, SlowScreen([report(ranked())]))
    assert "Slow queries: slowest on average over the last window" in text
    assert "ranked 1s ago, over the last 1m2s" in text
    assert "1. mean    2.50s  calls      1  total    2.50s over 2s (slow_query)" in text
    assert "2. mean  310.5ms  calls     40  total   12.42s" in text
    assert "3. mean   0.42ms  calls   9000  total    3.78s" in text
    assert "SELECT pg_sleep($1)" in text
    assert "SELECT f.id, f.name" in text
    assert "last known" not in text


@pytest.mark.parametrize("size", SIZES)
async def test_a_down_source_says_so_and_keeps_the_last_list_with_its_age(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    down = report(ranked(age=40.0), up=False, error="connection refused (127.0.0.1:5432)")
    text = await shown(tmp_path, size, SlowScreen([down]))
    assert "source down: connection refused (127.0.0.1:5432)" in text
    assert "last known, ranked 40s ago, over the last 1m2s (stale)" in text
    assert "SELECT pg_sleep($1)" in text


@pytest.mark.parametrize(
    ("screen", "said"),
    [
        (SlowScreen([]), "no postgres source in the plan"),
        (
            SlowScreen([], problem="the engine is not running"),
            "cannot ask the engine: the engine is not running",
        ),
        (SlowScreen([report(Slowest(), up=None)]), "waiting for the first poll"),
        (
            SlowScreen([report(Slowest(checked_at=NOW - 1, reason="first sample"))]),
            "no ranking now: first sample",
        ),
        (
            SlowScreen([report(ranked(queries=()))]),
            "no slow queries in the last window (ranked 1s ago, over the last 1m2s):"
            " no statement ran",
        ),
        (
            SlowScreen([report(ranked(age=20.0, checked_at=NOW - 1, reason="stats were reset"))]),
            "no ranking now: stats were reset\nlast known, ranked 20s ago, over the last 1m2s",
        ),
        (
            SlowScreen([report(ranked(queries=(), hidden_calls=22))]),
            "22 calls by other roles' statements not shown: GRANT pg_read_all_stats",
        ),
    ],
)
async def test_it_says_honestly_why_there_is_no_list(
    tmp_path: Path, screen: SlowScreen, said: str
) -> None:
    text = await shown(tmp_path, (80, 24), screen)
    assert said in text


async def test_stale_data_is_marked_stale_even_when_the_source_is_up(tmp_path: Path) -> None:
    text = await shown(tmp_path, (80, 24), SlowScreen([report(ranked(age=9.0))]))
    assert "last known, ranked 9s ago, over the last 1m2s (stale)" in text


async def test_two_postgres_sources_each_have_their_part(tmp_path: Path) -> None:
    reports = [report(ranked(), name="primary"), report(Slowest(), up=None, name="replica")]
    text = SlowScreen(reports).text()
    assert text.index("primary") < text.index("SELECT pg_sleep") < text.index("replica")
    assert text.endswith("replica\nwaiting for the first poll")


@pytest.mark.parametrize("key", ["escape", "q", "s"])
async def test_esc_q_and_s_close_it(tmp_path: Path, key: str) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        main = app.screen
        await app.push_screen(SlowScreen([report(ranked())]))
        await pilot.pause()
        assert isinstance(app.screen, SlowScreen)
        await pilot.press(key)
        await pilot.pause()
        assert app.screen is main


def test_times_read_as_people_read_them() -> None:
    assert [ms_text(v) for v in (0.4213, 12.34, 999.94, 2049.0)] == [
        "0.42ms",
        "12.3ms",
        "999.9ms",
        "2.05s",
    ]


# -- the helper the app calls ----------------------------------------------------------------------


class FakeEngine:
    """Answers `slowest()` as EngineThread does: a future, already done."""

    def __init__(self, answer: tuple[SlowReport, ...] | BaseException | None) -> None:
        self.answer = answer

    def slowest(self) -> concurrent.futures.Future[tuple[SlowReport, ...]]:
        future: concurrent.futures.Future[tuple[SlowReport, ...]] = concurrent.futures.Future()
        if isinstance(self.answer, BaseException):
            future.set_exception(self.answer)
        elif self.answer is not None:
            future.set_result(self.answer)
        return future  # None: never answers


async def test_the_helper_asks_the_engine() -> None:
    reports = (report(ranked()),)
    screen = await slow_screen(cast(EngineThread, FakeEngine(reports)))
    assert screen.reports == reports
    assert screen.problem is None


async def test_the_helper_says_why_it_could_not_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await slow_screen(None)).problem == "the engine is not running"
    refused = FakeEngine(Refused("the engine is starting: ask again in a moment"))
    screen = await slow_screen(cast(EngineThread, refused))
    assert screen.problem == "the engine is starting: ask again in a moment"
    monkeypatch.setattr("cockpit.tui.screens.slow.ASK_TIMEOUT_S", 0.01)
    stuck = await slow_screen(cast(EngineThread, FakeEngine(None)))
    assert stuck.problem == "the engine did not answer in 0.01s"


async def test_a_long_list_scrolls_from_the_keyboard_at_80x24(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    reports = [report(ranked()), report(ranked(), name="replica")]
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(SlowScreen(reports))
        await pilot.pause()
        scroll = app.screen.query_one(VerticalScroll)
        assert scroll.has_focus
        assert scroll.max_scroll_y > 0  # more than fits
        await pilot.press("end")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
