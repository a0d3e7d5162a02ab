"""The real full-screen cockpit (`cockpit run`) with two additions for the busy-UI probe
benchmark, made from outside (nothing in src/ changes):

- every latency the HTTP probe puts in its window is also kept (with its time), and written as
  JSON to --out when the cockpit exits (the window itself only holds sketches);
- with --repaint-ms N, the whole screen is refreshed (layout and repaint) every N ms, so the UI
  thread keeps drawing while the engine thread probes.

Run it in a terminal (tmux) as `python bench/tui_probe.py --out F [--repaint-ms N] -- run -c P`;
quit with `q`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cockpit.tui.app as tui_app
from cockpit.cli import main as cockpit_main
from cockpit.core.metrics.sketch import QuantileWindow

SEEN: list[tuple[float, float]] = []  # (time the probe was planned, wall clock; ms)


def _record_values() -> None:
    add = QuantileWindow.add

    def add_and_keep(self: QuantileWindow, t: float, value_ms: float, **kw: Any) -> None:
        SEEN.append((t, value_ms))  # the plan has one HTTP source: every window is its window
        add(self, t, value_ms, **kw)

    QuantileWindow.add = add_and_keep  # type: ignore[method-assign]


def _busy(repaint_s: float) -> None:
    app_class = tui_app.CockpitApp
    mounted = app_class.on_mount

    def on_mount(self: tui_app.CockpitApp) -> None:
        mounted(self)
        self.set_interval(repaint_s, lambda: self.screen.refresh(layout=True, repaint=True))

    app_class.on_mount = on_mount  # type: ignore[method-assign]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--repaint-ms", type=float, default=0.0)
    p.add_argument("cockpit_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    _record_values()
    if args.repaint_ms > 0:
        _busy(args.repaint_ms / 1000.0)
    argv = [a for a in args.cockpit_args if a != "--"]
    try:
        return cockpit_main(argv)
    finally:
        Path(args.out).write_text(json.dumps(SEEN))


if __name__ == "__main__":
    sys.exit(main())
