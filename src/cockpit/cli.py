"""`cockpit` command line: argument parsing and dispatch only; the work is in `commands/`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from cockpit import __version__
from cockpit.commands.common import UsageError
from cockpit.core.audit import AuditError
from cockpit.core.config import ConfigError
from cockpit.core.control import Refused
from cockpit.core.state import StateChanged, StateError

EXAMPLES = {
    "validate": "cockpit validate -c cockpit.toml",
    "status": "cockpit status --for 30s --json | jq .rollout.status",
    "advance": (
        "cockpit advance\n"
        '  cockpit advance --force --reason "bake cut short: incident review signed off"'
    ),
    "hold": 'cockpit hold --reason "investigating p99 spike on /api/farms"',
    "resume": "cockpit resume",
    "check": 'cockpit check "No critical errors in logs"\n  cockpit check 2',
    "uncheck": "cockpit uncheck 2",
    "baseline": "cockpit baseline --for 15m",
    "rollback": "cockpit rollback flag --dry-run\n  cockpit rollback instant --yes",
    "log": "cockpit log --json | tail -n 5",
    "report": "cockpit report > rollout-report.md\n  cockpit report --html -o report.html",
    "run": "cockpit run --headless >> rollout.log",
    "cancel": 'cockpit cancel --reason "error spike is the load test, not the release"',
    "init": "cockpit init\n  cockpit init -c deploy/cockpit.toml",
    "demo": "cockpit demo\n  cockpit demo --headless --for 3m --fault errors-at=90s --keep run1",
}


MEASURE_HELP = "poll the sources for D before judging (default: two polls each; 0 = do not poll)"


def _add_common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """-c and --yes work before or after the command; only the top level sets defaults,
    so a value given before the command is not reset by the command's parser."""
    extra: dict[str, object] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="the plan (default: $COCKPIT_CONFIG, then ./cockpit.toml)",
        **extra,  # type: ignore[arg-type]
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask for confirmation",
        **extra,  # type: ignore[arg-type]
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, defaults=False)
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="A terminal cockpit for running a gradual production rollout.",
        epilog="example:\n  cockpit status\n\nRun `cockpit COMMAND --help` for each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser, defaults=True)
    parser.add_argument("--version", action="version", version=f"cockpit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command("init", "write a commented cockpit.toml starter here")
    command("validate", "check the plan and say what it means")
    p = command("status", "judge the rollout now (exit 0 ok, 1 failing, 3 unknown, 2 error)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--for", dest="measure", metavar="D", help=MEASURE_HELP)
    p = command("advance", "enter the next phase when its gates allow it")
    p.add_argument("--for", dest="measure", metavar="D", help=MEASURE_HELP)
    p.add_argument("--force", action="store_true", help="advance despite the gates")
    p.add_argument("--reason", default="", help="why (required with --force)")
    p.add_argument("--dry-run", action="store_true", help="show what would run; change nothing")
    p = command("hold", "block advances while you investigate")
    p.add_argument("--reason", required=True, help="why the rollout is held")
    p = command("resume", "lift a hold")
    p.add_argument("--reason", default="", help="why it is safe to go on")
    for name, verb in (("check", "tick"), ("uncheck", "untick")):
        p = command(name, f"{verb} a manual item of the current checklist")
        p.add_argument("item", help="the item's text, a unique part of it, or its number")
    p = command("baseline", "measure the current metrics and keep them as the baseline")
    p.add_argument("--for", dest="window", required=True, metavar="D", help="how long, e.g. 15m")
    p = command("rollback", "roll back by one of the plan's methods")
    p.add_argument("method", nargs="?", help="method name (omit to list them)")
    p.add_argument("--dry-run", action="store_true", help="show what would run; run nothing")
    p.add_argument("--reason", default="", help="why")
    p = command("run", "watch the rollout (--headless: log one line per change, no screen)")
    p.add_argument("--headless", action="store_true", help="no screen: log changes to stdout")
    p.add_argument("--for", dest="measure", metavar="D", help="stop after D (default: run on)")
    p.add_argument("--read-only", action="store_true", help="look, never act (for watchers)")
    p.add_argument("--log", metavar="FILE", help="append the engine's log to FILE (UTC times)")
    p.add_argument(
        "--theme",
        choices=("dark", "light", "high-contrast", "mono"),
        help="colours of the full-screen cockpit (default: [rollout] theme, else dark)",
    )
    p = command("cancel", "stop an armed automatic rollback (its triggers stay quiet for cooldown)")
    p.add_argument("rules", nargs="*", metavar="RULE", help="trigger rule text (default: failing)")
    p.add_argument("--reason", required=True, help="why it must not roll back")
    p.add_argument("--for", dest="measure", metavar="D", help=MEASURE_HELP)
    p = command("demo", "the whole rollout, live, on a demo platform it starts (nothing to set up)")
    p.add_argument("--fault", action="append", metavar="SPEC", help="e.g. errors-at=90s")
    p.add_argument("--headless", action="store_true", help="no screen: log changes to stdout")
    p.add_argument("--for", dest="measure", metavar="D", help="with --headless: stop after D")
    p.add_argument("--in-process", action="store_true", help="no Redis/PostgreSQL servers")
    p.add_argument("--keep", metavar="DIR", help="keep plan, state and audit in DIR (for report)")
    p = command("log", "show the audit log")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--verify", action="store_true", help="check the hash chain")
    p = command("report", "the rollout report: phases, gates, holds, rollbacks, metrics, charts")
    p.add_argument("--html", action="store_true", help="an HTML file with SVG charts")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="default: stdout; rollout-report.html with --html"
    )
    return parser


# "module:function" in cockpit.commands, imported when its command runs: `cockpit status`
# need not load the demo platform or the report's renderers (start-up time).
HANDLERS = {
    "validate": "status:validate",
    "status": "status:status",
    "advance": "operate:advance",
    "hold": "operate:hold",
    "resume": "operate:resume",
    "check": "operate:check",
    "uncheck": "operate:uncheck",
    "baseline": "operate:baseline",
    "rollback": "operate:rollback",
    "log": "log:show",
    "report": "report:report",
    "run": "run:run",
    "cancel": "operate:cancel",
    "init": "init:init",
    "demo": "demo:demo",
}


def handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, function = HANDLERS[command].split(":")
    found: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"cockpit.commands.{module}"), function
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return handler(args.command)(args)
    except (ConfigError, UsageError, StateError, AuditError) as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return 2
    except (Refused, StateChanged) as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cockpit: interrupted", file=sys.stderr)
        return 130
    except UnicodeError:
        print("cockpit: text must be valid UTF-8 (arguments, $USER)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`cockpit status | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
