"""Durations as people write them ("250ms", "5m", "1h30m", "48h") <-> seconds."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_LONGEST = 10 * 365 * 86400.0
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


class DurationError(ValueError):
    """A duration that cannot be read; the message is one line for a person."""


def parse_duration(text: str) -> float:
    """Return the seconds in `text`, e.g. "1h30m" -> 5400.0. Zero is allowed, negatives are not."""
    compact = text.strip().replace(" ", "")
    if not compact or not _WHOLE.fullmatch(compact):
        raise DurationError(
            f"bad duration {text!r}: use a number with a unit, e.g. 250ms, 30s, 5m, 48h"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    if not math.isfinite(seconds) or seconds > _LONGEST:
        raise DurationError(f"bad duration {text!r}: longer than 10 years")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: 0.25 -> "250ms", 192 -> "3m12s", 93600 -> "26h"; never negative."""
    if math.isinf(seconds) and seconds > 0:
        return "∞"  # e.g. a deadline that never comes; never an OverflowError in a view
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
