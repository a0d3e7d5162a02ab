"""The errors pane's newest log lines (fake feed, real Snapshots): shown with their time,
cleaned of terminal escapes, dimmed behind the reason when the logs source is down or stale."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.content import Content

from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.metrics.store import SourceStatus
from cockpit.core.operator import Operator
from cockpit.tui.app import CockpitApp
from cockpit.tui.widgets.errors import ErrorsPane, clean
from tests.tui.helpers import closed_port, environ, feed, fill, write_plan

COMMENTED = (
    '# [sources.logs]\n# kind = "logs"\n# command = ["vercel", "logs", "--prod", "--follow"]\n'
)


def cockpit_with_logs(tmp_path: Path) -> Cockpit:
    path = write_plan(tmp_path)
    text = path.read_text()
    assert COMMENTED in text
    path.write_text(text.replace(COMMENTED, '[sources.logs]\nkind = "logs"\ncommand = ["true"]\n'))
    plan = load_plan(path, environ(closed_port()))
    cockpit = Cockpit(plan=plan, operator=Operator("alice", "10.0.0.5"), metrics=store_for(plan))
    fill(cockpit)
    return cockpit


def hhmmss(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def logs_said(cockpit: Cockpit, lines: list[tuple[float, str, str]], *, up: bool = True) -> None:
    """What a poll of the logs source leaves in the store: its status, rate and lines."""
    store, now = cockpit.metrics, time.time()
    if up:
        store.set_source("logs", SourceStatus(up=True, last_ok=now, last_poll=now))
        store.record("logs.errors_per_min", now, 3.0)
    else:
        error = "command exited with status 1: vercel: not logged in"
        store.set_source("logs", SourceStatus(False, error, now - 5, now))
    store.set_details("logs", {"recent": tuple(lines)})


def pane_lines(app: CockpitApp) -> list[str]:
    content = app.query_one(ErrorsPane).render()
    assert isinstance(content, Content)
    return content.plain.split("\n")


def styles_of(app: CockpitApp, text: str) -> set[str]:
    """The styles over the part of the pane's content where `text` is."""
    content = app.query_one(ErrorsPane).render()
    assert isinstance(content, Content)
    start = content.plain.index(text)
    return {str(s.style) for s in content.spans if s.start <= start < s.end}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mERROR\x1b[0m db down", "ERROR db down"),  # colours
        ("ERROR\x1b[2J\x1b[H wiped", "ERROR wiped"),  # clear screen, cursor home
        ("\x1b]0;pwned\x07ERROR title", "ERROR title"),  # window title (OSC ... BEL)
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ ERROR", "link ERROR"),  # hyperlink (ST)
        ("ERROR \x9b2J c1", "ERROR  c1"),  # 8-bit CSI
        ("ERROR\rforged\x08\x07", "ERRORforged"),  # carriage return, backspace, bell
        ("ERROR \u202egnirts\u202c", "ERROR gnirts"),  # bidi override
        ("\tERROR\ttab", "ERROR tab"),
        ("ERROR \x1b", "ERROR"),  # a lone escape at the end
    ],
)
def test_clean_leaves_nothing_that_drives_a_terminal(raw: str, shown: str) -> None:
    assert clean(raw) == shown


async def test_the_newest_line_at_80x24_and_three_when_asked(tmp_path: Path) -> None:
    cockpit = cockpit_with_logs(tmp_path)
    now = time.time()
    lines = [(now - 30 + n, "error", f"ERROR request {n} failed") for n in range(5)]
    lines.append((now - 1, "warn", "WARN \x1b[33mslow\x1b[0m query\x1b]0;x\x07"))
    logs_said(cockpit, lines)
    app = CockpitApp(cockpit, engine=False, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        feed(app)
        await pilot.pause()
        shown = pane_lines(app)
        assert shown[3] == "log errors/min 3/min"
        assert shown[4:] == [f"{hhmmss(now - 1)} WARN slow query"]
        assert "$warning" in styles_of(app, "WARN slow query")
        app.query_one(ErrorsPane).log_lines = 3
        await pilot.pause()
        assert pane_lines(app)[4:] == [
            f"{hhmmss(now - 27)} ERROR request 3 failed",
            f"{hhmmss(now - 26)} ERROR request 4 failed",
            f"{hhmmss(now - 1)} WARN slow query",
        ]
        assert "$error" in styles_of(app, "ERROR request 4 failed")
        assert not app.screen.has_class("-small")


async def test_a_down_logs_source_says_so_and_dims_its_old_lines(tmp_path: Path) -> None:
    cockpit = cockpit_with_logs(tmp_path)
    then = time.time() - 600
    logs_said(cockpit, [(then, "error", "ERROR last words")], up=False)
    app = CockpitApp(cockpit, engine=False, environ={})
    async with app.run_test(size=(160, 48)) as pilot:
        feed(app)
        await pilot.pause()
        shown = pane_lines(app)
        assert shown[3] == "DOWN: command exited with status 1: vercel: not logged in"
        assert shown[4] == f"{hhmmss(then)} ERROR last words"
        assert styles_of(app, "ERROR last words") == {"dim"}  # not shown as live


async def test_stale_lines_are_dimmed_with_the_rate_age(tmp_path: Path) -> None:
    cockpit = cockpit_with_logs(tmp_path)
    store, old = cockpit.metrics, time.time() - 120
    store.set_source("logs", SourceStatus(up=True, last_ok=old, last_poll=old))
    store.record("logs.errors_per_min", old, 3.0)
    store.set_details("logs", {"recent": ((old, "error", "ERROR from before"),)})
    app = CockpitApp(cockpit, engine=False, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        feed(app)
        await pilot.pause()
        shown = pane_lines(app)
        assert shown[3].startswith("log errors/min 3/min stale 2m")
        assert styles_of(app, "ERROR from before") == {"dim"}


async def test_no_lines_yet(tmp_path: Path) -> None:
    cockpit = cockpit_with_logs(tmp_path)
    logs_said(cockpit, [])
    app = CockpitApp(cockpit, engine=False, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        feed(app)
        await pilot.pause()
        assert pane_lines(app)[3:] == ["log errors/min 3/min"]
