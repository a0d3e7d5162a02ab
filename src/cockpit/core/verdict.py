"""Three-valued verdicts: a gate passes, fails, or cannot be judged (and says why)."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"

    @property
    def mark(self) -> str:
        """One-character mark for terse listings (the TUI has its own glyphs)."""
        return {"pass": "+", "fail": "x", "unknown": "?"}[self.value]
