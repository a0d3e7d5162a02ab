"""A throwaway PostgreSQL cluster with pg_stat_statements, on a loopback port.

PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` user
(runuser). The cluster is tuned for a demo, not durability (fsync off)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

SERVER_USER = "postgres"
DATABASE = "market"
MAX_CONNECTIONS = 40


def find_bindir() -> Path | None:
    """The folder of initdb/pg_ctl/postgres: `pg_config --bindir`, else Debian's newest."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def can_run_as_server_user() -> bool:
    """As root the server runs as `postgres`: that user and runuser must exist."""
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return False
    return shutil.which("runuser") is not None


def alive(pid: int) -> bool:
    """Running, not a zombie (a postmaster we did not fork is reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class PostgresProcess:
    """One cluster in `root` (data/, sock/, postgres.log) on 127.0.0.1:`port`."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        self.started = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={SERVER_USER}"

    @property
    def url(self) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def create(self) -> None:
        """initdb, start, and a `market` database with pg_stat_statements."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in (self.root, self.root / "sock", self.data):
            path.mkdir(exist_ok=True)
            self._own(path)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SERVER_USER, "-N")
        self.start()
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1"
            " -c shared_preload_libraries=pg_stat_statements -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
            f" -c max_connections={MAX_CONNECTIONS}"
        )
        try:
            self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                      "-w", "-t", "30", "start")  # fmt: skip
        except subprocess.CalledProcessError as error:
            tail = self.log.read_text(errors="replace")[-1000:] if self.log.exists() else ""
            said = (error.stderr or b"").decode(errors="replace").strip()
            raise RuntimeError(f"postgres did not start: {said}\n{tail}") from error
        self.started = True

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """An immediate stop (a throwaway cluster needs no checkpoint); SIGKILL if that fails."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        stopped = subprocess.run(
            self._as_server_user(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                 "-m", "immediate", "-w", "-t", "10", "stop"),
            capture_output=True, cwd=self.root, timeout=30, check=False,
        )  # fmt: skip
        # pg_ctl returns once the pid file is gone; the postmaster may still be exiting.
        deadline = time.monotonic() + (0 if stopped.returncode else 5)
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def _as_server_user(self, *argv: str) -> list[str]:
        return ["runuser", "-u", SERVER_USER, "--", *argv] if os.geteuid() == 0 else list(argv)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, SERVER_USER, SERVER_USER)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            self._as_server_user(str(self.bindir / tool), *args),
            check=True, capture_output=True, cwd=self.root, timeout=60,
        )  # fmt: skip
