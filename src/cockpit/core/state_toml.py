"""The state file's format: rollout state to TOML a person can read, and back, strictly.

Reading is strict: an unknown key, a wrong type, a time without a UTC offset or a state no
sequence of events could produce is a one-line StateError, never a guess. StateError and
Versioned live here, not in cockpit.core.state, so that the store can import this module and
not the other way round.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar, cast

import tomli_w

from cockpit.core.rollout_model import (
    AutoCancel,
    Baseline,
    HistoryEntry,
    RollbackRecord,
    RolloutState,
    Status,
    Tick,
)

SCHEMA = 1
_HEADER = "# cockpit rollout state. Written by cockpit: edit only while no cockpit is running.\n"


class StateError(Exception):
    """The state file exists but cannot be read, parsed or understood. One line: path, problem."""


@dataclass(frozen=True)
class Versioned:
    state: RolloutState
    version: int  # 0 means "no state file yet"; every commit adds 1


# --- writing ------------------------------------------------------------------------------


def dump_state(state: RolloutState, version: int) -> str:
    """The TOML text for `state` at `version`. None values are left out (TOML has no null)."""
    doc: dict[str, object] = {"schema": SCHEMA, "version": version}
    doc["status"] = Status(state.status).value
    doc["phase"] = state.phase
    _put_time(doc, "phase_entered_at", state.phase_entered_at)
    _put_time(doc, "started_at", state.started_at)
    if state.hold_reason is not None:
        doc["hold_reason"] = state.hold_reason
    doc["updated_by"] = state.updated_by
    _put_time(doc, "updated_at", state.updated_at)
    if state.ticks:
        doc["ticks"] = {
            checklist: {item: _record(tick) for item, tick in items.items()}
            for checklist, items in state.ticks.items()
        }
    if state.baseline is not None:
        doc["baseline"] = _record(state.baseline) | {"values": dict(state.baseline.values)}
    if state.rollback is not None:
        doc["rollback"] = _record(state.rollback)
    if state.auto_cancelled:
        doc["auto_cancelled"] = {
            rule: _record(cancel) for rule, cancel in state.auto_cancelled.items()
        }
    if state.history:
        # Every key is written, which also keeps entries too long for tomli-w's inline form:
        # history stays one readable [[history]] block per entry.
        doc["history"] = [_record(entry) for entry in state.history]
    return _HEADER + tomli_w.dumps(doc)


_TIME_FIELDS = frozenset({"at", "captured_at", "started_at", "finished_at", "until"})


def _record(
    record: Tick | Baseline | RollbackRecord | HistoryEntry | AutoCancel,
) -> dict[str, object]:
    """A record as a TOML table: times as datetimes, statuses as strings, None left out."""
    doc: dict[str, object] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None:
            continue
        if f.name in _TIME_FIELDS:
            value = _to_datetime(value)
        doc[f.name] = value.value if isinstance(value, Status) else value
    return doc


def _put_time(doc: dict[str, object], key: str, value: float | None) -> None:
    if value is not None:
        doc[key] = _to_datetime(value)


class _UtcTime(datetime):
    """Printed the way people write UTC (2025-05-01T14:02:03Z); tomli-w writes str(value)."""

    def __str__(self) -> str:
        return self.isoformat().replace("+00:00", "Z")


def _to_datetime(epoch: float) -> datetime:
    try:
        return _UtcTime.fromtimestamp(epoch, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time {epoch!r} cannot be stored (not in years 1-9999)") from None


# --- reading ------------------------------------------------------------------------------


def parse_state(text: str, *, path: Path | str | None = None) -> Versioned:
    """Parse state TOML; anything wrong raises StateError "<path>: <where>: <problem>"."""
    prefix = f"{path}: " if path is not None else ""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StateError(f"{prefix}not valid TOML: {exc}") from None
    try:
        return _read_document(_Table(doc, ""))
    except _Bad as exc:
        raise StateError(f"{prefix}{exc}") from None


class _Bad(Exception):
    """Internal: a problem at a key path, before the file's path is put in front."""


_MISSING = object()
_T = TypeVar("_T")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _read_document(top: _Table) -> Versioned:
    schema = top.count("schema", default=SCHEMA)
    if schema != SCHEMA:
        raise _Bad(f"schema {schema} is not schema {SCHEMA}: written by another cockpit version?")
    version = top.count("version")
    state = RolloutState(
        status=top.status("status"),
        phase=top.count("phase", default=0),
        phase_entered_at=top.maybe_moment("phase_entered_at"),
        started_at=top.maybe_moment("started_at"),
        hold_reason=top.maybe_text("hold_reason"),
        ticks=_read_ticks(top.table("ticks")),
        baseline=_read_baseline(top.table("baseline")),
        rollback=_read_rollback(top.table("rollback")),
        history=tuple(_read_history(t) for t in top.tables("history")),
        auto_cancelled=_read_cancels(top.table("auto_cancelled")),
        updated_by=top.text("updated_by", default=""),
        updated_at=top.maybe_moment("updated_at"),
    )
    _check_consistent(state)
    return top.finish(Versioned(state, version))


def _check_consistent(state: RolloutState) -> None:
    """Refuse a hand-edited file that no sequence of events could have produced."""
    status, phase = state.status, state.phase
    if status is Status.PENDING and phase != 0:
        raise _Bad(f"status is pending but phase is {phase} (pending means phase 0)")
    if status in (Status.RUNNING, Status.HOLDING, Status.COMPLETE) and phase < 1:
        raise _Bad(f"status is {status.value} but phase is {phase} (phases count from 1)")
    if status is Status.HOLDING and not (state.hold_reason or "").strip():
        raise _Bad("status is holding but there is no hold_reason")
    if status in (Status.ROLLING_BACK, Status.ROLLED_BACK) and state.rollback is None:
        raise _Bad(f"status is {status.value} but there is no [rollback] record")


def _read_cancels(table: _Table | None) -> dict[str, AutoCancel]:
    if table is None:
        return {}
    cancels = {}
    for rule, t in table.subtables_of_self():
        cancel = AutoCancel(t.text("by"), t.moment("at"), t.text("reason"), t.moment("until"))
        cancels[rule] = t.finish(cancel)
    return cancels


def _read_ticks(table: _Table | None) -> dict[str, dict[str, Tick]]:
    if table is None:
        return {}
    return {
        checklist: {item: t.finish(Tick(by=t.text("by"), at=t.moment("at"))) for item, t in items}
        for checklist, items in ((name, table.subtables(name)) for name in table.names())
    }


def _read_baseline(t: _Table | None) -> Baseline | None:
    if t is None:
        return None
    raw = t.table("values")
    values = {} if raw is None else {name: raw.number(name) for name in raw.names()}
    return t.finish(
        Baseline(
            values=values,
            captured_at=t.moment("captured_at"),
            window_s=t.number("window_s"),
            by=t.text("by"),
        )
    )


def _read_rollback(t: _Table | None) -> RollbackRecord | None:
    if t is None:
        return None
    return t.finish(
        RollbackRecord(
            method=t.text("method"),
            started_at=t.moment("started_at"),
            by=t.text("by"),
            reason=t.text("reason", default=""),
            auto=t.flag("auto", default=False),
            finished_at=t.maybe_moment("finished_at"),
            ok=t.maybe_flag("ok"),
            detail=t.text("detail", default=""),
        )
    )


def _read_history(t: _Table) -> HistoryEntry:
    return t.finish(
        HistoryEntry(
            at=t.moment("at"),
            by=t.text("by"),
            event=t.text("event"),
            from_status=t.status("from_status"),
            to_status=t.status("to_status"),
            from_phase=t.count("from_phase"),
            to_phase=t.count("to_phase"),
            reason=t.text("reason", default=""),
            forced=t.flag("forced", default=False),
        )
    )


_TEXT, _COUNT, _NUMBER, _FLAG = "a string", "a whole number >= 0", "a number", "true or false"
_MOMENT, _TABLE, _ARRAY = "a date-time like 2025-05-01T14:02:00Z", "a table", "an array of tables"
_CHECKS: dict[str, Callable[[object], bool]] = {
    _TEXT: lambda v: isinstance(v, str),
    _COUNT: lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    _NUMBER: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    _FLAG: lambda v: isinstance(v, bool),
    _MOMENT: lambda v: isinstance(v, datetime),
    _TABLE: lambda v: isinstance(v, dict),
    _ARRAY: lambda v: isinstance(v, list),
}


class _Table:
    """Typed, strict access to one TOML table; remembers which keys were read so `finish()`
    can refuse unknown ones (a hand edit with a typo must not be silently ignored)."""

    def __init__(self, data: Mapping[str, object], where: str) -> None:
        self._data = data
        self._where = where
        self._seen: set[str] = set()

    def names(self) -> list[str]:
        return list(self._data)

    def name(self, key: str) -> str:
        part = key if _BARE_KEY.fullmatch(key) else f'"{key}"'
        return f"{self._where}.{part}" if self._where else part

    def finish(self, value: _T) -> _T:
        """`value`, once every key of this table has been read (else: unknown key)."""
        unknown = [k for k in self._data if k not in self._seen]
        if unknown:
            raise _Bad(f"{self.name(unknown[0])}: unknown key")
        return value

    def get(self, key: str, expected: str, default: object) -> object:
        self._seen.add(key)
        value = self._data.get(key, _MISSING)
        if value is _MISSING and default is not _MISSING:
            return default
        if value is _MISSING:
            raise _Bad(f"{self.name(key)}: missing")
        if not _CHECKS[expected](value):
            raise _Bad(f"{self.name(key)}: expected {expected}, got {_describe(value)}")
        return value

    def text(self, key: str, default: object = _MISSING) -> str:
        return cast(str, self.get(key, _TEXT, default))

    def maybe_text(self, key: str) -> str | None:
        return cast("str | None", self.get(key, _TEXT, None))

    def count(self, key: str, default: object = _MISSING) -> int:
        return cast(int, self.get(key, _COUNT, default))

    def number(self, key: str) -> float:
        return float(cast(float, self.get(key, _NUMBER, _MISSING)))

    def flag(self, key: str, default: object = _MISSING) -> bool:
        return cast(bool, self.get(key, _FLAG, default))

    def maybe_flag(self, key: str) -> bool | None:
        return cast("bool | None", self.get(key, _FLAG, None))

    def moment(self, key: str) -> float:
        value = cast(datetime, self.get(key, _MOMENT, _MISSING))
        if value.tzinfo is None:
            raise _Bad(f"{self.name(key)}: needs a UTC offset, e.g. 2025-05-01T14:02:00Z")
        return value.timestamp()

    def maybe_moment(self, key: str) -> float | None:
        return None if key not in self._data else self.moment(key)

    def status(self, key: str) -> Status:
        value = self.text(key)
        try:
            return Status(value)
        except ValueError:
            names = [s.value for s in Status]
            close = difflib.get_close_matches(value, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (one of {', '.join(names)})"
            raise _Bad(f"{self.name(key)}: unknown status '{value}'{hint}") from None

    def table(self, key: str) -> _Table | None:
        value = self.get(key, _TABLE, None)
        return None if value is None else _Table(cast("dict[str, object]", value), self.name(key))

    def subtables(self, key: str) -> list[tuple[str, _Table]]:
        """The tables inside table `key`, by name (each must be a table)."""
        table = self.table(key)
        if table is None:
            return []
        return [(name, cast(_Table, table.table(name))) for name in table.names()]

    def subtables_of_self(self) -> list[tuple[str, _Table]]:
        """The tables inside this table, by name (each must be a table)."""
        return [(name, cast(_Table, self.table(name))) for name in self.names()]

    def tables(self, key: str) -> list[_Table]:
        items = cast("list[object]", self.get(key, _ARRAY, []))
        found = []
        for i, item in enumerate(items):
            where = f"{self.name(key)}[{i}]"
            if not isinstance(item, dict):
                raise _Bad(f"{where}: expected a table, got {_describe(item)}")
            found.append(_Table(item, where))
        return found


def _describe(value: object) -> str:
    simple = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    if type(value) in simple:
        shown = repr(value)
        return f"{simple[type(value)]} {shown}" if len(shown) <= 40 else simple[type(value)]
    other = {datetime: "a date-time", list: "an array", dict: "a table"}
    return other.get(type(value), type(value).__name__)
