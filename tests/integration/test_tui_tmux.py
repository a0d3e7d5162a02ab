"""End to end as a person uses it: the real `cockpit` process in tmux at 80x24, keys sent with
send-keys, the screen read with capture-pane; advance a phase, pick a rollback, and check the
stand-in `vercel` really ran."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator

import pytest

from tests.integration.conftest import CockpitRun
from tests.integration.tmux import Tmux, write_script

pytestmark = pytest.mark.integration


@pytest.fixture(params=["screen-256color"])
def tmux(cockpit_run: CockpitRun, request: pytest.FixtureRequest) -> Iterator[Tmux]:
    env = {**cockpit_run.env, "TERM": request.param}
    command = f"exec {shlex.quote(sys.executable)} -m cockpit run -c cockpit.toml"
    script = write_script(cockpit_run.folder / "run.sh", env, cockpit_run.folder, command)
    with Tmux.start("cockpit-e2e", script) as tmux:
        yield tmux


def test_advance_then_roll_back_from_the_keyboard(cockpit_run: CockpitRun, tmux: Tmux) -> None:
    tmux.wait_for("PENDING")
    tmux.keys("a")
    tmux.wait_for("reason to force")
    tmux.keys("staging signed off", "Enter")
    tmux.wait_until(
        "traffic set to 10%",
        lambda _: any(c["stdin"] == "10" for c in cockpit_run.stand_in_calls()),
    )
    tmux.wait_for("RUNNING")
    tmux.keys("r")
    tmux.wait_for("Feature flag to 0%")
    tmux.keys("Down", "Enter")  # the second method: flag
    tmux.wait_for("type 'flag'")
    tmux.keys("flag", "Enter")
    tmux.wait_until(
        "traffic set to 0%",
        lambda _: any(c["stdin"] == "0" for c in cockpit_run.stand_in_calls()),
    )
    tmux.wait_for("ROLLED BACK")
    status = json.loads(cockpit_run("status", "--json", "--for", "0").stdout)
    assert status["rollout"]["status"] == "rolled_back"
    assert status["rollout"]["rollback"]["method"] == "flag"


@pytest.mark.parametrize("tmux", ["tmux-256color"], indirect=True)
def test_draws_and_quits_under_tmux_256color(cockpit_run: CockpitRun, tmux: Tmux) -> None:
    screen = tmux.wait_for("PENDING")
    assert "Phase 3: multi-layer caching" in screen
    assert "Traceback" not in screen
    tmux.keys("q")
    tmux.wait_until("the cockpit to exit", lambda _: not tmux.alive())
