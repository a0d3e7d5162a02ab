"""`bench/run`: install the missing peers, run each benchmark script (or those named) in turn,
then print one table from their bench/results/*.json; `--markdown` prints it as the rows of
BENCHMARKS.md. A script that fails is reported as failed and the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import common
import peers

ORDER = [
    "probe_accuracy",
    "quantiles",
    "footprint",
    "startup",
    "key_latency",
    "scale",
    "poll_cost",
]


def _load(name: str) -> dict[str, Any] | None:
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row_text(row: dict[str, Any]) -> tuple[str, str, str, str, str]:
    r = common.Row(**row)
    value, peer, target, verdict = r.text()
    return r.what, value, peer, target, verdict


def plain(results: list[dict[str, Any]], failed: list[str]) -> str:
    lines = []
    for res in results:
        quick = " (quick)" if res["quick"] else ""
        lines.append(f"\n{res['title']}{quick} - {res['runs']} run(s), {res['started']}")
        for row in res["rows"]:
            what, value, peer, target, verdict = _row_text(row)
            lines.append(f"  {what:<44} {value:>14}  {peer:<30} {target:<16} {verdict}")
    for name in failed:
        lines.append(f"\n{name}: FAILED (see its output above)")
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]], failed: list[str]) -> str:
    lines = [
        "| benchmark | figure | cockpit | peer or reference | target | |",
        "| --- | --- | --: | --- | --- | --- |",
    ]
    for res in results:
        for i, row in enumerate(res["rows"]):
            what, value, peer, target, verdict = _row_text(row)
            title = res["title"] if i == 0 else ""
            cells = [title, what.strip(), value, peer, target, verdict]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for name in failed:
        lines.append(f"| {name} | FAILED | | | | |")
    lines.append("")
    for res in results:
        m = res["machine"]
        lines.append(
            f"- {res['title']}: `{res['command']}` ({res['started']}, {res['seconds']:.0f} s,"
            f" load average at start {', '.join(str(x) for x in m['loadavg_at_start'])};"
            f" commit {m.get('commit')}, {m.get('src_files_uncommitted')} files under src/"
            " uncommitted)"
        )
        lines += [f"  - {note}" for note in res["notes"]]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description="Run the benchmarks and print one table.")
    p.add_argument("names", nargs="*", help=f"some of: {' '.join(ORDER)}")
    p.add_argument("--quick", action="store_true", help="each benchmark in a few seconds")
    p.add_argument("--runs", type=int, help="repetitions for every benchmark")
    p.add_argument("--markdown", action="store_true", help="print the rows for BENCHMARKS.md")
    p.add_argument("--table-only", action="store_true", help="only print the last results")
    args = p.parse_args()
    unknown = [n for n in args.names if n not in ORDER]
    if unknown:
        print(f"bench/run: unknown benchmark {unknown[0]!r} (known: {' '.join(ORDER)})")
        return 2
    names = args.names or ORDER
    failed: list[str] = []
    if not args.table_only:
        peers.main()
        for name in names:
            argv = [sys.executable, str(common.BENCH / f"{name}.py")]
            argv += ["--quick"] if args.quick else []
            argv += ["--runs", str(args.runs)] if args.runs else []
            common.say(f"\n== {name} ==")
            (common.RESULTS / f"{name}.json").unlink(missing_ok=True)  # no stale figures
            began = time.monotonic()
            if subprocess.run(argv, cwd=common.REPO).returncode != 0:
                failed.append(name)
            common.say(f"({time.monotonic() - began:.0f} s)")
    results = [r for r in (_load(n) for n in names) if r is not None]
    m = common.machine()
    head = (
        f"\nmachine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Linux {m['kernel']},"
        f" Python {m['python']}"
    )
    print(head)
    print(markdown(results, failed) if args.markdown else plain(results, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
