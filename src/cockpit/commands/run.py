"""`cockpit run`: the full-screen cockpit, or `--headless` the engine without a screen, one
line per change; `--log FILE` appends what either announces to FILE (see core/runlog.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from typing import TextIO

from cockpit import __version__
from cockpit.commands.common import UsageError, measure_for, open_cockpit, printable
from cockpit.core.changes import ChangeLog
from cockpit.core.control import Cockpit
from cockpit.core.engine import Engine
from cockpit.core.runlog import LogFileError, capture, events, open_log
from cockpit.core.watch import Watch

RUN = logging.getLogger("cockpit.run")


def open_run_log(args: argparse.Namespace) -> TextIO | None:
    """The --log file opened for appending, before anything starts; a bad path is exit 2."""
    path = getattr(args, "log", None)
    if path is None:
        return None
    try:
        return open_log(path)
    except LogFileError as exc:
        raise UsageError(str(exc)) from None


def _started(cockpit: Cockpit, how: str) -> None:
    RUN.info(
        "cockpit %s %s started: plan %s, operator %s, pid %d",
        __version__,
        how,
        cockpit.plan.config_path,
        cockpit.operator,
        os.getpid(),
    )


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        return _full_screen(args)
    cockpit = open_cockpit(args)
    seconds = measure_for(args, cockpit.plan) if args.measure is not None else None
    stream = open_run_log(args)
    if stream is None:
        return _headless(cockpit, seconds, read_only=args.read_only)
    # stderr=True: warnings still show on the terminal, as they would without --log.
    with capture(stream, secrets=cockpit.plan.secrets, stderr=True) as handler:
        _started(cockpit, "headless")
        status = _headless(cockpit, seconds, read_only=args.read_only)
        RUN.info("stopped")
    if handler is not None and handler.failed:
        print(f"cockpit: --log {args.log}: writing failed: {handler.failed}", file=sys.stderr)
    return status


def _headless(cockpit: Cockpit, seconds: float | None, *, read_only: bool) -> int:
    engine = Engine(cockpit.plan, cockpit.metrics)
    log = ChangeLog()
    said = events()

    def say(line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(printable(f"{stamp} {line}"), flush=True)
        said.info(line)  # the --log file, when there is one

    watch = Watch(cockpit, say, read_only=read_only)

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
            RUN.info("stopping: signal received")
        try:
            if watch.acting is not None:  # never abandon a rollback half-way
                await asyncio.shield(watch.acting)
        finally:
            watch.close()  # the metric history's unfinished 10 s bucket

    asyncio.run(main())
    return 0


def _full_screen(args: argparse.Namespace) -> int:
    """The Textual cockpit; imported here so headless commands never load textual."""
    if args.measure is not None:
        raise UsageError("--for works with --headless only")
    from cockpit.tui.app import CockpitApp

    cockpit = open_cockpit(args)
    stream = open_run_log(args)
    cockpit.on_output = None  # the engine's Watch sends output to the event pane, not stdout
    # With or without --log, no log record may reach stderr while the screen is up.
    with capture(stream, secrets=cockpit.plan.secrets):
        _started(cockpit, "full screen")
        CockpitApp(cockpit, read_only=args.read_only, theme=args.theme).run()
        RUN.info("stopped")
    return 0
