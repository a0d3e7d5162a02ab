"""What a source is to the engine: something that polls and answers with data, never raises.

Errors are data: a poll that fails returns `SourceDown` with one line of text; the scheduler
(`cockpit.core.sources.schedule`) turns exceptions and timeouts into `SourceDown` too, so
nothing a server does reaches the engine or the UI as an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cockpit.core.plan import SourceSpec


@dataclass(frozen=True)
class Reading:
    """One poll's answer: field values in base units (ms, fractions, counts).

    A field whose value cannot be known this time is None, with the reason in `reasons`
    ("12 samples < 20 needed", "counter reset", "pg_stat_statements is not installed").
    `details` carries what the UI shows beside the numbers (slow query texts, log lines,
    advice such as "probes are rate limited: slow down"); it never reaches a gate.
    """

    values: Mapping[str, float | None]
    reasons: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceDown:
    """The source could not be read: connection refused, timed out, auth failed, ..."""

    error: str  # one line for a person


PollResult = Reading | SourceDown


class Source(Protocol):
    """A poller for one `[sources.NAME]`. One poll in flight at a time (the scheduler's job)."""

    spec: SourceSpec

    async def poll(self, planned_at: float) -> PollResult:
        """Take one reading. `planned_at` is when this poll was due (time.perf_counter()),
        so a late start counts in measured latency (no coordinated omission)."""
        ...

    async def close(self) -> None:
        """Release connections and processes. Safe to call twice."""
        ...


def one_line(error: BaseException | str) -> str:
    """An exception as one short line: its message, or its type when it has none."""
    text = str(error).strip() if not isinstance(error, str) else error.strip()
    if isinstance(error, BaseException) and not text:
        text = type(error).__name__
    first = text.splitlines()[0] if text else "unknown error"
    return first[:300]
