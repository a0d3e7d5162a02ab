"""A real terminal for end-to-end tests: a detached tmux session (80x24 by default, the
on-call engineer's bastion), keys sent with send-keys, the screen read with capture-pane.

    with Tmux.start("cockpit-e2e", write_script(path, env, cwd, "exec cockpit run")) as tmux:
        tmux.wait_for("PENDING")
        tmux.keys("q")

The session is killed on the way out, whatever happened."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest


def write_script(path: Path, env: Mapping[str, str], cwd: Path, *commands: str) -> Path:
    """A bash script that runs `commands` in `cwd` with exactly `env` (tmux's own server
    would otherwise hand the session the environment of whoever started it)."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    path.write_text(f"{exports}cd {shlex.quote(str(cwd))}\n" + "".join(f"{c}\n" for c in commands))
    return path


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @contextmanager
    def start(
        cls, prefix: str, script: Path, *, width: int = 80, height: int = 24
    ) -> Iterator[Tmux]:
        """`bash script` in a new detached session; killed when the block ends."""
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: apt-get install -y tmux")
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        size = ["-x", str(width), "-y", str(height)]
        subprocess.run(
            ["tmux", "new-session", "-d", *size, "-s", name, f"bash {shlex.quote(str(script))}"],
            check=True,
        )
        try:
            yield cls(name)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self, *, history: bool = False) -> str:
        """What the pane shows (wrapped lines joined); with `history`, its scrollback too."""
        args = ["tmux", "capture-pane", "-p", "-J", "-t", self.name]
        shown = subprocess.run(args + (["-S", "-"] if history else []), capture_output=True)
        return shown.stdout.decode(errors="replace")

    def alive(self) -> bool:
        found = subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True)
        return found.returncode == 0

    def wait_for(self, text: str, within: float = 30.0) -> str:
        return self.wait_until(repr(text), lambda screen: text in screen, within)

    def wait_until(self, what: str, check: Callable[[str], bool], within: float = 30.0) -> str:
        """Poll the screen until `check(screen)` holds; fail with the screen after `within` s."""
        screen = self.poll(check, within)
        if screen is None:
            pytest.fail(f"never saw {what} within {within:.0f}s; the screen was:\n{self.screen()}")
        return screen

    def poll(self, check: Callable[[str], bool], within: float) -> str | None:
        """The first screen for which `check` holds, or None after `within` seconds."""
        deadline = time.monotonic() + within
        while not check(screen := self.screen()):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        return screen
