"""Logs source logic without processes: counting a fake line feed over a window, splitting a
byte stream into lines, the restart backoff and the exit messages."""

from __future__ import annotations

import asyncio

import pytest

from cockpit.core.sources.logs import (
    LINES_KEPT,
    MAX_LINE_BYTES,
    LineCounter,
    backoff_delay,
    exit_message,
    read_lines,
)


def counter(window_s: float = 60.0) -> LineCounter:
    return LineCounter("(?i)error|fatal", "(?i)warn", window_s)


def test_a_line_counts_once_error_before_warning() -> None:
    lines = counter()
    kinds = [
        lines.feed(text, 0.0)
        for text in ("ERROR db down", "warn: slow", "WARN: retry after error", "all good", "FATAL")
    ]
    assert kinds == ["error", "warn", "error", None, "error"]
    assert list(lines.lines) == ["ERROR db down", "warn: slow", "WARN: retry after error", "FATAL"]


def test_rates_are_unknown_until_half_the_window_was_read() -> None:
    lines = counter()
    lines.started(0.0)
    lines.feed("error", 1.0)
    values, reasons = lines.values(29.0)
    assert values == {"errors_per_min": None, "warns_per_min": None}
    assert reasons["errors_per_min"] == (
        "counting: the command was read for 29s of the 60s window (rates need half of it)"
    )
    values, reasons = lines.values(30.0)
    assert values == {"errors_per_min": pytest.approx(2.0), "warns_per_min": 0.0}
    assert reasons == {}


def test_rates_over_a_sliding_window() -> None:
    lines = counter()
    lines.started(0.0)
    for second in range(120):
        lines.feed("error", second + 0.5)  # one error a second
        if second % 4 == 0:
            lines.feed("warning", second + 0.5)  # one warning every 4 s
    values, _ = lines.values(120.0)
    assert values["errors_per_min"] == pytest.approx(60.0, rel=0.02)
    assert values["warns_per_min"] == pytest.approx(15.0, rel=0.05)
    values, _ = lines.values(150.0)  # 30 quiet seconds: half the window's errors remain
    assert values["errors_per_min"] == pytest.approx(30.0, rel=0.04)


def test_time_the_command_was_not_running_does_not_dilute_the_rate() -> None:
    lines = counter()
    lines.started(0.0)
    for second in range(20):
        lines.feed("error", second + 0.5)
    lines.stopped(20.0)
    lines.started(30.0)  # a 10 s gap before the restart
    for second in range(30, 60):
        lines.feed("error", second + 0.5)
    values, _ = lines.values(60.0)
    assert values["errors_per_min"] == pytest.approx(50 / 50 * 60, rel=0.02)


def test_memory_is_bounded_whatever_the_line_rate() -> None:
    lines = counter(window_s=10.0)
    lines.started(0.0)
    for n in range(100_000):
        lines.feed(f"error {n}", n / 1000)  # 1000 lines a second for 100 s
    assert len(lines.lines) == LINES_KEPT
    assert lines.lines[-1] == "error 99999"
    assert len(lines._buckets) <= 121
    values, _ = lines.values(100.0)
    assert values["errors_per_min"] == pytest.approx(60_000, rel=0.02)


@pytest.mark.parametrize(
    ("restarts", "delay"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 20.0), (99, 20.0)],
)
def test_backoff_doubles_up_to_the_cap(restarts: int, delay: float) -> None:
    assert backoff_delay(restarts) == delay


def test_backoff_with_other_bounds() -> None:
    assert [backoff_delay(n, 0.1, 0.3) for n in range(4)] == [0.1, 0.2, 0.3, 0.3]


@pytest.mark.parametrize(
    ("status", "last", "message"),
    [
        (3, "", "command exited with status 3"),
        (1, "Error: not logged in", "command exited with status 1: Error: not logged in"),
        (-9, "", "command was killed by SIGKILL"),
        (0, "", "command exited with status 0 (a log follower must keep running, e.g. --follow)"),
    ],
)
def test_exit_messages(status: int, last: str, message: str) -> None:
    assert exit_message(status, last) == message


async def test_read_lines_splits_a_byte_stream() -> None:
    stream = asyncio.StreamReader()
    got: list[str] = []
    reading = asyncio.create_task(read_lines(stream, got.append))
    stream.feed_data(b"first li")
    stream.feed_data(b"ne\r\nsecond\n\x1b[31mERROR\x1b[0m red\n")
    stream.feed_data(b"bad \xff byte\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\nlast")
    stream.feed_eof()
    await reading
    assert got[:4] == ["first line", "second", "ERROR red", "bad \ufffd byte"]
    assert got[4] == "x" * MAX_LINE_BYTES
    assert got[-1] == "last"
