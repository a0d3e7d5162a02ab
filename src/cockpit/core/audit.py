"""The audit log: append-only JSONL, one fsync'd line per event, each line chained to the one
before it by SHA-256 so an edited or removed line shows (`verify`).

Several cockpits may append to one log: each append holds `<path>.lock` while it reads the
last line (for the chain) and writes its own with a single write on an O_APPEND descriptor.
A line torn by a crash (no newline at the end of the file) is skipped by readers and cut off,
with an `audit_repaired` line saying so, by the next append.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cockpit.core.atomic import (
    LockTimeout,
    ensure_folder,
    exclusive_lock,
    fsync_folder,
    open_with_mode,
    write_all,
)
from cockpit.core.operator import Operator

DEFAULT_LOCK_TIMEOUT = 10.0
_RESERVED = frozenset({"time", "operator", "address", "prev"})
_CHUNK = 64 * 1024


class AuditError(Exception):
    """The log cannot be read or written. One line for a person, naming the file (and line)."""


class AuditLog:
    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._clock = clock
        self._lock_timeout = lock_timeout
        self.torn_tail = 0  # bytes of a torn last line the latest read()/verify() skipped

    def append(
        self,
        event: str,
        *,
        operator: Operator | str,
        phase: int | None = None,
        before: Mapping[str, object] | None = None,
        after: Mapping[str, object] | None = None,
        reason: str = "",
        gates: Sequence[Mapping[str, object]] | None = None,
        **extra: object,
    ) -> dict[str, Any]:
        """Write one event durably (fdatasync'd before returning) and return it as written:
        JSON-ready values, with `time`, `operator`, `address` first and `prev` last."""
        clash = _RESERVED.intersection(extra)
        if clash:
            raise TypeError(f"audit fields {sorted(clash)} are set by the log itself")
        who = operator if isinstance(operator, Operator) else Operator(str(operator))
        details = _clean(
            {"event": event, "phase": phase, "before": before, "after": after, "reason": reason}
            | {"gates": gates, **extra}
        )
        try:
            with self._locked(), self._open_for_append() as fd:
                prev, end = _last_line_hash(fd)
                if end.torn:
                    prev = self._repair(fd, end, prev, who)
                # Stamped under the lock, so the file's order is also the order in time.
                return _write_entry(fd, self._stamp(who) | details, prev)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot append: {exc.strerror or exc}") from None

    def read(self) -> list[dict[str, Any]]:
        """Every complete entry. A torn last line is skipped (see `torn_tail`); a broken line
        anywhere else raises AuditError naming its number."""
        entries = []
        for number, line in self._lines():
            try:
                entries.append(_parse_line(line))
            except ValueError as exc:
                raise AuditError(f"{self.path}:{number}: {exc}") from None
        return entries

    def verify(self) -> str | None:
        """None when the chain is intact, else one line naming where it breaks.

        A mismatch at line N means line N-1's bytes changed or lines between them went
        missing, so the message names both. Nothing follows the last line: a hash chain alone
        cannot tell whether it was edited or whether lines were cut from the end."""
        prev = ""
        try:
            for number, line in self._lines():
                try:
                    entry = _parse_line(line)
                except ValueError as exc:
                    return f"line {number} is damaged ({exc})"
                if entry.get("prev") != prev:
                    if number == 1:
                        return "line 1 was altered or lines before it were removed"
                    return (
                        f"line {number - 1} was altered or a line after it was removed "
                        f"(line {number} does not follow it)"
                    )
                prev = _digest(line)
        except AuditError as exc:
            return str(exc)
        return None

    # --- internals ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        held = contextlib.ExitStack()
        try:
            held.enter_context(
                exclusive_lock(self.lock_path, timeout=self._lock_timeout, what="audit log")
            )
        except LockTimeout as exc:
            raise AuditError(str(exc)) from None
        with held:
            yield

    @contextlib.contextmanager
    def _open_for_append(self) -> Iterator[int]:
        ensure_folder(self.path.parent)
        fd, created = open_with_mode(self.path, os.O_RDWR | os.O_APPEND)
        try:
            if created:
                fsync_folder(self.path.parent)  # the new name must survive a crash too
            yield fd
        finally:
            os.close(fd)

    def _repair(self, fd: int, end: _End, prev: str, who: Operator) -> str:
        os.ftruncate(fd, end.good_size)
        note = self._stamp(who) | {
            "event": "audit_repaired",
            "phase": None,
            "before": None,
            "after": None,
            "reason": f"removed {end.torn} bytes of a line torn by a crash",
            "gates": None,
        }
        return _digest(_line_bytes(_write_entry(fd, note, prev)))

    def _stamp(self, who: Operator) -> dict[str, Any]:
        return {"time": _iso(self._clock()), "operator": who.user, "address": who.address}

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(number, bytes without newline) of every complete line; sets `torn_tail`."""
        self.torn_tail = 0
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        lines = data.split(b"\n")
        self.torn_tail = len(lines[-1])  # "" when the file ends with a newline
        yield from enumerate(lines[:-1], start=1)


@dataclasses.dataclass(frozen=True)
class _End:
    good_size: int  # bytes up to and including the last newline
    torn: int  # bytes after it


def _last_line_hash(fd: int) -> tuple[str, _End]:
    """The hash of the last complete line ("" for an empty log), found by reading backwards."""
    size = os.fstat(fd).st_size
    newlines: list[int] = []
    pos = size
    while pos > 0 and len(newlines) < 2:
        start = max(0, pos - _CHUNK)
        chunk = os.pread(fd, pos - start, start)
        at = len(chunk)
        while len(newlines) < 2:
            at = chunk.rfind(b"\n", 0, at)
            if at < 0:
                break
            newlines.append(start + at)
        pos = start
    if not newlines:
        return "", _End(good_size=0, torn=size)
    last_nl = newlines[0]
    line_start = newlines[1] + 1 if len(newlines) > 1 else 0
    line = os.pread(fd, last_nl - line_start, line_start)
    return _digest(line), _End(good_size=last_nl + 1, torn=size - last_nl - 1)


def _write_entry(fd: int, fields: dict[str, Any], prev: str) -> dict[str, Any]:
    entry = {**fields, "prev": prev}
    data = _line_bytes(entry) + b"\n"
    start = os.fstat(fd).st_size
    try:
        write_all(fd, data)  # one write in practice; a loop only if the kernel cuts it short
        os.fdatasync(fd)
    except BaseException:
        with contextlib.suppress(OSError):  # never leave half a line for others to trip on
            os.ftruncate(fd, start)
        raise
    return entry


def _line_bytes(entry: Mapping[str, Any]) -> bytes:
    text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (e.g. from undecodable file names)
        return json.dumps(entry, separators=(",", ":"), allow_nan=False).encode("ascii")


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of `value`: dataclasses, enums, paths, times, sets... never an error.
    Non-finite floats become strings, since strict JSON (and jq) has no NaN."""
    if depth > 32:
        return "<too deep>"
    if isinstance(value, enum.Enum):
        return _clean(value.value, depth + 1)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {_key(k): _clean(v, depth + 1) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _clean(getattr(value, f.name, None), depth + 1)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_clean(v, depth + 1) for v in value), key=_safe_str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return _safe_str(value)


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return _safe_str(key.value)
    return _safe_str(key)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
