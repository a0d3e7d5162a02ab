"""Poll cost on the database: the server-side time of the cockpit's PostgreSQL source per poll,
beside pg_activity's per refresh, with 300 idle connections open.

A throwaway cluster (initdb/pg_ctl as the `postgres` user, like tests/servers; max_connections
400, pg_stat_statements with track_planning on), 300 idle client connections held by pgbench
(`pgbench -n -c 300 -f idle.sql`, a script that only sleeps). Then, one after the other, each
as its own superuser role so their statements are told apart:
- the cockpit: the Engine polling one `kind = "postgres"` source every 2 s;
- pg_activity (PyPI, bench/.venv-peers) in tmux at 80x24 with `--refresh 2`.
Each runs a warm-up, then pg_stat_statements is reset and, after the measured window, its
rows for that role are summed: calls, execution and planning time (ms). Per poll = sum / polls
(the cockpit's runner counts its polls; pg_activity's refreshes are the calls of its most
frequent statement).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import engine_run
import peers
import plans
import psycopg
from tmuxing import Tmux

from cockpit.core.config import load_plan
from cockpit.core.engine import Engine, store_for
from cockpit.demo.postgres_proc import PostgresProcess, find_bindir
from cockpit.demo.servers import free_port

IDLE = 300
EVERY_S = 2.0


class Cluster(PostgresProcess):
    """The demo's throwaway cluster, with room for 300 idle clients and planning times."""

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1"
            " -c shared_preload_libraries=pg_stat_statements -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
            " -c pg_stat_statements.track_planning=on"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                  "-w", "-t", "60", "start")  # fmt: skip
        self.started = True

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5)


def _statements(cluster: Cluster, role: str) -> list[dict[str, Any]]:
    with cluster.admin() as conn:
        rows = conn.execute(
            "SELECT s.query, s.calls, s.total_exec_time, s.total_plan_time"
            " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
            " WHERE r.rolname = %s ORDER BY s.total_exec_time DESC",
            (role,),
        ).fetchall()
    return [
        {"query": " ".join(str(q).split())[:160], "calls": c, "exec_ms": e, "plan_ms": p}
        for q, c, e, p in rows
    ]


def _reset(cluster: Cluster) -> None:
    with cluster.admin() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def _summary(rows: list[dict[str, Any]], polls: float) -> dict[str, Any]:
    exec_ms = sum(r["exec_ms"] for r in rows)
    plan_ms = sum(r["plan_ms"] for r in rows)
    calls = sum(r["calls"] for r in rows)
    per = max(polls, 1.0)
    return {
        "polls": polls,
        "ms_per_poll": (exec_ms + plan_ms) / per,
        "exec_ms_per_poll": exec_ms / per,
        "plan_ms_per_poll": plan_ms / per,
        "statements_per_poll": calls / per,
        "statements": rows[:12],
    }


async def _cockpit(cluster: Cluster, folder: Path, warmup: float, seconds: float) -> Any:
    dsn = f"host=127.0.0.1 port={cluster.port} dbname=market user=bench_cockpit"
    path = plans.write(folder, plans.postgres_source("db", dsn, every=f"{EVERY_S:g}s"))
    plan = load_plan(path, {})
    engine = Engine(plan, store_for(plan))
    runner = engine.runners["db"]
    found: dict[str, Any] = {}

    async def window() -> None:
        await asyncio.sleep(warmup)
        _reset(cluster)
        polls = runner.polls
        await asyncio.sleep(seconds)
        rows = _statements(cluster, "bench_cockpit")
        found.update(_summary(rows, runner.polls - polls))
        found["up"] = engine.store.source("db").up

    timer = asyncio.create_task(window())
    await engine_run.watch(engine, warmup + seconds + 0.5)
    await timer
    return found


def _pg_activity(
    tmux: Tmux, binary: Path, cluster: Cluster, warmup: float, seconds: float
) -> dict[str, Any]:
    argv = [str(binary), "--refresh", f"{EVERY_S:g}", "-h", "127.0.0.1", "-p", str(cluster.port)]
    argv += ["-U", "bench_pga", "-d", "market"]
    tmux.new("pga", argv, env={"TERM": "screen-256color"})
    time.sleep(warmup)
    _reset(cluster)
    time.sleep(seconds)
    rows = _statements(cluster, "bench_pga")
    screen = tmux.screen("pga")
    tmux.kill("pga")
    # Its refreshes: the calls of its statement run most often (each runs once a refresh).
    found = _summary(rows, max((r["calls"] for r in rows), default=seconds / EVERY_S))
    found["screen_ok"] = "PostgreSQL" in screen
    return found


def _idle_clients(cluster: Cluster, folder: Path, pgbench: Path) -> subprocess.Popen[bytes]:
    script = folder / "idle.sql"
    script.write_text("\\sleep 10 s\n")
    argv = [str(pgbench), "-n", "-c", str(IDLE), "-j", "2", "-T", "86400", "-f", str(script)]
    argv += ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "market"]
    proc = common.spawn(argv, stdout=subprocess.DEVNULL, stderr=(folder / "pgbench.err").open("w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with cluster.admin() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'"
            ).fetchone()
        if row and row[0] >= IDLE:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    common.stop_process(proc)
    raise RuntimeError("pgbench did not open its connections: " + (folder / "pgbench.err").name)


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=3).parse_args()
    began = time.monotonic()
    result = common.start("poll_cost", "Poll cost on PostgreSQL (300 idle connections)", args)
    warmup, seconds = (3.0, 4.0) if args.quick else (6.0, 20.0)
    bindir, pgbench, pga, tmux_bin = find_bindir(), peers.pgbench(), peers.pg_activity(), None
    if bindir is None or pgbench is None:
        result.notes.append("PostgreSQL server or pgbench missing (`make servers`): skipped")
        common.finish(result, began)
        return 0
    if pga is not None:
        tmux_bin = peers.tool("tmux")
    if pga is None or tmux_bin is None:
        result.notes.append("pg_activity or tmux missing: no peer column")
    tmux = Tmux(tmux_bin) if tmux_bin else None
    runs: list[dict[str, Any]] = []
    with common.scratch("pgcost") as folder:
        cluster = Cluster(bindir, folder / "pg", free_port())
        idle: subprocess.Popen[bytes] | None = None
        try:
            cluster.create()
            with cluster.admin() as conn:
                for role in ("bench_cockpit", "bench_pga"):
                    conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
            idle = _idle_clients(cluster, folder, pgbench)
            for i in range(result.runs):
                run = {"cockpit": asyncio.run(_cockpit(cluster, folder, warmup, seconds))}
                if tmux is not None and pga is not None:
                    run["pg_activity"] = _pg_activity(tmux, pga, cluster, warmup, seconds)
                for who, r in run.items():
                    common.say(
                        f"  run {i + 1} {who:<12} {r['ms_per_poll']:.3f} ms/poll"
                        f" ({r['statements_per_poll']:.1f} statements, {r['polls']:.0f} polls)"
                    )
                runs.append(run)
        finally:
            if tmux is not None:
                tmux.close()
            if idle is not None:
                common.stop_process(idle)
            cluster.stop()
    result.figures = {"idle_connections": IDLE, "window_s": seconds, "runs": runs}

    def med(who: str, key: str) -> float | None:
        return common.median([r[who][key] for r in runs if who in r])

    result.rows += [
        common.Row("cockpit server time per poll", med("cockpit", "ms_per_poll"), "ms",
                   "pg_activity", med("pg_activity", "ms_per_poll")),
        common.Row("  of which planning", med("cockpit", "plan_ms_per_poll"), "ms",
                   "pg_activity", med("pg_activity", "plan_ms_per_poll")),
        common.Row("statements per poll", med("cockpit", "statements_per_poll"), "",
                   "pg_activity", med("pg_activity", "statements_per_poll")),
    ]  # fmt: skip
    result.notes.append(
        f"{IDLE} idle pgbench connections; {seconds:g} s windows at {EVERY_S:g} s polls after"
        f" {warmup:g} s warm-up; medians over runs"
    )
    common.finish(result, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
