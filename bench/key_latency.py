"""Key to screen: from pressing `a` (advance) to the confirmation dialog drawn, in tmux at 80x24.

The cockpit (bench/tui_session.py: the bundled plan) is started in tmux and left to settle;
then, repeatedly: `tmux send-keys a` (timed from just before that call), `capture-pane` in a
tight loop until the dialog's last line ("Enter: confirm") is on the screen, Escape, wait until
it is gone. The advance first judges the gates in the engine's thread, so that is included.
The same for the idle Textual app, whose `a` pushes a small modal dialog (the floor), and the
cost of the method itself (one send-keys plus one capture-pane). Target: median under 100 ms.
"""

from __future__ import annotations

import random
import sys
import time

import common
import peers
import tui_session as ts
from delay_server import DelayServer
from tmuxing import Tmux

TARGET_MS = 100.0


def press(tmux: Tmux, name: str) -> float | None:
    began = time.perf_counter()
    tmux.keys(name, "a")
    drawn = tmux.wait_for(name, lambda s: ts.DIALOG in s, 10.0)
    tmux.keys(name, "Escape")
    tmux.wait_for(name, lambda s: ts.DIALOG not in s, 10.0, 0.01)
    return None if drawn is None else (drawn - began) * 1000.0


def method_ms(tmux: Tmux, name: str) -> float:
    began = time.perf_counter()
    tmux.keys(name, "")  # sends nothing, but is one tmux client call like `send-keys a`
    tmux.screen(name)
    return (time.perf_counter() - began) * 1000.0


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=20, quick_runs=3).parse_args()
    began = time.monotonic()
    result = common.start("key_latency", "Key to screen: `a` to the dialog drawn", args)
    tmux_bin = peers.tool("tmux")
    if tmux_bin is None:
        result.notes.append("tmux missing: skipped")
        common.finish(result, began)
        return 0
    tmux = Tmux(tmux_bin)
    times: dict[str, list[float | None]] = {"cockpit": [], "idle": [], "method": []}
    try:
        with common.scratch("keys") as folder, DelayServer(0.0) as server:
            tmux.new("cockpit", ["sleep", "100000"])
            tmux.respawn("cockpit", ts.cockpit_line(folder, server.base))
            tmux.new("idle", ["sleep", "100000"])
            tmux.respawn("idle", ts.idle_line(folder))
            for name, marks in (("cockpit", ts.COCKPIT_MARKS), ("idle", ts.IDLE_MARKS)):
                if tmux.wait_for(name, ts.complete(marks), 60.0, 0.1) is None:
                    raise RuntimeError(f"{name} never drew its screen:\n{tmux.screen(name)}")
            time.sleep(3.0)  # let the first polls land
            for i in range(result.runs):
                for name in ("cockpit", "idle"):
                    took = press(tmux, name)
                    times[name].append(took)
                    common.say(f"  {i + 1:>2} {name:<8} {common.fmt(took)} ms")
                    time.sleep(0.3 + random.random() * 0.4)  # not in step with the 1 s tick
                times["method"].append(method_ms(tmux, "idle"))
    finally:
        tmux.close()
    result.figures = {"ms": times}
    cockpit, idle = common.median(times["cockpit"]), common.median(times["idle"])
    result.rows += [
        common.Row(
            "cockpit: `a` to confirmation dialog drawn", cockpit, "ms",
            "idle Textual app", idle, f"< {TARGET_MS:g} ms",
            None if cockpit is None else cockpit < TARGET_MS,
        ),
        common.Row(
            "  worst of the presses", max((t for t in times["cockpit"] if t), default=None), "ms"
        ),
        common.Row("  of which: tmux send-keys + capture-pane", common.median(times["method"]),
                   "ms"),
    ]  # fmt: skip
    result.notes.append(f"medians of {result.runs} presses each")
    common.finish(result, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
