"""The demo's real backing servers: a throwaway redis-server and PostgreSQL cluster in one
temporary folder on free loopback ports, or, when their binaries are missing, the reason why
(the demo then runs on an in-process store and says so)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cockpit.demo.postgres_proc import PostgresProcess, can_run_as_server_user, find_bindir
from cockpit.demo.redis_proc import RedisProcess

REDIS_HINT = "apt-get install -y redis-server"
POSTGRES_HINT = "apt-get install -y postgresql-15"


def free_port() -> int:
    """A port nothing listens on right now (the server that takes it binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Detection:
    """What this machine has: the binaries, or one line per missing part."""

    redis_server: str | None
    pg_bindir: Path | None
    missing: tuple[str, ...]

    @property
    def real(self) -> bool:
        return not self.missing


def detect() -> Detection:
    redis_server = shutil.which("redis-server")
    pg_bindir = find_bindir()
    missing: list[str] = []
    if redis_server is None:
        missing.append(f"redis-server not found ({REDIS_HINT})")
    if pg_bindir is None:
        missing.append(f"PostgreSQL initdb/pg_ctl not found ({POSTGRES_HINT})")
    elif not can_run_as_server_user():
        missing.append("running as root without a `postgres` user or runuser for PostgreSQL")
    return Detection(redis_server, pg_bindir, tuple(missing))


def fallback_message(detection: Detection) -> str:
    """The one line the demo shows when it cannot use real servers."""
    return (
        "demo: using an in-process store instead of Redis and PostgreSQL ("
        + "; ".join(detection.missing)
        + "); cache and DB figures come from the API's /metrics"
    )


class Servers:
    """Starts both servers in a fresh temporary folder; `stop()` ends them and removes it."""

    def __init__(self, detection: Detection) -> None:
        if detection.redis_server is None or detection.pg_bindir is None:
            raise ValueError(fallback_message(detection))
        # Under /tmp and world-readable: as root, the `postgres` user must enter it.
        self.folder = Path(tempfile.mkdtemp(prefix="cockpit-demo-", dir="/tmp"))
        self.folder.chmod(0o755)
        self.redis = RedisProcess(detection.redis_server, self.folder / "redis", free_port())
        self.postgres = PostgresProcess(detection.pg_bindir, self.folder / "pg", free_port())

    def start(self) -> None:
        try:
            self.redis.start()
            self.postgres.create()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        try:
            self.redis.stop()
        finally:
            try:
                self.postgres.stop()
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)
