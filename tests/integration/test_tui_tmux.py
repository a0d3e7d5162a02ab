"""End to end as a person uses it: the real `cockpit` process in tmux at 80x24, keys sent with
send-keys, the screen read with capture-pane; advance a phase, pick a rollback, and check the
stand-in `vercel` really ran."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import CockpitRun

pytestmark = pytest.mark.integration


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        result = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return result.stdout

    def alive(self) -> bool:
        found = subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True)
        return found.returncode == 0

    def wait_for(self, what: str, within: float = 30.0) -> str:
        return self.wait_until(what, lambda: what in self.screen(), within)

    def wait_until(self, what: str, check: Callable[[], bool], within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"never saw {what!r}; the screen was:\n{self.screen()}")
            time.sleep(0.2)
        return self.screen()


@pytest.fixture(params=["screen-256color"])
def tmux(cockpit_run: CockpitRun, request: pytest.FixtureRequest) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: apt-get install -y tmux")
    script = cockpit_run.folder / "run.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in cockpit_run.env.items())
    script.write_text(
        f"{exports}export TERM={request.param}\ncd {shlex.quote(str(cockpit_run.folder))}\n"
        f"exec {shlex.quote(sys.executable)} -m cockpit run -c cockpit.toml\n"
    )
    name = f"cockpit-e2e-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-x", "80", "-y", "24", "-s", name, f"bash {script}"],
        check=True,
    )
    try:
        yield Tmux(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_advance_then_roll_back_from_the_keyboard(cockpit_run: CockpitRun, tmux: Tmux) -> None:
    tmux.wait_for("PENDING")
    tmux.keys("a")
    tmux.wait_for("reason to force")
    tmux.keys("staging signed off", "Enter")
    tmux.wait_until(
        "traffic set to 10%",
        lambda: any(c["stdin"] == "10" for c in cockpit_run.stand_in_calls()),
    )
    tmux.wait_for("RUNNING")
    tmux.keys("r")
    tmux.wait_for("Feature flag to 0%")
    tmux.keys("Down", "Enter")  # the second method: flag
    tmux.wait_for("type 'flag'")
    tmux.keys("flag", "Enter")
    tmux.wait_until(
        "traffic set to 0%",
        lambda: any(c["stdin"] == "0" for c in cockpit_run.stand_in_calls()),
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
    tmux.wait_until("the cockpit to exit", lambda: not tmux.alive())
