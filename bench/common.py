"""What every benchmark script shares: arguments, results as JSON, machine facts, process
figures read from /proc, throwaway folders and processes that are always cleaned up.

Scripts are run as `.venv/bin/python bench/NAME.py [--quick] [--runs N]`; each prints its figures
and writes bench/results/NAME.json, which `bench/run` turns into one table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PEERS = BENCH / ".venv-peers"
PYTHON = REPO / ".venv" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Row:
    """One line of the table: a figure of the cockpit beside its peer or limit."""

    what: str
    value: float | None
    unit: str
    peer: str = ""  # what it is compared with
    peer_value: float | None = None
    target: str = ""  # e.g. "<= 2 ms from truth"; empty when the row only informs
    met: bool | None = None  # None: no target, or could not be judged

    def text(self) -> tuple[str, str, str, str]:
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        peer = self.peer if self.peer_value is None else f"{self.peer} {fmt(self.peer_value)}"
        return f"{fmt(self.value)} {self.unit}".strip(), peer, self.target, verdict


@dataclass
class Result:
    name: str
    title: str
    command: str
    started: str
    seconds: float = 0.0
    quick: bool = False
    runs: int = 1
    machine: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # everything measured, per run
    notes: list[str] = field(default_factory=list)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def parser(description: str, *, runs: int, quick_runs: int = 1) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a few seconds, to check it works")
    p.add_argument("--runs", type=int, default=None, help=f"repetitions (default {runs})")
    p.set_defaults(default_runs=runs, quick_runs=quick_runs)
    return p


def runs_of(args: argparse.Namespace) -> int:
    if args.runs is not None:
        return max(1, int(args.runs))
    return int(args.quick_runs if args.quick else args.default_runs)


def start(name: str, title: str, args: argparse.Namespace) -> Result:
    argv = [str(Path(sys.argv[0]).resolve().relative_to(REPO)), *sys.argv[1:]]
    return Result(
        name=name,
        title=title,
        command=".venv/bin/python " + shlex.join(argv),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        quick=bool(args.quick),
        runs=runs_of(args),
        machine=machine(),
    )


def finish(result: Result, began: float) -> Path:
    """Print the rows and write bench/results/NAME.json."""
    result.seconds = round(time.monotonic() - began, 1)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{result.name}.json"
    path.write_text(json.dumps(asdict(result), indent=1, default=str) + "\n")
    print(f"\n{result.title} ({result.runs} run(s), {result.seconds:.0f} s)")
    for row in result.rows:
        value, peer, target, verdict = row.text()
        print(f"  {row.what:<44} {value:>14}  {peer:<30} {target:<16} {verdict}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  -> {path.relative_to(REPO)}")
    return path


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return {
        **_code(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _code() -> dict[str, Any]:
    """Which code was measured: the commit, and how many files under src/ differ from it."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {"commit": head or None, "src_files_uncommitted": len(dirty)}


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of `values`, linear between order statistics (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def pcts(values: Sequence[float]) -> dict[str, float | None]:
    return {name: quantile(values, q) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


# -- /proc figures ---------------------------------------------------------------------------


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of `pid` (all its threads); with `children`, plus its waited-for ones."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_rss_mib() -> float:
    return rss_mib(os.getpid())


# -- processes and folders -------------------------------------------------------------------


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A world-readable temporary folder under /tmp (the postgres user may need to enter it)."""
    folder = Path(tempfile.mkdtemp(prefix=f"cockpit-bench-{prefix}-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    """SIGTERM its process group, then SIGKILL: nothing we started outlives the benchmark."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout_s)


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """A child in its own process group (so stop_process ends it and its children)."""
    return subprocess.Popen(list(argv), start_new_session=True, **kwargs)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a cockpit under test: none of the caller's cockpit settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COCKPIT_", "APP_URL", "REDIS_URL", "DATABASE_URL", "TMUX"))
    }
    env["PYTHONPATH"] = str(REPO / "src")
    env.update(extra)
    return env


def say(text: str) -> None:
    print(text, flush=True)
