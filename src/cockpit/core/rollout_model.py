"""The rollout's state as data: where we are, since when, who ticked what, what was rolled back.

Times are UTC epoch seconds (floats) here; the state file stores them as TOML datetimes.
The store (`state.py`) keeps a `version` beside this for compare-and-swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"  # before phase 1
    RUNNING = "running"  # in phase N
    HOLDING = "holding"  # in phase N, advance blocked, with a reason
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    COMPLETE = "complete"


# Checklist keys in `RolloutState.ticks`: "preflight", "phase-1" .. "phase-N", "after_rollback".
PREFLIGHT = "preflight"
AFTER_ROLLBACK = "after_rollback"


def phase_key(number: int) -> str:
    return f"phase-{number}"


@dataclass(frozen=True)
class Tick:
    by: str
    at: float


@dataclass(frozen=True)
class Baseline:
    """A captured baseline: metric values (base units) measured over `window_s`."""

    values: Mapping[str, float]
    captured_at: float
    window_s: float
    by: str


@dataclass(frozen=True)
class RollbackRecord:
    method: str
    started_at: float
    by: str
    reason: str
    auto: bool = False
    finished_at: float | None = None
    ok: bool | None = None  # None while running or when interrupted
    detail: str = ""  # e.g. which step failed and why


@dataclass(frozen=True)
class AutoCancel:
    """An operator stopped an automatic rollback; the same trigger stays quiet until `until`."""

    by: str
    at: float
    reason: str
    until: float


@dataclass(frozen=True)
class HistoryEntry:
    at: float
    by: str
    event: str  # advance, hold, resume, rollback, auto_rollback, rollback_finished, ...
    from_status: Status
    to_status: Status
    from_phase: int
    to_phase: int
    reason: str = ""
    forced: bool = False


@dataclass(frozen=True)
class RolloutState:
    status: Status = Status.PENDING
    phase: int = 0  # 0 before phase 1, then 1..N (1-based, as people count)
    phase_entered_at: float | None = None
    started_at: float | None = None
    hold_reason: str | None = None
    ticks: Mapping[str, Mapping[str, Tick]] = field(default_factory=dict)
    baseline: Baseline | None = None
    rollback: RollbackRecord | None = None
    history: tuple[HistoryEntry, ...] = ()
    auto_cancelled: Mapping[str, AutoCancel] = field(default_factory=dict)  # by rule text
    updated_by: str = ""
    updated_at: float | None = None
