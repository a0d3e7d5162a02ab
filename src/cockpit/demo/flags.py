"""The Phase 3 feature flag: a rollout percentage and a sticky assignment of users to it."""

from __future__ import annotations

import hashlib
import itertools
import threading


def bucket(user: str) -> float:
    """Where a user falls in [0, 100): stable across runs and processes (not Python's hash)."""
    digest = hashlib.sha256(user.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


class Rollout:
    """Users whose bucket is below the percentage get Phase 3; raising the percentage only adds
    users, so nobody flips back and forth. Requests without a user id are spread evenly."""

    def __init__(self, percent: float = 0) -> None:
        self._lock = threading.Lock()
        self._percent = 0.0
        self._anonymous = itertools.count()
        self.set(percent)

    @property
    def percent(self) -> float:
        return self._percent

    def set(self, percent: float) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"rollout percent must be within 0-100, not {percent}")
        with self._lock:
            self._percent = float(percent)

    def includes(self, user: str | None) -> bool:
        if user is None:
            # Golden-ratio steps walk [0, 100) evenly: the share matches the percentage.
            step = next(self._anonymous)
            return (step * 61.803398875) % 100 < self._percent
        return bucket(user) < self._percent
