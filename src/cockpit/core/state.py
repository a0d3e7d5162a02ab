"""The persisted rollout state: a TOML file a person can read, replaced atomically, changed by
compare-and-swap on its `version` under an advisory lock, so two cockpits never both advance.

Readers never lock: `atomic_write` guarantees the file on disk is always a whole one.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cockpit.core.atomic import LockTimeout, atomic_write, exclusive_lock, remove_stale_temps
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.state_toml import StateError, Versioned, dump_state, parse_state

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "StateChanged",
    "StateError",
    "StateStore",
    "Versioned",
    "describe_change",
    "dump_state",
    "parse_state",
]

DEFAULT_LOCK_TIMEOUT = 10.0


class StateChanged(Exception):
    """A compare-and-swap lost: someone else changed the state since it was loaded."""

    def __init__(self, current: Versioned) -> None:
        self.current = current
        super().__init__(describe_change(current.state))

    def __reduce__(self) -> tuple[type[StateChanged], tuple[Versioned]]:
        return StateChanged, (self.current,)


def describe_change(state: RolloutState) -> str:
    """The loser's news, e.g. `state changed: now in phase 2 (by alice at 14:02 UTC)`."""
    where = {
        Status.PENDING: "now pending",
        Status.RUNNING: f"now in phase {state.phase}",
        Status.HOLDING: f"now holding in phase {state.phase}",
        Status.ROLLING_BACK: "now rolling back",
        Status.ROLLED_BACK: "now rolled back",
        Status.COMPLETE: "now complete",
    }[state.status]
    who = []
    if state.updated_by:
        who.append(f"by {state.updated_by}")
    if state.updated_at is not None:
        who.append(f"at {time.strftime('%H:%M', time.gmtime(state.updated_at))} UTC")
    return f"state changed: {where}" + (f" ({' '.join(who)})" if who else "")


class StateStore:
    """One state file, `<path>.lock` beside it. Safe across threads and processes."""

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._guard = threading.RLock()
        self._depth = 0  # re-entrant: a second flock on a new fd would wait for ourselves

    def load(self) -> Versioned:
        """The state on disk; a missing file is the initial state at version 0."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Versioned(RolloutState(), 0)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StateError(f"{self.path}: not UTF-8 text (byte {exc.start})") from None
        return parse_state(text, path=self.path)

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Exclusive advisory lock for a read-modify-write; raises StateError after `timeout`."""
        with self._guard:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            held = contextlib.ExitStack()
            wait = self.lock_timeout if timeout is None else timeout
            try:
                held.enter_context(exclusive_lock(self.lock_path, timeout=wait, what="state"))
            except LockTimeout as exc:
                raise StateError(str(exc)) from None
            except OSError as exc:
                raise StateError(f"{self.lock_path}: cannot lock: {exc.strerror or exc}") from None
            with held:
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0

    def commit(self, state: RolloutState, expected_version: int) -> Versioned:
        """Write `state` as version expected+1, unless the file moved on: then StateChanged."""
        with self.lock():
            current = self.load()
            if current.version != expected_version:
                raise StateChanged(current)
            return self._write(state, current.version + 1)

    def update(self, fn: Callable[[Versioned], RolloutState | None]) -> Versioned | None:
        """Read-modify-write under the lock; `fn` returning None means no change (no write)."""
        with self.lock():
            current = self.load()
            changed = fn(current)
            return None if changed is None else self._write(changed, current.version + 1)

    def signature(self) -> tuple[int, int, int] | None:
        """(inode, mtime_ns, size), or None without a file: a cheap "did it change" probe.
        Every commit makes a new inode, so this changes even within one mtime tick."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _write(self, state: RolloutState, version: int) -> Versioned:
        data = dump_state(state, version).encode()
        try:
            remove_stale_temps(self.path)  # safe: we hold the lock every writer takes
            atomic_write(self.path, data)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        return Versioned(state, version)
