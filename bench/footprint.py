"""Footprint while watching: CPU, memory and bytes written to the terminal by the full-screen
cockpit, side by side with pg_activity and an idle Textual app, in one run.

The demo platform (`python -m cockpit.demo.platform`: its API on throwaway Redis and PostgreSQL,
with its built-in user load) runs in its own process. Three tmux sessions at 80x24, started
together, each `exec`ing its program (so the pane's pid is the program's):
- cockpit: `cockpit run` on the bundled plan (three endpoints at 1 s, Redis and PostgreSQL at
  2 s), pointed at the demo;
- pg_activity (from PyPI, bench/.venv-peers) at `--refresh 2` on the demo's PostgreSQL;
- idle: a Textual app with a header, one static and a footer (bench/idle_app.py): the floor.
After a warm-up, each window of 60 s: CPU % of one core from /proc/PID/stat (utime + stime),
resident memory (VmRSS) at its end, and the bytes each program wrote to its terminal, counted
by `tmux pipe-pane`. Figures are medians over the windows.
Target: fewer bytes per second than pg_activity and at most twice its CPU.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common
import peers
import plans
from tmuxing import Tmux

TERM = "screen-256color"
CURSOR = re.compile(rb"\x1b\[(\d+)(?:;\d+)?H")


def bytes_by_row(data: bytes) -> dict[int, int]:
    """Which screen rows the bytes went to: each cursor move (CSI row;col H) starts a run of
    bytes for that row (1-based). Shows what a program keeps redrawing."""
    rows: Counter[int] = Counter()
    moves = list(CURSOR.finditer(data))
    ends = [m.start() for m in moves[1:]] + [len(data)] if moves else []
    for move, end in zip(moves, ends, strict=True):
        rows[int(move.group(1))] += end - move.start()
    return dict(sorted(rows.items()))


def start_demo(folder: Path) -> tuple[subprocess.Popen[str], dict[str, str], str | None]:
    """The demo platform in its own process; its URLs (and its notice, when it fell back)."""
    proc = common.spawn(
        [str(common.PYTHON), "-m", "cockpit.demo.platform"],
        stdout=subprocess.PIPE,
        stderr=(folder / "demo.err").open("w"),
        text=True,
        env=common.clean_env(),
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    notice = None
    deadline = time.monotonic() + 120
    while "APP_URL" not in urls or ("in-process" not in (notice or "") and len(urls) < 3):
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            common.stop_process(proc)
            raise RuntimeError("the demo platform did not start: " + (folder / "demo.err").name)
        if "=" in line and line.split("=", 1)[0].isupper():
            key, value = line.strip().split("=", 1)
            urls[key] = value
        else:
            notice = line.strip()
    return proc, urls, notice


def _pg_argv(binary: Path, url: str) -> list[str]:
    # postgresql://postgres@127.0.0.1:PORT/market
    rest = url.split("://", 1)[1]
    user, rest = rest.split("@", 1)
    hostport, db = rest.split("/", 1)
    host, port = hostport.split(":")
    return [str(binary), "--refresh", "2", "-h", host, "-p", port, "-U", user, "-d", db]


def measure(tmux: Tmux, pids: dict[str, int], folder: Path, seconds: float) -> dict[str, Any]:
    files = {name: folder / f"{name}-{time.monotonic_ns()}.out" for name in pids}
    for name, path in files.items():
        path.touch()
        tmux.pipe(name, path)
    began = time.monotonic()
    cpu0 = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    cpu1 = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
    wall = time.monotonic() - began
    for name in pids:
        tmux.unpipe(name)
    time.sleep(0.2)  # let each `cat` flush what it read
    window: dict[str, Any] = {}
    for name, pid in pids.items():
        window[name] = {
            "cpu_pct": 100.0 * (cpu1[name] - cpu0[name]) / wall,
            "rss_mib": common.rss_mib(pid),
            "bytes_per_s": files[name].stat().st_size / wall,
            "bytes_by_row": bytes_by_row(files[name].read_bytes()),
        }
        files[name].unlink()
    return window


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=3).parse_args()
    began = time.monotonic()
    result = common.start("footprint", "Footprint while watching (80x24)", args)
    seconds, warmup = (5.0, 6.0) if args.quick else (60.0, 20.0)
    tmux_bin = peers.tool("tmux")
    if tmux_bin is None:
        result.notes.append("tmux missing: skipped")
        common.finish(result, began)
        return 0
    pga = peers.pg_activity()
    tmux = Tmux(tmux_bin)
    windows: list[dict[str, Any]] = []
    with common.scratch("footprint") as folder:
        demo, urls, notice = start_demo(folder)
        try:
            if notice:
                result.notes.append(notice)
            plans.bundled(folder)
            env = common.clean_env(TERM=TERM, **urls)
            pids = {
                "cockpit": tmux.new(
                    "cockpit", [str(common.PYTHON), "-m", "cockpit", "run", "-c", "cockpit.toml"],
                    cwd=folder, env=env,
                ),
                "idle": tmux.new(
                    "idle", [str(common.PYTHON), str(common.BENCH / "idle_app.py")],
                    cwd=folder, env=common.clean_env(TERM=TERM),
                ),
            }  # fmt: skip
            if pga is not None and "DATABASE_URL" in urls:
                argv = _pg_argv(pga, urls["DATABASE_URL"])
                pids["pg_activity"] = tmux.new("pg_activity", argv, cwd=folder, env={"TERM": TERM})
            else:
                result.notes.append("pg_activity or the demo's PostgreSQL missing: no peer")
            common.say(f"warming up {warmup:g} s")
            time.sleep(warmup)
            for name in pids:
                (folder / f"{name}.screen").write_text(tmux.screen(name))
            for i in range(result.runs):
                common.say(f"window {i + 1}/{result.runs}: {seconds:g} s")
                windows.append(measure(tmux, pids, folder, seconds))
                for name, w in windows[-1].items():
                    common.say(
                        f"  {name:<12} cpu {w['cpu_pct']:.2f}%  rss {w['rss_mib']:.0f} MiB"
                        f"  {w['bytes_per_s']:.0f} B/s"
                    )
            screens = {n: (folder / f"{n}.screen").read_text() for n in pids}
        finally:
            tmux.close()
            common.stop_process(demo, 20)
    result.figures = {"window_s": seconds, "warmup_s": warmup, "windows": windows}
    result.figures["screens"] = screens
    result.notes.append(
        f"{result.runs} windows of {seconds:g} s after {warmup:g} s warm-up, all three programs"
        " measured in the same windows; medians over windows; the demo runs its user load"
    )
    _rows(result, windows)
    common.finish(result, began)
    return 0


def _rows(result: common.Result, windows: list[dict[str, Any]]) -> None:
    def med(name: str, key: str) -> float | None:
        return common.median([w[name][key] for w in windows if name in w])

    peer = "pg_activity"
    cpu, peer_cpu = med("cockpit", "cpu_pct"), med(peer, "cpu_pct")
    out, peer_out = med("cockpit", "bytes_per_s"), med(peer, "bytes_per_s")
    result.rows += [
        common.Row(
            "cockpit CPU (5 sources)", cpu, "% core", "pg_activity", peer_cpu, "<= 2x peer",
            None if cpu is None or peer_cpu is None else cpu <= 2 * peer_cpu,
        ),
        common.Row(
            "cockpit bytes to terminal", out, "B/s", "pg_activity", peer_out, "< peer",
            None if out is None or peer_out is None else out < peer_out,
        ),
        common.Row("cockpit RSS", med("cockpit", "rss_mib"), "MiB", peer, med(peer, "rss_mib")),
        common.Row("idle Textual app CPU (floor)", med("idle", "cpu_pct"), "% core"),
        common.Row("idle Textual app bytes to terminal", med("idle", "bytes_per_s"), "B/s"),
        common.Row("idle Textual app RSS", med("idle", "rss_mib"), "MiB"),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
