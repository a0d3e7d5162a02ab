"""What every command needs: the plan, a wired Cockpit, confirmations, terse formatting."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from cockpit.core.config import find_config, load_plan
from cockpit.core.control import Cockpit
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import current_operator
from cockpit.core.plan import Plan


class UsageError(Exception):
    """A command used wrongly; one line, exit 2."""


def load(args: argparse.Namespace) -> Plan:
    return load_plan(find_config(args.config, os.environ), os.environ)


def open_cockpit(args: argparse.Namespace) -> Cockpit:
    plan = load(args)
    stale_after = {name: spec.stale_after_s for name, spec in plan.sources.items()}
    return Cockpit(
        plan=plan, operator=current_operator(), metrics=MetricStore(stale_after=stale_after)
    )


def confirm(args: argparse.Namespace, question: str, *, typed: str | None = None) -> bool:
    """Ask on the terminal (or read a line from piped stdin); --yes answers for the operator.

    With `typed`, the operator must type that word (e.g. the rollback method) to go ahead.
    """
    if args.yes:
        return True
    prompt = f"{question} Type '{typed}' to confirm: " if typed else f"{question} [y/N] "
    print(prompt, end="", flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print()
        return False
    answer = answer.strip()
    return answer == typed if typed else answer.lower() in ("y", "yes")


def clock_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
