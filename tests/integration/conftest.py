"""Shared fixtures for tests that run the real `cockpit` command and stand-in tools."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A stand-in for vercel/git: records its argv and stdin as one JSON line, can be told to fail.
STAND_IN = """#!{python}
import json, os, sys
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "stdin": stdin}}) + "\\n")
print("stand-in", os.path.basename(sys.argv[0]), *sys.argv[1:])
failing = os.environ.get("STAND_IN_FAIL_ON", "") in " ".join(argv)
sys.exit(int(os.environ.get("STAND_IN_EXIT", "0")) if failing else 0)
"""


@dataclass
class CockpitRun:
    """Runs `python -m cockpit` against a copy of the bundled plan in a temporary folder."""

    folder: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.folder / "cockpit.toml"

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cockpit", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.env,
            timeout=60,
        )

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cockpit", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.folder,
            env=self.env,
        )

    def stand_in_calls(self) -> list[dict[str, object]]:
        log = Path(self.env["STAND_IN_LOG"])
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cockpit_run(tmp_path: Path, health_url: str) -> CockpitRun:
    folder = tmp_path / "rollout"
    folder.mkdir()
    shutil.copy(REPO / "cockpit.toml", folder / "cockpit.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("vercel", "git"):
        path = bin_dir / tool
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COCKPIT_", "SSH_", "APP_URL", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        USER="alice",
        STAND_IN_LOG=str(tmp_path / "stand-in.jsonl"),
        APP_URL=health_url,
        # Nothing listens on port 9 (discard) here: Redis and PostgreSQL are "down".
        REDIS_URL="redis://127.0.0.1:9/0",
        DATABASE_URL="postgresql://postgres@127.0.0.1:9/postgres",
        PYTHONPATH=str(REPO / "src"),
    )
    return CockpitRun(folder, env)
