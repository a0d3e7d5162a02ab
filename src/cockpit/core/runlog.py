"""`cockpit run --log FILE`: what a running cockpit announces, appended to a file to read after
an incident — and nothing logged ever written over the full-screen screen.

Everything goes through Python `logging`. The lines the cockpit shows (events, warnings,
errors, action output, source transitions, autopilot decisions) are INFO records of the
`cockpit.events` logger: the headless run logs each line it prints, the TUI each line it
shows in its event pane. Other `cockpit.*` records count from INFO, everyone else's (httpx,
asyncio, psycopg, redis ...) from WARNING.

`capture()` puts one handler on the root logger for the length of a run: the file with
`--log`, a sink without it. Either way no record falls through to `logging.lastResort`, which
writes to stderr — over the TUI. `warnings.warn` output is routed into logging the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cockpit.core.step import mask

EVENTS = "cockpit.events"  # the logger of the lines a person sees
OURS = "cockpit"


class LogFileError(Exception):
    """The --log file cannot be appended to; one line for a person."""


def open_log(path: str | os.PathLike[str]) -> TextIO:
    """`path` opened for appending (created if missing), or LogFileError saying why not."""
    where = Path(path)
    if not where.parent.is_dir():
        raise LogFileError(f"--log {where}: folder {where.parent} does not exist")
    if where.is_dir():
        raise LogFileError(f"--log {where}: is a folder, not a file")
    try:
        # Append mode is O_APPEND: two cockpits sharing one log interleave whole lines.
        return where.open("a", encoding="utf-8", errors="backslashreplace")
    except OSError as err:
        raise LogFileError(f"--log {where}: cannot write: {err.strerror or err}") from None


def stamp(created: float) -> str:
    """UTC ISO 8601 to the millisecond: `2025-06-01T03:04:05.678Z`."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def printable(text: str) -> str:
    """Control characters escaped, so `cat` of the log cannot drive the reader's terminal."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def wanted(record: logging.LogRecord) -> bool:
    """Ours from INFO, other libraries' from WARNING (their INFO is per request: noise)."""
    ours = record.name == OURS or record.name.startswith(OURS + ".")
    return record.levelno >= (logging.INFO if ours else logging.WARNING)


def format_record(record: logging.LogRecord, secrets: Iterable[str] = ()) -> str:
    """One or more lines, each starting with the record's UTC time.

    An event line is written as shown (`<time> advanced to phase 2`); any other record says
    its level and logger. A traceback or multi-line message continues on lines of their own,
    each stamped too, so `grep` and `sort` on the file keep working.
    """
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    when = stamp(record.created)
    first, *rest = mask(text, secrets).split("\n")
    if record.name != EVENTS:
        first = f"{record.levelname} {record.name}: {first}"
    lines = [f"{when} {printable(first)}"]
    lines += [f"{when}   {printable(line)}" for line in rest]
    return "\n".join(lines) + "\n"


class LineFileHandler(logging.Handler):
    """Writes each wanted record to an open text file at once and flushes it: after a crash
    (or a SIGKILL) the file holds every line said before it. A failed write (disk full) is
    remembered in `failed`, never raised or printed: stderr may be under the TUI."""

    def __init__(self, stream: TextIO, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(logging.NOTSET)
        self.stream = stream
        self.secrets = tuple(secrets)
        self.failed: str | None = None
        self.addFilter(wanted)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(format_record(record, self.secrets))
            self.stream.flush()
        except Exception as exc:  # never let logging break or scribble on the run
            self.failed = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.acquire()
        try:
            if not self.stream.closed:
                self.stream.close()
        finally:
            self.release()
        super().close()


class _Sink(logging.Handler):
    """Takes every record and drops it: a handler on the root, so lastResort stays silent."""

    def emit(self, record: logging.LogRecord) -> None:
        return None


@contextmanager
def capture(
    stream: TextIO | None,
    *,
    secrets: Iterable[str] = (),
    stderr: bool = False,
) -> Iterator[LineFileHandler | None]:
    """For the length of a run: every log record to `stream` (or nowhere when None).

    `stderr=True` (headless) also shows warnings and errors on stderr, as Python would
    without a handler. Restores the loggers and closes `stream` on exit.
    """
    root, ours = logging.getLogger(), logging.getLogger(OURS)
    handlers: list[logging.Handler] = []
    file_handler = LineFileHandler(stream, secrets=secrets) if stream is not None else None
    handlers.append(file_handler or _Sink())
    if stderr:
        shown = logging.StreamHandler(sys.stderr)
        shown.setLevel(logging.WARNING)
        shown.setFormatter(logging.Formatter("cockpit: %(levelname)s %(name)s: %(message)s"))
        handlers.append(shown)
    level = ours.level
    ours.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield file_handler
    finally:
        logging.captureWarnings(False)
        for handler in handlers:
            root.removeHandler(handler)
        ours.setLevel(level)
        if file_handler is not None:
            file_handler.close()


def events() -> logging.Logger:
    """The logger every line shown to a person is logged to."""
    return logging.getLogger(EVENTS)
