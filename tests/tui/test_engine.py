"""The real engine thread against a plan whose sources point at closed ports: every pane
says its source is down, and stopping the app stops the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cockpit.tui.app import CockpitApp
from tests.tui.helpers import make_cockpit, screen_text


async def test_sources_down_are_shown_as_down(tmp_path: Path) -> None:
    app = CockpitApp(make_cockpit(tmp_path), environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):  # the HTTP probes call a source down after 3 failures
            await asyncio.sleep(0.1)
            text = screen_text(app)
            if text.count("DOWN:") >= 5:
                break
        await pilot.pause()
        text = screen_text(app)
        assert text.count("DOWN:") >= 5, text  # farms, farm, search, cache, db
        assert "connection refused" in text.lower() or "connect" in text.lower()
        engine = app.engine
        assert engine is not None
    assert not engine.is_alive()
