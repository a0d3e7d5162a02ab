"""Faults on demand: an error spike, a slow database, Redis down. Switched at run time (the
demo's keys) or scheduled from the command line (`errors-at=90s`, `slow-db-at=60s`,
`redis-down-at=120s`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cockpit.core.durations import DurationError, parse_duration

FAULTS = ("errors", "slow-db", "redis-down")
DESCRIPTIONS = {
    "errors": "error spike: half the Phase 3 requests answer 500",
    "slow-db": "slow database: every query takes 150 ms longer",
    "redis-down": "Redis down: the server is stopped",
}


class FaultError(ValueError):
    """A fault spec that cannot be read; the message is one line for a person."""


@dataclass
class FaultState:
    """What the API reads on every request. Plain attributes: one writer at a time, and a
    request seeing the old value for a moment is harmless."""

    error_fraction: float = 0.0  # share of requests answered 500 while the spike is on
    errors_phase3_only: bool = True  # the new code is what breaks: rolling back cures it
    extra_db_delay_s: float = 0.0
    redis_down: bool = False


@dataclass(frozen=True)
class ScheduledFault:
    name: str
    at_s: float


def parse_fault(spec: str) -> ScheduledFault:
    """`errors-at=90s` -> ScheduledFault("errors", 90.0)."""
    key, sep, when = spec.partition("=")
    name = key.strip().removesuffix("-at")
    if not sep or not key.strip().endswith("-at") or name not in FAULTS:
        raise FaultError(
            f"bad fault {spec!r}: use NAME-at=DURATION, NAME one of {', '.join(FAULTS)}"
        )
    try:
        return ScheduledFault(name, parse_duration(when))
    except DurationError as error:
        raise FaultError(f"bad fault {spec!r}: {error}") from error


class FaultSwitch:
    """Turns faults on and off. Redis down is real when there is a redis-server (the platform
    passes how to stop and start it); otherwise the in-process L2 is told it is down."""

    def __init__(
        self,
        state: FaultState,
        stop_redis: Callable[[], None],
        start_redis: Callable[[], None],
        error_fraction: float = 0.5,
        slow_db_s: float = 0.15,  # mean query time over the plan's 100 ms; the pool keeps up
    ) -> None:
        self.state = state
        self._stop_redis = stop_redis
        self._start_redis = start_redis
        self.error_fraction = error_fraction
        self.slow_db_s = slow_db_s
        self._lock = threading.Lock()
        # Told (name, on) after each change, from whichever thread made it: the demo's screen
        # and log say what happened, whether a key or the schedule switched it.
        self.listeners: list[Callable[[str, bool], None]] = []

    def active(self) -> set[str]:
        on = set()
        if self.state.error_fraction > 0:
            on.add("errors")
        if self.state.extra_db_delay_s > 0:
            on.add("slow-db")
        if self.state.redis_down:
            on.add("redis-down")
        return on

    def set(self, name: str, on: bool) -> None:
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r}: one of {', '.join(FAULTS)}")
        with self._lock:
            changed = (name in self.active()) != on
            if name == "errors":
                self.state.error_fraction = self.error_fraction if on else 0.0
            elif name == "slow-db":
                self.state.extra_db_delay_s = self.slow_db_s if on else 0.0
            elif on and not self.state.redis_down:
                self._stop_redis()
                self.state.redis_down = True
            elif not on and self.state.redis_down:
                self._start_redis()
                self.state.redis_down = False
        if changed:
            for listener in list(self.listeners):
                listener(name, on)

    def toggle(self, name: str) -> bool:
        on = name not in self.active()
        self.set(name, on)
        return on

    def clear(self) -> None:
        for name in FAULTS:
            self.set(name, False)


class FaultSchedule:
    """Fires scheduled faults from a daemon thread, measured from `start()`."""

    def __init__(
        self,
        switch: FaultSwitch,
        faults: list[ScheduledFault],
        on_fire: Callable[[ScheduledFault], None] = lambda fault: None,
    ) -> None:
        self.switch = switch
        self.pending = sorted(faults, key=lambda fault: fault.at_s)
        self.on_fire = on_fire
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-faults", daemon=True)

    def start(self) -> None:
        if self.pending:
            self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        for fault in self.pending:
            if self._stop.wait(max(0.0, began + fault.at_s - time.monotonic())):
                return
            self.switch.set(fault.name, True)
            self.on_fire(fault)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
