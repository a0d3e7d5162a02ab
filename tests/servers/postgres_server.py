"""Throwaway PostgreSQL clusters for integration tests: start, stop, hang (SIGSTOP) and resume.

One cluster per test session (initdb takes seconds) on a free port in its own folder under /tmp,
with `pg_stat_statements` preloaded; each test gets a fresh database (`pg_database`). PostgreSQL
refuses to run as root, so as root every server command runs as the `postgres` user. The
cluster is always taken down (SIGCONT first, then an immediate stop, then the folder removed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cockpit.demo.postgres_proc import find_bindir
from tests.servers.ports import free_port

INSTALL = "apt-get install -y postgresql-15"
PASSWORD_GROUP = "password_users"  # members of this role must give a password (scram)


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (the postmaster's backends and workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass
class PostgresServer:
    """One cluster in `root` (data/, sock/, postgres.log), listening on 127.0.0.1:`port`."""

    bindir: Path
    root: Path
    port: int
    _stopped: list[int] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "logs" / "postgres.log"

    @property
    def dsn(self) -> str:
        return self.dsn_for()

    def dsn_for(self, dbname: str = "postgres", user: str = "postgres", **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname, "user": user}
        parts.update(extra)
        return " ".join(f"{key}={value}" for key, value in parts.items())

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls) -> PostgresServer:
        bindir = find_bindir()
        if bindir is None:
            pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL}")
        # pytest's own tmp folders are 0700 under root: the postgres user could not enter them.
        root = Path(tempfile.mkdtemp(prefix="cockpit-pg-", dir="/tmp"))
        root.chmod(0o755)
        server = cls(bindir, root, free_port())
        try:
            for path in (root / "sock", root / "logs", server.data):
                path.mkdir()
                server._own(path)
            server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-N")
            hba = server.data / "pg_hba.conf"
            first = f"host all +{PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256\n"
            hba.write_text(first + hba.read_text())
            server.start()
            with server.admin() as conn:
                group = sql.Identifier(PASSWORD_GROUP)
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(group))
        except BaseException:
            server.destroy()
            raise
        return server

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1"
            " -c shared_preload_libraries=pg_stat_statements -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
            " -c pg_stat_statements.max=100"  # the least allowed: deallocation is easy to cause
        )
        try:
            self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                      "-w", "-t", "30", "start")  # fmt: skip
        except subprocess.CalledProcessError as error:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            said = (error.stderr or b"").decode(errors="replace").strip()
            pytest.fail(f"postgres did not start: {said}\n{tail}\n(needs {INSTALL})")

    def stop(self) -> None:
        """A clean, fast shutdown: clients are disconnected, new connections refused."""
        self.resume()
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def pause(self) -> None:
        """Hang the server: SIGSTOP the postmaster first (no new children), then its children.

        Connections are still accepted by the kernel (listen backlog) but nothing answers."""
        postmaster = self.postmaster_pid()
        assert postmaster is not None, "server is not running"
        _signal(postmaster, signal.SIGSTOP)
        self._stopped = [postmaster, *_children(postmaster)]
        for pid in self._stopped[1:]:
            _signal(pid, signal.SIGSTOP)

    def resume(self) -> None:
        postmaster = self.postmaster_pid()
        pids = set(self._stopped)
        if postmaster is not None:
            pids |= {postmaster, *_children(postmaster)}
        for pid in pids:
            _signal(pid, signal.SIGCONT)
        self._stopped = []

    def is_running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and Path(f"/proc/{pid}").exists()

    def ensure_running(self) -> None:
        """Undo whatever a failed fault test left behind."""
        self.resume()
        if not self.is_running():
            self.start()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """SIGCONT everything, stop immediately (kill if that fails), remove the folder."""
        try:
            self.resume()
            postmaster = self.postmaster_pid()
            if postmaster is not None and self.is_running():
                stopped = subprocess.run(
                    self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                      "-m", "immediate", "-w", "-t", "10", "stop"),
                    capture_output=True, cwd=self.root, timeout=30,
                )  # fmt: skip
                if stopped.returncode != 0:
                    for pid in _children(postmaster):
                        _signal(pid, signal.SIGKILL)
                    _signal(postmaster, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- SQL helpers -------------------------------------------------------------------------

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection (autocommit) for the test's own setup and ground truth."""
        return psycopg.connect(self.dsn_for(dbname), autocommit=True, connect_timeout=5)

    # -- running the server's tools ----------------------------------------------------------

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            self._as_postgres(str(self.bindir / tool), *args),
            check=True, capture_output=True, cwd=self.root, timeout=60,
        )  # fmt: skip


@dataclass
class PgDatabase:
    """A fresh database (with pg_stat_statements) in the session's cluster, and its roles."""

    server: PostgresServer
    name: str
    roles: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return self.server.dsn_for(self.name)

    def dsn_as(self, user: str, **extra: str) -> str:
        return self.server.dsn_for(self.name, user, **extra)

    def connect(self, user: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn_as(user), autocommit=True, connect_timeout=5)

    def create_role(self, prefix: str, *, password: str | None = None) -> str:
        """A login role without extra privileges (no pg_read_all_stats), dropped afterwards."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        query = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
        if password is not None:
            query = sql.SQL("{} PASSWORD {} IN ROLE {}").format(
                query, sql.Literal(password), sql.Identifier(PASSWORD_GROUP)
            )
        with self.server.admin() as conn:
            conn.execute(query)
        self.roles.append(name)
        return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> Iterator[PgDatabase]:
    postgres_server.ensure_running()
    database = PgDatabase(postgres_server, f"t_{uuid.uuid4().hex[:10]}")
    with postgres_server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database.name)))
    with database.connect() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")  # each test starts with room to spare
    try:
        yield database
    finally:
        postgres_server.ensure_running()
        with postgres_server.admin() as conn:
            name = sql.Identifier(database.name)
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
            for role in database.roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
