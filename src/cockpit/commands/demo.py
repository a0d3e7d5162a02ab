"""`cockpit demo`: the demo platform, the demo plan, and the real cockpit in front of them.

Everything it starts it stops on the way out — after `q`, SIGTERM, SIGHUP or Ctrl-C, and
also when start-up fails half-way — leaving nothing behind (the folder too, unless --keep).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cockpit.commands.common import UsageError, open_cockpit, printable
from cockpit.core.durations import DurationError, parse_duration
from cockpit.demo.faults import DESCRIPTIONS, FaultError, ScheduledFault, parse_fault
from cockpit.demo.platform import DemoOptions
from cockpit.demo.session import DemoSession, KeepError, keep_folder

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopping(Exception):
    """A stop signal arrived while the demo was starting: unwind and clean up."""


def demo(args: argparse.Namespace) -> int:
    faults = _faults(args.fault or [])
    if args.measure is not None:
        if not args.headless:
            raise UsageError("--for works with --headless only")
        try:
            parse_duration(args.measure)
        except DurationError as exc:
            raise UsageError(f"--for: {exc}") from None
    keep = _keep(args.keep)
    source = _source(args.config)
    options = DemoOptions(faults=faults, in_process=args.in_process, handle_signals=False)
    say("starting the demo platform: its servers, the API and its users ...")
    session = DemoSession(options, keep=keep, source=source)
    previous = _handle_stop_signals(_raise_stopping)
    try:
        session.start()
        assert session.platform is not None
        intro = _intro(session)
        for line in intro:  # also left on the terminal once the full screen closes
            say(line)
        if args.headless:
            return _headless(session, args.measure)
        return _full_screen(session, intro)
    except Stopping:
        say("stopping: signal received")
        return 0
    finally:
        _handle_stop_signals(signal.SIG_IGN)  # the clean-up must finish
        # A watch writes its metric history's last bucket when it is collected: before the
        # folder goes, or the write would make the folder again.
        gc.collect()
        session.stop()
        _restore(previous)
        if keep is not None:
            say(f"kept the plan, state and audit in {keep}: cockpit report -c {keep}/cockpit.toml")
        else:
            say("stopped: the platform, its servers and the demo's files are gone")


def say(line: str) -> None:
    print(printable(f"cockpit demo: {line}"), flush=True)


# -- the two ways to watch ---------------------------------------------------------------------


def _full_screen(session: DemoSession, intro: list[str]) -> int:
    from cockpit.demo.app import DemoApp  # textual only for the full screen

    assert session.platform is not None
    cockpit = open_cockpit(argparse.Namespace(config=str(session.plan_path)))
    cockpit.on_output = None  # the engine's Watch sends output to the event pane
    app = DemoApp(cockpit, session.platform.faults, intro=tuple(intro))

    def stop_app(signum: int, frame: FrameType | None) -> None:
        loop = app.ui_loop
        if loop is None or loop.is_closed():
            raise Stopping(signum)
        loop.call_soon_threadsafe(app.exit)  # quit as `q` does: the engine stops first

    _handle_stop_signals(stop_app)
    app.run()
    if app.engine is not None:
        app.engine.watch.close()  # the metric history's last bucket, while the folder exists
    return 0


def _headless(session: DemoSession, measure: str | None) -> int:
    """`cockpit run --headless` on the demo plan, with the faults said as they switch."""
    from cockpit.cli import _parser  # the same options as `run` has, whatever they become
    from cockpit.commands import run

    assert session.platform is not None

    def fault_changed(name: str, on: bool) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        what = f"fault ON: {DESCRIPTIONS[name]}" if on else f"fault off: {name}"
        print(printable(f"{stamp} demo: {what}"), flush=True)

    session.platform.faults.listeners.append(fault_changed)
    argv = ["run", "--headless", "-c", str(session.plan_path)]
    argv += ["--for", measure] if measure is not None else []
    return run.run(_parser().parse_args(argv))


def _intro(session: DemoSession) -> list[str]:
    platform = session.platform
    assert platform is not None
    lines = [platform.notice.removeprefix("demo: ")] if platform.notice else []
    lines += [f"{name}={url}" for name, url in platform.urls.items()]
    lines.append(f"plan: {session.plan_path} (cockpit status -c PLAN works meanwhile)")
    lines.append(
        f"pre-flight: {len(session.plan.preflight_checks) if session.plan else 0}"
        " items ticked by cockpit-demo; each phase's checks are yours"
    )
    return lines


# -- arguments -------------------------------------------------------------------------------


def _faults(specs: list[str]) -> tuple[ScheduledFault, ...]:
    try:
        return tuple(parse_fault(spec) for spec in specs)
    except FaultError as exc:
        raise UsageError(f"--fault: {exc}") from None


def _keep(text: str | None) -> Path | None:
    if text is None:
        return None
    try:
        return keep_folder(Path(text).expanduser())
    except KeepError as exc:
        raise UsageError(str(exc)) from None


def _source(text: str | None) -> Path | None:
    """`-c PLAN` turns that plan into the demo's; by default the bundled one ($COCKPIT_CONFIG
    is not read: a demo must never pick up the production plan by accident)."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"-c {text}: no such file")
    return path


# -- signals -------------------------------------------------------------------------------------

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _raise_stopping(signum: int, frame: FrameType | None) -> None:
    raise Stopping(signum)


def _handle_stop_signals(handler: Handler) -> dict[int, Handler]:
    previous: dict[int, Handler] = {}
    for sig in STOP_SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore(previous: dict[int, Handler]) -> None:
    for sig, handler in previous.items():
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(sig, handler)
