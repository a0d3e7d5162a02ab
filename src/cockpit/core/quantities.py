"""Values as people write and read them: "800ms", "60%", 500 <-> a metric unit's base.

Base units (see `catalog`): milliseconds for times, a fraction for ratios, plain numbers
otherwise.
"""

from __future__ import annotations

import math
import re

from cockpit.core.catalog import Unit
from cockpit.core.durations import format_duration, parse_duration
from cockpit.core.rule_types import Rule, RuleError

NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_PLAIN = re.compile(rf"\s*({NUMBER})\s*", re.ASCII)
_TIME = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(ms|s|m|h)\s*", re.ASCII)
_COMPOUND_TIME = re.compile(r"\s*(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)\s*)+", re.ASCII)
_PERCENT = re.compile(rf"\s*({NUMBER})\s*%\s*", re.ASCII)

# Milliseconds in one of each time unit a rule or a baseline may be written in.
TIME_UNITS_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def number_text(value: float) -> str:
    """A number the way a person would write it: 2.0 -> "2", 0.1 -> "0.1", -10.0 -> "-10"."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.12g}"
    return "0" if text == "-0" else text


def percent_hint(number: float) -> str:
    """What to write for a ratio when someone wrote a bare number: 30 -> "30%", 0.3 -> "30%"."""
    return f"{number_text(number * 100 if 0 < abs(number) < 1 else number)}%"


def time_hint(number: float) -> str:
    return f"write {number_text(number)}ms or 2s"


def parse_quantity(value: str | int | float, unit: Unit, what: str | None = None) -> float:
    """A configured value (a baseline, say) in `unit`'s base: "2s" -> 2000.0, "60%" -> 0.6.

    Times need a time unit, ratios need %, everything else is a plain number.
    Raises RuleError with one line naming `what` (the metric) when the value does not fit.
    """
    name = what or "the value"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RuleError(f"{name} takes a number, not {quote(value)}")
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise RuleError(f"{name} must be a finite number, not {quote(value)}")
        if unit is Unit.MS:
            raise RuleError(f"{name} is a time: {time_hint(number)}")
        if unit is Unit.RATIO:
            raise RuleError(f"{name} is a percentage: write {percent_hint(number)}")
        return number
    if unit is Unit.MS:
        match = _TIME.fullmatch(value)
        if match is not None:
            return _finite(float(match.group(1)) * TIME_UNITS_MS[match.group(2)], name, value)
        if _COMPOUND_TIME.fullmatch(value):  # "1m30s"
            return _finite(parse_duration(value) * 1000, name, value)
        plain = _PLAIN.fullmatch(value)
        hint = time_hint(float(plain.group(1))) if plain else time_hint(800)
        raise RuleError(f"{name} is a time: {hint} (got {quote(value)})")
    if unit is Unit.RATIO:
        match = _PERCENT.fullmatch(value)
        if match is None:
            plain = _PLAIN.fullmatch(value)
            hint = percent_hint(float(plain.group(1))) if plain else "60%"
            raise RuleError(f"{name} is a percentage: write {hint} (got {quote(value)})")
        return _finite(float(match.group(1)) / 100, name, value)
    match = _PLAIN.fullmatch(value)
    if match is None:
        raise RuleError(f"{name} takes a plain number, not {quote(value)}")
    return _finite(float(match.group(1)), name, value)


def _finite(number: float, name: str, written: object) -> float:
    if not math.isfinite(number):
        raise RuleError(f"{name}: {quote(written)} is too large")
    return number


def quote(value: object) -> str:
    """Quote something a person wrote, for a message: one line, at most 40 characters."""
    text = str(value)
    if len(text) > 40:
        text = text[:39] + "…"
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"


def format_value(value: float, unit: Unit, *, precise: bool = False) -> str:
    """A measured value for people: "812ms", "2.1s", "2.4%", "41.2/s", "12.3 MiB".

    `precise` keeps more digits, for when the short form would look equal to a threshold.
    """
    if not math.isfinite(value):
        return str(value)
    if unit is Unit.MS:
        return f"{value:.6g}ms" if precise else _format_ms(value)
    if unit is Unit.RATIO:
        pct = value * 100
        return f"{pct:.6g}%" if precise else f"{_significant(pct)}%"
    if unit is Unit.BYTES:
        return f"{value:.6g} B" if precise else _format_bytes(value)
    text = f"{value:.6g}" if precise else _compact(value)
    if unit is Unit.PER_SECOND:
        return f"{text}/s"
    if unit is Unit.PER_MINUTE:
        return f"{text}/min"
    if unit is Unit.NUMBER and not precise:
        return f"{value:.6g}"
    return text


def _format_ms(ms: float) -> str:
    if abs(ms) < 10:
        return f"{_strip(f'{ms:.1f}')}ms"
    if abs(round(ms)) < 1000:
        return f"{round(ms)}ms"
    seconds = ms / 1000
    if abs(seconds) < 9.95:
        return f"{_strip(f'{seconds:.1f}')}s"
    if abs(seconds) < 59.5:
        return f"{round(seconds)}s"
    return ("-" if seconds < 0 else "") + format_duration(abs(seconds))


def _significant(x: float) -> str:
    """Two significant digits below 10, one decimal above: 0.05, 0.12, 2.4, 62, 62.3, 100."""
    if x == 0:
        return "0"
    if abs(x) >= 1e6:
        return f"{x:.3g}"
    if abs(x) >= 1:
        return _strip(f"{x:.1f}")
    decimals = 1 - math.floor(math.log10(abs(x)))
    return _strip(f"{x:.{decimals}f}") if decimals <= 8 else f"{x:.2g}"


def _compact(x: float) -> str:
    if abs(x) >= 1e15:
        return f"{x:.3g}"
    if x == int(x):
        return str(int(x))
    if abs(x) >= 100:
        return str(round(x))
    return f"{x:.3g}"


def _format_bytes(n: float) -> str:
    size, index = abs(n), 0
    while size >= 1024 and index < len(_BYTE_UNITS) - 1:
        size /= 1024
        index += 1
    sign = "-" if n < 0 else ""
    if index == 0:
        return f"{sign}{_compact(size)} B"
    return f"{sign}{_strip(f'{size:.1f}')} {_BYTE_UNITS[index]}"


def _strip(text: str) -> str:
    """Drop trailing decimal zeros: "2.0" -> "2", "0.50" -> "0.5"."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def base_number(number: float, unit: str | None) -> float:
    """A number as written in `unit` ("%", "ms", "s", "m", "h" or None) in base units."""
    if unit == "%":
        return number / 100  # division keeps 2% == 0.02 exactly
    if unit in TIME_UNITS_MS:
        return number * TIME_UNITS_MS[unit]
    return number


def written_number(threshold: float, unit: str | None) -> float:
    """A threshold in base units back in the unit it was written in: 0.02, "%" -> 2.0."""
    if unit == "%":
        return threshold * 100
    if unit in TIME_UNITS_MS:
        return threshold / TIME_UNITS_MS[unit]
    return threshold


def threshold_text(threshold: float, unit: str | None) -> str:
    """A threshold in base units shown as written: 0.02, "%" -> "2%"; 2000.0, "s" -> "2s"."""
    return f"{number_text(written_number(threshold, unit))}{unit or ''}"


def format_threshold(rule: Rule) -> str:
    """The rule's threshold as written: "2%", "2s", "200ms", "0"."""
    return threshold_text(rule.threshold, rule.unit)
