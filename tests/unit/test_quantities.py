"""Values as written in config <-> base units, and values shown to people."""

from __future__ import annotations

import pytest

from cockpit.core.catalog import Unit
from cockpit.core.quantities import (
    base_number,
    format_threshold,
    format_value,
    number_text,
    parse_quantity,
    threshold_text,
    written_number,
)
from cockpit.core.rule_types import Op, Rule, RuleError


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("800ms", Unit.MS, 800.0),
        ("2s", Unit.MS, 2000.0),
        ("1.5m", Unit.MS, 90_000.0),
        ("1h", Unit.MS, 3_600_000.0),
        (" 250 ms ", Unit.MS, 250.0),
        ("1m30s", Unit.MS, 90_000.0),
        ("60%", Unit.RATIO, 0.6),
        ("0.1%", Unit.RATIO, 0.001),
        ("-5%", Unit.RATIO, -0.05),
        (500, Unit.PER_MINUTE, 500.0),
        (1.5, Unit.NUMBER, 1.5),
        ("500", Unit.PER_MINUTE, 500.0),
        (" -3.25 ", Unit.NUMBER, -3.25),
        (0, Unit.FLAG, 0.0),
        ("12", Unit.COUNT, 12.0),
        (1024, Unit.BYTES, 1024.0),
        ("41.5", Unit.PER_SECOND, 41.5),
    ],
)
def test_parse_quantity(value: str | int | float, unit: Unit, expected: float) -> None:
    assert parse_quantity(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        (800, Unit.MS, "farms.p95 is a time: write 800ms or 2s"),
        ("800", Unit.MS, "farms.p95 is a time: write 800ms or 2s (got '800')"),
        ("60%", Unit.MS, "farms.p95 is a time: write 800ms or 2s (got '60%')"),
        ("fast", Unit.MS, "farms.p95 is a time: write 800ms or 2s (got 'fast')"),
        ("-800ms", Unit.MS, "farms.p95 is a time: write 800ms or 2s (got '-800ms')"),
        (60, Unit.RATIO, "farms.p95 is a percentage: write 60%"),
        ("0.6", Unit.RATIO, "farms.p95 is a percentage: write 60% (got '0.6')"),
        ("600ms", Unit.RATIO, "farms.p95 is a percentage: write 60% (got '600ms')"),
        ("500/min", Unit.PER_MINUTE, "farms.p95 takes a plain number, not '500/min'"),
        ("5%", Unit.COUNT, "farms.p95 takes a plain number, not '5%'"),
        ("2s", Unit.FLAG, "farms.p95 takes a plain number, not '2s'"),
        ("nan", Unit.NUMBER, "farms.p95 takes a plain number, not 'nan'"),
        (True, Unit.COUNT, "farms.p95 takes a number, not 'True'"),
        (float("inf"), Unit.COUNT, "farms.p95 must be a finite number, not 'inf'"),
        ("9" * 400, Unit.COUNT, "farms.p95: '" + "9" * 39 + "…' is too large"),
    ],
)
def test_parse_quantity_refuses_with_one_line(
    value: str | int | float, unit: Unit, message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_quantity(value, unit, what="farms.p95")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_parse_quantity_without_a_name() -> None:
    with pytest.raises(RuleError, match=r"^the value is a time: write 5ms or 2s$"):
        parse_quantity(5, Unit.MS)


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (812.3, Unit.MS, "812ms"),
        (2100.0, Unit.MS, "2.1s"),
        (2000.0, Unit.MS, "2s"),
        (999.7, Unit.MS, "1s"),
        (2.46, Unit.MS, "2.5ms"),
        (0.4, Unit.MS, "0.4ms"),
        (0.0, Unit.MS, "0ms"),
        (45_000.0, Unit.MS, "45s"),
        (90_000.0, Unit.MS, "1m30s"),
        (-5.0, Unit.MS, "-5ms"),
        (0.024, Unit.RATIO, "2.4%"),
        (0.02, Unit.RATIO, "2%"),
        (0.001, Unit.RATIO, "0.1%"),
        (0.0005, Unit.RATIO, "0.05%"),
        (0.00123, Unit.RATIO, "0.12%"),
        (0.62, Unit.RATIO, "62%"),
        (0.623, Unit.RATIO, "62.3%"),
        (1.0, Unit.RATIO, "100%"),
        (0.0, Unit.RATIO, "0%"),
        (-0.1, Unit.RATIO, "-10%"),
        (12.0, Unit.COUNT, "12"),
        (1.0, Unit.FLAG, "1"),
        (41.23, Unit.PER_SECOND, "41.2/s"),
        (500.0, Unit.PER_MINUTE, "500/min"),
        (1234.6, Unit.PER_MINUTE, "1235/min"),
        (12.3 * 1024 * 1024, Unit.BYTES, "12.3 MiB"),
        (100.0, Unit.BYTES, "100 B"),
        (2048.0, Unit.BYTES, "2 KiB"),
        (3.14159265, Unit.NUMBER, "3.14159"),
        (1e20, Unit.NUMBER, "1e+20"),
        (float("inf"), Unit.MS, "inf"),
        (float("nan"), Unit.RATIO, "nan"),
    ],
)
def test_format_value(value: float, unit: Unit, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_format_value_precise_keeps_digits() -> None:
    assert format_value(0.020004, Unit.RATIO, precise=True) == "2.0004%"
    assert format_value(2000.4, Unit.MS, precise=True) == "2000.4ms"
    assert format_value(12.5, Unit.COUNT, precise=True) == "12.5"
    assert format_value(1.25, Unit.PER_SECOND, precise=True) == "1.25/s"
    assert format_value(1000.5, Unit.BYTES, precise=True) == "1000.5 B"


def test_tiny_and_huge_values_do_not_explode() -> None:
    assert format_value(1e-12, Unit.RATIO) == "1e-10%"
    assert format_value(1e300, Unit.COUNT) == "1e+300"
    assert format_value(1e300, Unit.RATIO) == "1e+302%"
    assert format_value(1e30, Unit.BYTES).endswith(" PiB")
    assert format_value(1e12, Unit.MS) == "277777h46m"


def _rule(threshold: float, unit: str | None) -> Rule:
    return Rule("t", "m.x", Op.GT, threshold, unit)


@pytest.mark.parametrize(
    ("threshold", "unit", "shown"),
    [
        (0.02, "%", "2%"),
        (0.001, "%", "0.1%"),
        (0.07, "%", "7%"),
        (-0.1, "%", "-10%"),
        (2000.0, "s", "2s"),
        (200.0, "ms", "200ms"),
        (90_000.0, "m", "1.5m"),
        (3_600_000.0, "h", "1h"),
        (0.0, None, "0"),
        (500.0, None, "500"),
        (-0.0, None, "0"),
    ],
)
def test_format_threshold_as_written(threshold: float, unit: str | None, shown: str) -> None:
    assert format_threshold(_rule(threshold, unit)) == shown
    assert threshold_text(threshold, unit) == shown


@pytest.mark.parametrize("unit", ["%", "ms", "s", "m", "h", None])
def test_base_and_written_numbers_are_inverse(unit: str | None) -> None:
    assert written_number(base_number(2.5, unit), unit) == pytest.approx(2.5)


def test_number_text() -> None:
    assert number_text(2.0) == "2"
    assert number_text(0.1) == "0.1"
    assert number_text(7.000000000000001) == "7"
    assert number_text(float("inf")) == "inf"
