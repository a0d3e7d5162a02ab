"""Watch carries out the autopilot's decisions on the real state file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cockpit.core.autopilot import Blind, Fire
from cockpit.core.rollout_events import Advance
from cockpit.core.rollout_model import Status
from cockpit.core.watch import Watch
from tests.unit.test_control import make_cockpit


def running(tmp_path: Path) -> Watch:
    cockpit = make_cockpit(tmp_path)
    cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    return Watch(cockpit, say=lambda line: None)


def test_blind_hold_holds_the_rollout(tmp_path: Path) -> None:
    watch = running(tmp_path)
    watch._carry_out(Blind("hold", "http.p95 > 2s for 10m", "monitoring blind: stale"))
    state = watch.cockpit.store.load().state
    assert state.status is Status.HOLDING
    assert state.hold_reason == "monitoring blind: stale"


def test_blind_page_only_tells(tmp_path: Path) -> None:
    watch = running(tmp_path)
    version = watch.cockpit.store.load().version
    said: list[str] = []
    watch.say = said.append
    watch._carry_out(Blind("page", "http.p95 > 2s for 10m", "monitoring blind: stale"))
    assert watch.cockpit.store.load().version == version  # nothing changed
    assert said == ["monitoring blind: stale: on_unknown = page"]


async def test_fire_rolls_back_once_and_read_only_never(tmp_path: Path) -> None:
    watch = running(tmp_path)
    watch.read_only = True
    watch._carry_out(Fire("flag", "automatic: x"))
    assert watch.cockpit.store.load().state.status is Status.RUNNING
    watch.read_only = False
    watch._carry_out(Fire("flag", "automatic: x"))
    assert watch.acting is not None
    await asyncio.wait_for(watch.acting, 30)
    state = watch.cockpit.store.load().state
    assert state.status is Status.ROLLED_BACK
    assert state.rollback is not None
    assert state.rollback.auto is True
    watch._carry_out(Fire("flag", "automatic: again"))  # refused: already rolled back
    assert watch.cockpit.store.load().state.rollback == state.rollback
