"""`cockpit run --headless`: the engine without a screen, one log line per change."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import UTC, datetime

from cockpit.commands.common import UsageError, measure_for, open_cockpit, printable
from cockpit.core.changes import ChangeLog
from cockpit.core.engine import Engine
from cockpit.core.watch import Watch


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        return _full_screen(args)
    cockpit = open_cockpit(args)
    seconds = measure_for(args, cockpit.plan) if args.measure is not None else None
    engine = Engine(cockpit.plan, cockpit.metrics)
    log = ChangeLog()

    def say(line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(printable(f"{stamp} {line}"), flush=True)

    watch = Watch(cockpit, say, read_only=args.read_only)

    def on_tick(*_: object) -> None:
        for line in log.changes(watch.tick()):
            say(line)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await engine.watch(seconds, on_tick)
        except asyncio.CancelledError:
            print("stopping: signal received", file=sys.stderr)
        if watch.acting is not None:  # never abandon a rollback half-way
            await asyncio.shield(watch.acting)

    asyncio.run(main())
    return 0


def _full_screen(args: argparse.Namespace) -> int:
    """The Textual cockpit; imported here so headless commands never load textual."""
    if args.measure is not None:
        raise UsageError("--for works with --headless only")
    from cockpit.tui.app import CockpitApp

    cockpit = open_cockpit(args)
    cockpit.on_output = None  # the engine's Watch sends output to the event pane, not stdout
    CockpitApp(cockpit, read_only=args.read_only, theme=args.theme).run()
    return 0
