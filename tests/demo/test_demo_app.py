"""The demo's screen at 80x24: the notice in the header, fault keys said in the event log."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Log, Static

from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.engine_thread import series_for
from cockpit.core.operator import Operator
from cockpit.demo.app import DemoApp
from cockpit.demo.faults import FaultState, FaultSwitch
from cockpit.demo.plan import DemoTarget, write_demo_plan
from cockpit.demo.timescale import NOTICE
from cockpit.tui.messages import SnapshotReady


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_app(tmp_path: Path) -> tuple[DemoApp, list[str]]:
    port = closed_port()  # nothing listens: this test needs no platform
    plan = write_demo_plan(tmp_path, DemoTarget({"APP_URL": f"http://127.0.0.1:{port}"}, 40))
    cockpit = Cockpit(plan=plan, operator=Operator("alice"), metrics=store_for(plan))
    redis_calls: list[str] = []
    switch = FaultSwitch(
        FaultState(), lambda: redis_calls.append("stop"), lambda: redis_calls.append("start")
    )
    return DemoApp(cockpit, switch, intro=("plan: here",), engine=False), redis_calls


def screen_text(app: DemoApp) -> str:
    parts = [str(w.render()) for w in app.screen.query(Static) if w.display]
    return "\n".join([*parts, *app.query_one("#events", Log).lines])


def events(app: DemoApp) -> str:
    return "\n".join(app.query_one("#events", Log).lines)


async def wait_for(pilot: object, app: DemoApp, text: str) -> None:
    for _ in range(200):
        if text in events(app):
            return
        await app.animator.wait_for_idle()
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"{text!r} never said; events:\n{events(app)}")


async def test_notice_and_fault_keys_at_80x24(tmp_path: Path) -> None:
    app, redis_calls = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        snapshot = app.cockpit.snapshot()
        app.post_message(SnapshotReady(snapshot, series_for(snapshot, app.cockpit.metrics)))
        await pilot.pause()
        header = str(app.query_one("#header", Static).render())
        assert NOTICE in header
        assert "demo faults: 1 error spike, 2 slow database, 3 Redis down, 0 clear" in events(app)
        assert "plan: here" in events(app)
        # The cockpit's own start-up ran once (Textual calls each class's on_mount itself).
        assert (
            sum(line.startswith("watching ") for line in app.query_one("#events", Log).lines) == 1
        )

        await pilot.press("1")
        await wait_for(pilot, app, "demo: fault ON: error spike")
        assert app.faults.active() == {"errors"}

        await pilot.press("3")
        await wait_for(pilot, app, "demo: fault ON: Redis down")
        assert redis_calls == ["stop"]

        await pilot.press("0")
        await wait_for(pilot, app, "demo: fault off: redis-down")
        assert "demo: fault off: errors" in events(app)
        assert app.faults.active() == set()
        assert redis_calls == ["stop", "start"]

        await pilot.press("0")
        await wait_for(pilot, app, "demo: no fault is on")


async def test_scheduled_faults_are_said_too(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.faults.set("slow-db", True)  # as the --fault schedule does, from its thread
        await wait_for(pilot, app, "demo: fault ON: slow database")
    assert app._fault_changed not in app.faults.listeners  # let go on the way out


async def test_fault_keys_wait_while_a_question_is_open(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h")  # hold: asks for a reason
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        assert app.faults.active() == set()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("2")
        await wait_for(pilot, app, "demo: fault ON: slow database")
