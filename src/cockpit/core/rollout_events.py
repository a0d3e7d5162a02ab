"""What can happen to a rollout (events), what the machine asks the caller to do (actions),
and the answer to one event (outcome). Pure data; the rules live in `rollout.py`.

Every event names its operator in `by` (e.g. "alice@10.0.0.5") so history and audit say who.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from cockpit.core.rollout_model import RolloutState


@dataclass(frozen=True)
class Advance:
    """Go to the next phase (or complete). `gate_blockers` are rule failures judged elsewhere."""

    name: ClassVar[str] = "advance"
    by: str
    gate_blockers: tuple[str, ...] = ()
    force: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Hold:
    name: ClassVar[str] = "hold"
    by: str
    reason: str


@dataclass(frozen=True)
class Resume:
    name: ClassVar[str] = "resume"
    by: str
    reason: str = ""


@dataclass(frozen=True)
class Rollback:
    """An operator starts a rollback with one of the plan's methods."""

    name: ClassVar[str] = "rollback"
    by: str
    method: str
    reason: str = ""


@dataclass(frozen=True)
class AutoRollback:
    """The engine starts a rollback because a rule fired; `reason` names the rule and its value."""

    name: ClassVar[str] = "auto_rollback"
    by: str
    method: str
    reason: str


@dataclass(frozen=True)
class RollbackFinished:
    name: ClassVar[str] = "rollback_finished"
    by: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Check:
    """Tick a manual item; `item` is its exact text (see `RolloutMachine.resolve_item`)."""

    name: ClassVar[str] = "check"
    by: str
    item: str


@dataclass(frozen=True)
class Uncheck:
    name: ClassVar[str] = "uncheck"
    by: str
    item: str


@dataclass(frozen=True)
class CaptureBaseline:
    """Metric values (base units) measured over `window_s`, kept to compare the new path with."""

    name: ClassVar[str] = "capture_baseline"
    by: str
    values: Mapping[str, float]
    window_s: float


@dataclass(frozen=True)
class Restart:
    """After a rollback: back to pending for a new attempt (the plan's "schedule retry")."""

    name: ClassVar[str] = "restart"
    by: str
    reason: str


@dataclass(frozen=True)
class CancelAuto:
    """Stop an armed automatic rollback; its triggers cannot re-arm until `until`."""

    name: ClassVar[str] = "cancel_auto"
    by: str
    rules: tuple[str, ...]
    reason: str
    until: float


Event: TypeAlias = (
    Advance
    | Hold
    | Resume
    | Rollback
    | AutoRollback
    | RollbackFinished
    | Check
    | Uncheck
    | CaptureBaseline
    | Restart
    | CancelAuto
)


@dataclass(frozen=True)
class SetTraffic:
    """Put `percent` of production traffic on the new path, entering phase `phase`."""

    percent: int
    phase: int


@dataclass(frozen=True)
class RunRollback:
    method: str
    auto: bool


Action: TypeAlias = SetTraffic | RunRollback


@dataclass(frozen=True)
class Outcome:
    """The answer to one event. When `refused` is set (one line for a person), `state` is the
    input state, unchanged, and there are no actions."""

    state: RolloutState
    actions: tuple[Action, ...] = ()
    refused: str | None = None

    @property
    def accepted(self) -> bool:
        return self.refused is None
