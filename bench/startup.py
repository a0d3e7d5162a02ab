"""Start-up: from the command to the first complete frame, in tmux at 80x24.

A tmux pane (80x24) is respawned with the command (`respawn-pane -k`, timed from just before
that call) and its screen is read with `capture-pane` in a tight loop until every part of the
first complete frame is there: for the cockpit the header with the plan's name, the latency,
cache, DB pool and errors panes, the event log and the key footer (bench/tui_session.py); for
the idle Textual app (the floor) its header, static and footer. The two alternate; one
untimed start of each first fills the page cache. Also timed: importing the cockpit's TUI in a
fresh interpreter (`python -c "import cockpit.tui.app"`), the part of start-up spent loading
code. Target: median under 1 s.
"""

from __future__ import annotations

import subprocess
import sys
import time

import common
import peers
import tui_session as ts
from delay_server import DelayServer
from tmuxing import Tmux

TARGET_S = 1.0


def one_start(tmux: Tmux, line: str, marks: tuple[str, ...]) -> float | None:
    began = time.perf_counter()
    tmux.respawn("start", line)
    drawn = tmux.wait_for("start", ts.complete(marks), 60.0)
    return None if drawn is None else drawn - began


def import_s() -> float:
    began = time.perf_counter()
    subprocess.run(
        [str(common.PYTHON), "-c", "import cockpit.tui.app"], check=True, env=common.clean_env()
    )
    return time.perf_counter() - began


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=10, quick_runs=2).parse_args()
    began = time.monotonic()
    result = common.start("startup", "Start-up to first complete frame (80x24)", args)
    tmux_bin = peers.tool("tmux")
    if tmux_bin is None:
        result.notes.append("tmux missing: skipped")
        common.finish(result, began)
        return 0
    tmux = Tmux(tmux_bin)
    times: dict[str, list[float | None]] = {"cockpit": [], "idle": [], "import": []}
    try:
        with common.scratch("startup") as folder, DelayServer(0.0) as server:
            lines = {"cockpit": ts.cockpit_line(folder, server.base), "idle": ts.idle_line(folder)}
            marks = {"cockpit": ts.COCKPIT_MARKS, "idle": ts.IDLE_MARKS}
            tmux.new("start", ["sleep", "100000"])
            for name in lines:  # untimed: page cache
                one_start(tmux, lines[name], marks[name])
            for i in range(result.runs):
                for name in lines:
                    took = one_start(tmux, lines[name], marks[name])
                    times[name].append(took)
                    common.say(f"  {i + 1:>2} {name:<8} {common.fmt(took)} s")
                    time.sleep(0.5)
                times["import"].append(import_s())
    finally:
        tmux.close()
    result.figures = {"seconds": times}
    cockpit, idle = common.median(times["cockpit"]), common.median(times["idle"])
    result.rows += [
        common.Row(
            "cockpit: command to first complete frame", cockpit, "s",
            "idle Textual app", idle, f"< {TARGET_S:g} s",
            None if cockpit is None else cockpit < TARGET_S,
        ),
        common.Row("  of which: import cockpit.tui.app", common.median(times["import"]), "s"),
    ]  # fmt: skip
    failed = sum(t is None for t in times["cockpit"])
    if failed:
        result.notes.append(f"{failed} cockpit start(s) never drew a complete frame in 60 s")
    result.notes.append(f"medians of {result.runs} starts each, after one untimed start")
    common.finish(result, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
