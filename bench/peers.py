"""The peers and tools the benchmarks compare with, installed when missing:

- `hey` and `tmux` from Debian's packages (apt-get, as root; otherwise the command is printed
  and the columns that need them are skipped);
- `pgbench` ships with the PostgreSQL server packages (`make servers` installs them);
- `pg_activity` from PyPI in its own venv, bench/.venv-peers/pg_activity;
- `numpy` from PyPI into bench/.venv-peers/numpy (a --target folder the quantile benchmark puts
  on sys.path), so neither the project's venv nor pyproject.toml carries it.

`python bench/peers.py` installs whatever is missing and says what it did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import PEERS, say

PG_ACTIVITY = PEERS / "pg_activity" / "bin" / "pg_activity"
NUMPY = PEERS / "numpy"
APT = {"hey": "hey", "tmux": "tmux"}


def _apt_install(package: str) -> bool:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"missing {package}: install it with `sudo apt-get install -y {package}`")
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    say(f"installing {package} (apt-get)")
    if subprocess.run(argv, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        if subprocess.run(argv, env=env, capture_output=True).returncode != 0:
            say(f"could not install {package}: run `apt-get install -y {package}`")
            return False
    return True


def tool(name: str) -> str | None:
    """The path of `hey` or `tmux`, installing it when we can; None when it is not to be had."""
    found = shutil.which(name)
    if found is None and _apt_install(APT[name]):
        found = shutil.which(name)
    return found


def _pip(python: Path | str, *args: str) -> bool:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        say(done.stderr.strip()[-2000:])
    return done.returncode == 0


def pg_activity() -> Path | None:
    """pg_activity in its own venv (it brings its own psycopg and blessed)."""
    if PG_ACTIVITY.exists():
        return PG_ACTIVITY
    venv = PG_ACTIVITY.parent.parent
    say(f"installing pg_activity from PyPI into {venv}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    if not _pip(venv / "bin" / "python", "pg_activity[psycopg]"):
        return None
    return PG_ACTIVITY if PG_ACTIVITY.exists() else None


def numpy_path() -> Path | None:
    """A folder holding numpy for this Python, to put on sys.path (installed when missing)."""
    if (NUMPY / "numpy").is_dir():
        return NUMPY
    say(f"installing numpy from PyPI into {NUMPY}")
    if not _pip(sys.executable, "--target", str(NUMPY), "numpy"):
        return None
    return NUMPY


def pgbench() -> Path | None:
    from cockpit.demo.postgres_proc import find_bindir

    bindir = find_bindir()
    if bindir is not None and (bindir / "pgbench").exists():
        return bindir / "pgbench"
    found = shutil.which("pgbench")
    return Path(found) if found else None


def main() -> int:
    missing = []
    for name, path in (
        ("tmux", tool("tmux")),
        ("hey", tool("hey")),
        ("pg_activity", pg_activity()),
        ("numpy", numpy_path()),
        ("pgbench", pgbench()),
    ):
        say(f"{name:<12} {path or 'MISSING'}")
        if path is None:
            missing.append(name)
    if missing:
        say("missing: " + ", ".join(missing) + " (the benchmarks that need them are skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
