"""Files several cockpits share: whole-file atomic replacement and an advisory lock with a timeout.

The state folder may be shared by a Unix group (the on-call and the release lead are different
users), so folders are created setgid and files get their mode exactly (0o664 by default)
instead of what the umask leaves, which would usually drop the group's write bit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from fcntl import LOCK_EX, LOCK_NB, LOCK_UN, flock
from pathlib import Path

from cockpit.core.operator import current_operator

TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o664
FOLDER_MODE = 0o2775


def atomic_write(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never a mix.

    Temp file in the same folder (rename is atomic only within one filesystem), fsync, rename,
    fsync the folder so the rename itself survives a power cut. The temp file never outlives
    a failure in this process; one killed mid-write leaves a stale `.<name>.*.tmp` behind,
    which `remove_stale_temps` clears while holding the writers' lock.
    """
    ensure_folder(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_folder(path.parent)


def temp_files(path: Path) -> list[Path]:
    """Temp files `atomic_write` made for `path` that are still there (a writer was killed)."""
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return sorted(
        path.parent / n for n in names if n.startswith(prefix) and n.endswith(TEMP_SUFFIX)
    )


def remove_stale_temps(path: Path) -> int:
    """Delete leftover temp files of `path`. Call only while holding the lock all writers take:
    then no live writer can own one. Returns how many were removed."""
    removed = 0
    for temp in temp_files(path):
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
            removed += 1
    return removed


def ensure_folder(folder: Path, *, mode: int = FOLDER_MODE) -> None:
    """Create `folder` and missing parents. The permission bits respect the umask, except in a
    shared folder (one its group can write, as the on-call and the release lead share): there
    the group keeps read, write and search whatever the creator's umask, or the other
    operator could not write the state. The setgid bit is set explicitly because Linux mkdir
    ignores it (files then inherit the group)."""
    if folder.is_dir():
        return
    missing: list[Path] = []
    existing = folder
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            existing = candidate
            break
        missing.append(candidate)
    shared = bool(os.stat(existing).st_mode & stat.S_IWGRP)
    for created in reversed(missing):
        try:
            os.mkdir(created, mode & 0o777)
        except FileExistsError:  # another cockpit made it a moment ago
            continue
        bits = stat.S_IMODE(os.stat(created).st_mode)
        if shared:
            bits |= stat.S_IRWXG
        if mode & stat.S_ISGID:
            bits |= stat.S_ISGID
        os.chmod(created, bits)


def open_with_mode(path: Path, flags: int, mode: int = FILE_MODE) -> tuple[int, bool]:
    """Open `path`, creating it with exactly `mode` if missing. Returns (fd, created)."""
    for _ in range(5):
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            try:
                return os.open(path, flags), False
            except FileNotFoundError:  # removed between our two opens; try again
                continue
        try:
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return fd, True
    return os.open(path, flags), False


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LockTimeout(Exception):
    """The lock stayed taken for the whole timeout. One line, naming the holder when known."""

    def __init__(self, what: str, lock_path: Path, waited: float, holder: str) -> None:
        self.lock_path = lock_path
        self.holder = holder
        detail = f"{holder}; " if holder else ""
        super().__init__(
            f"{what} is locked by another cockpit ({detail}waited {waited:g}s for {lock_path})"
        )


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, *, timeout: float, what: str = "file") -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` (created 0o664), waiting at most `timeout` seconds.

    flock has no timeout of its own, so this polls with a short, growing sleep. The lock dies
    with its process, so a SIGKILLed cockpit never leaves it taken. The holder writes who it
    is into the lock file, so whoever times out can say who is in the way.
    """
    ensure_folder(lock_path.parent)
    try:
        fd, _ = open_with_mode(lock_path, os.O_RDWR)
        writable = True
    except PermissionError:  # flock works on a read-only descriptor too
        fd, writable = os.open(lock_path, os.O_RDONLY), False
    try:
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                flock(fd, LOCK_EX | LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(what, lock_path, timeout, _read_holder(fd)) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.01)  # short: a commit holds the lock for milliseconds
        if writable:
            _write_holder(fd)
        try:
            yield
        finally:
            flock(fd, LOCK_UN)
    finally:
        os.close(fd)


def _write_holder(fd: int) -> None:
    since = time.strftime("%H:%M:%S UTC", time.gmtime())
    note = f"pid {os.getpid()} {current_operator()} since {since}\n".encode()
    with contextlib.suppress(OSError):  # only a courtesy for the error message
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
