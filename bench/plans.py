"""Plans (cockpit.toml files) written for a benchmark into its scratch folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from common import REPO

HEAD = """[rollout]
name = "bench"
state = ".cockpit/state.toml"
audit = ".cockpit/audit.jsonl"

[[phase]]
name = "one"
traffic = 100
"""


def http_source(name: str, url: str, *, every: str, timeout: str = "5s") -> str:
    return (
        f'\n[sources.{name}]\nkind = "http"\nurl = "{url}"\nevery = "{every}"\n'
        f'timeout = "{timeout}"\nwindow = "1m"\n'
    )


def postgres_source(name: str, dsn: str, *, every: str) -> str:
    return f'\n[sources.{name}]\nkind = "postgres"\ndsn = "{dsn}"\nevery = "{every}"\n'


def write(folder: Path, *sources: str) -> Path:
    path = folder / "cockpit.toml"
    path.write_text(HEAD + "".join(sources))
    return path


def bundled(folder: Path) -> Path:
    """The repository's own plan (three endpoints at 1 s, Redis and PostgreSQL at 2 s)."""
    path = folder / "cockpit.toml"
    shutil.copy(REPO / "cockpit.toml", path)
    return path
