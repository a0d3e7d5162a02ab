"""`cockpit report`: the rollout so far, from the state file, the audit log and the metric
history, as Markdown on stdout (or `-o FILE`), or with `--html` an HTML file with charts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cockpit.commands.common import UsageError, load
from cockpit.core.audit import AuditLog
from cockpit.core.history import HistoryError, HistoryReader, history_path
from cockpit.core.report_data import gather
from cockpit.core.report_html import render_html
from cockpit.core.report_markdown import render_markdown
from cockpit.core.state import StateStore

DEFAULT_HTML = "rollout-report.html"


def report(args: argparse.Namespace) -> int:
    plan = load(args)
    if not plan.state_path.exists():
        raise UsageError(f"{plan.state_path}: no state yet: nothing to report before a rollout")
    state = StateStore(plan.state_path).load().state  # StateError: one line, exit 2
    audit = AuditLog(plan.audit_path)
    entries = audit.read()  # AuditError: one line, exit 2
    problem = audit.verify()
    notes = []
    history_file = history_path(plan.state_path)
    if not history_file.exists():
        notes.append(
            f"no metric history ({history_file}): it is recorded by a watching cockpit"
            " (`cockpit run`), so the metrics below are empty"
        )
    try:
        with HistoryReader(history_file) as history:
            built = gather(
                plan,
                state,
                entries,
                history,
                time.time(),
                audit_check=f"BROKEN: {problem}" if problem else "hash chain intact",
                notes=notes,
            )
    except HistoryError as exc:
        raise UsageError(str(exc)) from None
    text = render_html(built) if args.html else render_markdown(built)
    output = args.output or (DEFAULT_HTML if args.html else None)
    if output is None or output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
    print(f"report written to {output}")
    return 0
