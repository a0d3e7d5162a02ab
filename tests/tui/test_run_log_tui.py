"""`cockpit run --log FILE` with the screen: what the event pane shows, and what libraries
log from any thread, goes to the file, stamped — and never onto the screen."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from textual.widgets import Log

from cockpit.core.runlog import capture, open_log
from cockpit.tui.app import CockpitApp
from tests.tui.helpers import feed, fill, make_cockpit

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


async def test_the_event_pane_and_library_warnings_go_to_the_log(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    fill(cockpit)
    path = tmp_path / "run.log"
    with capture(open_log(path), secrets=["s3cret"]):
        app = CockpitApp(cockpit, engine=False, environ={})
        async with app.run_test(size=(80, 24)) as pilot:
            feed(app)
            app.say("held: p99 spike (token s3cret)")
            engine = threading.Thread(
                target=lambda: logging.getLogger("httpx").warning("connection pool is full")
            )
            engine.start()
            engine.join()
            await pilot.pause()
            pane = "\n".join(str(line) for line in app.query_one("#events", Log).lines)
    assert "connection pool is full" not in pane  # a library's record is not an event
    lines = path.read_text().splitlines()
    assert all(re.match(f"{STAMP} ", line) for line in lines)
    text = [line.split(" ", 1)[1] for line in lines]
    assert f"watching {cockpit.plan.config_path} as alice@10.0.0.5" in text
    assert "held: p99 spike (token ****)" in text
    assert "WARNING httpx: connection pool is full" in text
