"""Durations as people write them, both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cockpit.core.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("48h", 172800.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1.5m", 90.0),
        (" 10 s ", 10.0),
        ("0s", 0.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "-5m", "m5", "5 minutes", "1h30", "ms"])
def test_parse_refuses_with_one_line(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert "\n" not in str(caught.value)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0, "0ms"),
        (59, "59s"),
        (192, "3m12s"),
        (300, "5m"),
        (93600, "26h"),
        (5400, "1h30m"),
        (-3, "0ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_keeps_whole_minutes_and_seconds(seconds: int) -> None:
    shown = format_duration(seconds)
    # Hours drop the seconds ("26h", "1h30m"): what is shown is never more than the truth.
    assert 0 <= seconds - parse_duration(shown) < 60


def test_absurdly_long_durations_are_refused_not_infinite() -> None:
    with pytest.raises(DurationError, match="longer than 10 years"):
        parse_duration("9" * 400 + "h")
