"""What the start-up and key benchmarks share: the programs they start in tmux at 80x24 (the
cockpit on the bundled plan, and the idle Textual app as the floor) and how to tell that each
has drawn its first complete frame.

The cockpit's plan is the bundled one, its three endpoints pointed at a local HTTP server and
Redis and PostgreSQL at a closed port (they show as down), as the end-to-end test does: what
is timed is the cockpit, not the servers.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import common
import plans

TERM = "screen-256color"
COCKPIT_MARKS = (
    "Phase 3: multi-layer caching",
    "Latency",
    "Cache",
    "DB pool",
    "Errors",
    "watching",
    "a Advance",
)
IDLE_MARKS = ("idle textual app", "nothing changes here", "a Advance")
DIALOG = "Enter: confirm"


def complete(marks: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda screen: all(mark in screen for mark in marks)


def shell_line(argv: list[str], folder: Path, env: dict[str, str]) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())
    return f"{exports}cd {shlex.quote(str(folder))}; exec {shlex.join(argv)}"


def cockpit_line(folder: Path, app_url: str) -> str:
    plans.bundled(folder)
    env = common.clean_env(
        TERM=TERM,
        APP_URL=app_url,
        REDIS_URL="redis://127.0.0.1:9/0",  # nothing listens on port 9 here
        DATABASE_URL="postgresql://postgres@127.0.0.1:9/postgres",
    )
    argv = [str(common.PYTHON), "-m", "cockpit", "run", "-c", "cockpit.toml"]
    return shell_line(argv, folder, env)


def idle_line(folder: Path) -> str:
    argv = [str(common.PYTHON), str(common.BENCH / "idle_app.py")]
    return shell_line(argv, folder, common.clean_env(TERM=TERM))
