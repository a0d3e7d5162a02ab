"""`cockpit init`: write the commented starter plan, never over an existing file.

The starter is package data (`cockpit/templates/starter.toml`), read through importlib.resources
so an installed cockpit finds it wherever it lives. The file appears whole or not at all: the
text goes to a temporary file first, which is then hard-linked to its name. Unlike a rename,
a link fails when the name is taken, so a file someone created meanwhile is never replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import secrets
import shlex
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from cockpit.commands.common import UsageError, printable
from cockpit.core.atomic import TEMP_SUFFIX, fsync_folder, write_all
from cockpit.core.config import DEFAULT_NAME, ENV_VAR

TEMPLATE = "starter.toml"
# `${NAME}` or `${NAME:-default}`, not the escaped `$${`.
_REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# link() errors that mean "this filesystem has no hard links" (vfat, some network mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


def init(args: argparse.Namespace) -> int:
    target = Path(args.config).expanduser() if args.config else Path(DEFAULT_NAME)
    shown = printable(str(target))
    if target.is_dir():
        raise UsageError(f"{shown} is a folder: name the file, e.g. -c {shown}/{DEFAULT_NAME}")
    if os.path.lexists(target):
        raise UsageError(f"{shown} already exists: not overwriting it (pick another path with -c)")
    text = starter_text()
    try:
        create_exclusively(target, text.encode("utf-8"))
    except FileExistsError:  # created between the check above and the link
        raise UsageError(f"{shown} already exists: not overwriting it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror or exc}") from None
    for line in next_steps(target, env_references(text), os.environ, explicit=bool(args.config)):
        print(printable(line))
    return 0


def starter_text() -> str:
    return files("cockpit.templates").joinpath(TEMPLATE).read_text(encoding="utf-8")


def env_references(text: str) -> dict[str, str | None]:
    """The variables the plan reads (comments aside), in order, with their defaults."""
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            for match in _REFERENCE.finditer(line):
                found.setdefault(match.group(1), match.group(2))
    return found


def next_steps(
    target: Path,
    variables: Mapping[str, str | None],
    environ: Mapping[str, str],
    *,
    explicit: bool,
) -> list[str]:
    # Without -c the other commands look at $COCKPIT_CONFIG before ./cockpit.toml.
    option = f" -c {shlex.quote(str(target))}" if explicit or environ.get(ENV_VAR) else ""
    width = max((len(name) for name in variables), default=0)
    lines = [
        f"wrote {target}: a starter plan (the Phase 3 caching rollout), each key explained.",
        "next:",
        "  1. edit it for your system: the sources, baseline, rules and checklists; replace the",
        "     commands marked TODO ([traffic], [[rollback]]), which fail until you do",
        "  2. set the environment variables it reads (unset, each takes its default):",
    ]
    for name, default in variables.items():
        if environ.get(name):
            now = "set"
        elif default is None:
            now = "required"
        else:
            now = f"default {default}" if default else "default empty (off)"
        lines.append(f"       {name:<{width}}  {now}")
    lines += [
        f"  3. cockpit validate{option}   check it",
        f"  4. cockpit status{option}     measure and judge the gates now",
        f"  5. cockpit run{option}        the full-screen cockpit",
    ]
    return lines


def create_exclusively(path: Path, data: bytes) -> None:
    """Create `path` holding `data`, whole or not at all; FileExistsError if it exists.

    Missing folders are made (with the umask's permissions, as the file is).
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the folder should be: not "the plan exists"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
    temp = _write_temp(path, data)
    try:
        try:
            os.link(temp, path)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _write_new(path, data)  # exclusive still, though a crash may leave it partial
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_folder(folder)


def _write_temp(path: Path, data: bytes) -> Path:
    """A fsync'd temp file beside `path`, named as atomic_write names its own."""
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            _write_new(temp, data)
        except FileExistsError:
            continue
        return temp
    raise OSError(errno.EAGAIN, "no free temporary file name")


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` (O_EXCL, mode 0o666 less the umask), write and fsync it; on failure,
    remove what was created."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
