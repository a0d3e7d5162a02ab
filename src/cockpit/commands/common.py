"""What every command needs: the plan, a wired Cockpit, confirmations, terse formatting."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from datetime import UTC, datetime

from cockpit.core.config import find_config, load_plan
from cockpit.core.control import Cockpit
from cockpit.core.durations import DurationError, parse_duration
from cockpit.core.engine import collect, default_duration, store_for
from cockpit.core.notify import Notifier
from cockpit.core.operator import current_operator
from cockpit.core.plan import Plan


class UsageError(Exception):
    """A command used wrongly; one line, exit 2."""


def load(args: argparse.Namespace) -> Plan:
    return load_plan(find_config(args.config, os.environ), os.environ)


def open_cockpit(args: argparse.Namespace, *, keep_s: float = 0.0) -> Cockpit:
    plan = load(args)
    metrics = store_for(plan, keep_s=keep_s)
    notifier = Notifier.for_plan(plan)
    atexit.register(notifier.close, 10.0)  # deliver what this command announced, then exit
    cockpit = Cockpit(plan=plan, operator=current_operator(), metrics=metrics, notifier=notifier)
    cockpit.on_output = lambda line: print(printable(f"    | {line}"), flush=True)
    return cockpit


def measure_for(args: argparse.Namespace, plan: Plan) -> float:
    """How long to poll before judging: `--for D`, else until every source answered twice."""
    text = getattr(args, "measure", None)
    if text is None:
        return default_duration(plan)
    if text.strip() == "0":
        return 0.0
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise UsageError(f"--for: {exc}") from None


def measure(cockpit: Cockpit, args: argparse.Namespace) -> None:
    """Poll the plan's sources so the gates judge live numbers, not nothing."""
    collect(cockpit.plan, cockpit.metrics, measure_for(args, cockpit.plan))


def confirm(args: argparse.Namespace, question: str, *, typed: str | None = None) -> bool:
    """Ask on the terminal (or read a line from piped stdin); --yes answers for the operator.

    With `typed`, the operator must type that word (e.g. the rollback method) to go ahead.
    """
    if args.yes:
        return True
    return ask(question, typed=typed)


def ask(question: str, *, typed: str | None = None) -> bool:
    """A yes/no (or type-this-word) question; no answer (closed stdin, EOF) is a no."""
    prompt = f"{question} Type '{typed}' to confirm: " if typed else f"{question} [y/N] "
    print(prompt, end="", flush=True)
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer:
        print()
        return False
    answer = answer.strip()
    return answer == typed if typed else answer.lower() in ("y", "yes")


def clock_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def printable(line: str) -> str:
    """Control characters shown escaped: a reason typed by another operator cannot move the
    cursor, clear the screen or forge extra lines on ours."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in line)
