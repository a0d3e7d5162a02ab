"""`--log FILE`: the line format, which records count, appending, and that nothing logged
reaches stderr while a run's logging is captured."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from cockpit.core.runlog import (
    LineFileHandler,
    LogFileError,
    capture,
    events,
    format_record,
    open_log,
    stamp,
    wanted,
)

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
T = 1_780_000_000.25  # 2026-05-28T20:26:40.250Z


def record(name: str, level: int, message: str, *args: object) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, args, None)
    made.created = T
    return made


def test_stamp_is_utc_iso_to_the_millisecond() -> None:
    assert stamp(T) == "2026-05-28T20:26:40.250Z"
    assert re.fullmatch(STAMP, stamp(0.0))


def test_an_event_line_is_written_as_shown_other_records_say_level_and_logger() -> None:
    assert format_record(record("cockpit.events", logging.INFO, "advanced to phase 2")) == (
        "2026-05-28T20:26:40.250Z advanced to phase 2\n"
    )
    line = format_record(record("httpx", logging.WARNING, "retrying %s", "GET /"))
    assert line == "2026-05-28T20:26:40.250Z WARNING httpx: retrying GET /\n"


def test_every_line_of_a_traceback_is_stamped() -> None:
    try:
        raise ValueError("bad answer")
    except ValueError:
        made = logging.LogRecord(
            "asyncio", logging.ERROR, __file__, 1, "Task failed", (), sys.exc_info()
        )
    made.created = T
    lines = format_record(made).splitlines()
    assert lines[0] == "2026-05-28T20:26:40.250Z ERROR asyncio: Task failed"
    assert lines[-1] == "2026-05-28T20:26:40.250Z   ValueError: bad answer"
    assert all(line.startswith("2026-05-28T20:26:40.250Z ") for line in lines)


def test_control_characters_are_escaped_and_secrets_masked() -> None:
    made = record("cockpit.events", logging.INFO, "out \x1b[2J\rhidden token=s3cret")
    assert format_record(made, ["s3cret"]) == (
        "2026-05-28T20:26:40.250Z out \\x1b[2J\\rhidden token=****\n"
    )


@pytest.mark.parametrize(
    ("name", "level", "kept"),
    [
        ("cockpit.events", logging.INFO, True),
        ("cockpit.core.sources.postgres", logging.INFO, True),
        ("cockpit", logging.DEBUG, False),
        ("cockpitx", logging.INFO, False),  # not ours: only a prefix
        ("httpx", logging.INFO, False),  # one per request: noise
        ("httpx", logging.WARNING, True),
        ("asyncio", logging.ERROR, True),
    ],
)
def test_ours_count_from_info_libraries_from_warning(name: str, level: int, kept: bool) -> None:
    assert wanted(record(name, level, "x")) is kept


def test_open_log_appends(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("earlier\n")
    with open_log(path) as stream:
        stream.write("later\n")
    assert path.read_text() == "earlier\nlater\n"


def test_open_log_says_why_it_cannot(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match=r"folder .*missing does not exist$"):
        open_log(tmp_path / "missing" / "run.log")
    with pytest.raises(LogFileError, match=r": is a folder, not a file$"):
        open_log(tmp_path)
    with pytest.raises(LogFileError, match=r"/proc/version: cannot write: "):
        open_log("/proc/version")  # not writable, even by root


def test_capture_writes_what_counts_and_restores_logging(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    ours = logging.getLogger("cockpit")
    level, root_handlers = ours.level, list(logging.getLogger().handlers)
    with capture(open_log(path), secrets=["hunter2"]) as handler:
        assert handler is not None
        events().info("source cache DOWN: connection refused")
        logging.getLogger("cockpit.run").info("started")
        logging.getLogger("httpx").info("HTTP Request: GET / 200")  # noise: left out
        logging.getLogger("psycopg").warning("password hunter2 rejected")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("unclosed socket", ResourceWarning, stacklevel=1)
    assert handler.stream.closed
    assert ours.level == level
    assert logging.getLogger().handlers == root_handlers
    lines = path.read_text().splitlines()
    assert [re.sub(f"^{STAMP} ", "", line) for line in lines[:3]] == [
        "source cache DOWN: connection refused",
        "INFO cockpit.run: started",
        "WARNING psycopg: password **** rejected",
    ]
    assert re.match(f"{STAMP} WARNING py.warnings: .*ResourceWarning: unclosed socket", lines[3])
    assert all(re.match(STAMP, line) for line in lines)


def test_a_failed_write_is_remembered_not_raised() -> None:
    stream = io.StringIO()
    handler = LineFileHandler(stream)
    stream.close()
    handler.handle(record("cockpit.events", logging.INFO, "lost"))
    assert handler.failed is not None
    assert "closed file" in handler.failed


def test_lines_from_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    with capture(open_log(path)):

        def talk(who: str) -> None:
            for n in range(300):
                events().info("%s says line %d %s", who, n, "x" * 200)

        threads = [threading.Thread(target=talk, args=(w,)) for w in ("ui", "engine")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 600
    assert all(re.fullmatch(f"{STAMP} (ui|engine) says line \\d+ x{{200}}", n) for n in lines)


PROBE = """
import asyncio, logging, warnings
from cockpit.core.runlog import capture
def noise():
    logging.getLogger("httpx").warning("httpx warned")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    logging.getLogger("cockpit.core.x").error("cockpit failed")
    warnings.warn("unclosed", ResourceWarning, stacklevel=1)
warnings.simplefilter("always")
if {captured}:
    with capture(None):
        noise()
else:
    noise()
"""


@pytest.mark.integration
@pytest.mark.parametrize("captured", [False, True])
def test_captured_nothing_logged_reaches_stderr(captured: bool) -> None:
    # In a fresh interpreter: pytest's own log handlers would hide logging.lastResort here.
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(captured=captured)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    if captured:
        assert result.stderr == ""
    else:  # the control: without capture, all of it would have scribbled on the screen
        for text in ("httpx warned", "never retrieved", "cockpit failed", "unclosed"):
            assert text in result.stderr
