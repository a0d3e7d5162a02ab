"""`cockpit log`: the audit log, for people or as JSON lines; `--verify` checks its hash chain."""

from __future__ import annotations

import argparse
import json

from cockpit.commands.common import load, printable
from cockpit.core.audit import AuditLog


def show(args: argparse.Namespace) -> int:
    plan = load(args)
    audit = AuditLog(plan.audit_path)
    if args.verify:
        problem = audit.verify()
        if problem:
            print(f"{plan.audit_path}: {problem}")
            return 1  # the chain is broken: the log was altered
        print(f"{plan.audit_path}: chain intact")
        return 0
    for entry in audit.read():
        if args.json:
            print(json.dumps(entry, sort_keys=False))
        else:
            print(printable(format_entry(entry)))
    return 0


def format_entry(entry: dict[str, object]) -> str:
    who = entry.get("operator", "?")
    if entry.get("address"):
        who = f"{who}@{entry['address']}"
    parts = [str(entry.get("time", "?")), str(who), str(entry.get("event", "?"))]
    before, after = entry.get("before"), entry.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        was = f"{before.get('status')}/{before.get('phase')}"
        parts.append(f"{was} -> {after.get('status')}/{after.get('phase')}")
    for key in ("item", "method", "step", "error"):
        if entry.get(key):
            parts.append(f"{key}={entry[key]}")
    if entry.get("reason"):
        parts.append(f"reason: {entry['reason']}")
    return "  ".join(parts)
