"""tmux on a socket of our own (`tmux -L cockpit-bench-PID`): sessions at 80x24, keys in,
screens out, the bytes an app writes counted with pipe-pane; `close()` ends that server only."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path


class Tmux:
    def __init__(self, binary: str = "tmux") -> None:
        self.binary = binary
        self.socket = f"cockpit-bench-{os.getpid()}"

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [self.binary, "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def new(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        size: tuple[int, int] = (80, 24),
    ) -> int:
        """A detached session running `argv` (exec'd, so the pane's pid is the app's)."""
        exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
        where = f"cd {shlex.quote(str(cwd))}; " if cwd else ""
        command = f"{exports}{where}exec {shlex.join(argv)}"
        width, height = size
        self("new-session", "-d", "-x", str(width), "-y", str(height), "-s", name, command)
        self("set-option", "-t", name, "remain-on-exit", "off")
        return self.pid(name)

    def pid(self, name: str) -> int:
        return int(self("display-message", "-p", "-t", name, "#{pane_pid}").strip())

    def respawn(self, name: str, command: str) -> None:
        self("respawn-pane", "-k", "-t", name, command)

    def keys(self, name: str, *keys: str) -> None:
        self("send-keys", "-t", name, *keys)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name, check=False)

    def alive(self, name: str) -> bool:
        argv = [self.binary, "-L", self.socket, "has-session", "-t", name]
        return subprocess.run(argv, capture_output=True).returncode == 0

    def pipe(self, name: str, path: Path) -> None:
        """Append every byte the pane's app writes to `path` from now on."""
        self("pipe-pane", "-t", name, f"cat >> {shlex.quote(str(path))}")

    def unpipe(self, name: str) -> None:
        self("pipe-pane", "-t", name, check=False)

    def wait_for(
        self, name: str, check: Callable[[str], bool], within_s: float, poll_s: float = 0.0
    ) -> float | None:
        """Poll capture-pane until `check(screen)`; the time.perf_counter() when it held."""
        deadline = time.perf_counter() + within_s
        while time.perf_counter() < deadline:
            if check(self.screen(name)):
                return time.perf_counter()
            if poll_s:
                time.sleep(poll_s)
        return None

    def kill(self, name: str) -> None:
        self("kill-session", "-t", name, check=False)

    def close(self) -> None:
        """End our tmux server, then wait for the programs in its panes to exit (they may
        still write to their folders on the way out), SIGKILL after 10 s."""
        listed = self("list-panes", "-a", "-F", "#{pane_pid}", check=False).split()
        pids = [int(p) for p in listed if p.isdigit()]
        socket = self("display-message", "-p", "#{socket_path}", check=False).strip()
        self("kill-server", check=False)
        if socket:  # tmux leaves its socket file behind
            with contextlib.suppress(OSError):
                os.unlink(socket)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.05)
        for pid in pids:
            if _running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
