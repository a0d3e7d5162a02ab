"""The ids of the full-screen cockpit's key bindings, which `[keymap]` may remap. Kept in the
core so a plan is checked without loading the UI; a UI test keeps this list in step."""

from __future__ import annotations

import re

KEY_IDS = (
    "advance",
    "hold",
    "resume",
    "rollback",
    "cancel",
    "tick",
    "baseline",
    "slow",
    "dry_run",
    "theme",
    "help",
    "quit",
    # `cockpit demo`'s fault keys
    "demo.errors",
    "demo.slow_db",
    "demo.redis_down",
    "demo.clear",
)

# Textual key names, comma-separated for several: "A", "ctrl+r", "f5", "a,A".
KEYS = re.compile(r"[A-Za-z0-9_+\-]+(,[A-Za-z0-9_+\-]+)*")
