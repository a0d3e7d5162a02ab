"""The demo's clock: how the plan's durations shrink so a six-day rollout plays in minutes.

Two scales, because one cannot do both jobs: a 48 h bake scaled down to 60 s would take a
5-minute rule window down to a tenth of a second, shorter than one poll.

- Calendar time (phase bakes) is proportional: 1 h = 1.25 s, so 48 h -> 60 s, 72 h -> 90 s.
- Reaction time (rule windows `for D`, grace, unknown_for, cooldown, ETAs, verify_for, the
  sources' measurement windows): every tenfold longer becomes twice as long, anchored at
  30 s -> 10 s, so 1 m -> 12 s, 5 m -> 20 s, 10 m -> 25 s, 30 m -> 34 s; whole seconds,
  and never longer than written. The order of durations is kept: a longer window stays longer.

The instruments keep real time: poll intervals, timeouts and slow-query thresholds measure the
demo platform as they would production.
"""

from __future__ import annotations

import math

CALENDAR_FACTOR = 60.0 / (48 * 3600)  # 48 h bake -> 60 s
REACTION_FROM_S, REACTION_TO_S = 30.0, 10.0  # the anchor: 30 s of grace -> 10 s
REACTION_EXPONENT = math.log10(2)  # ten times longer -> twice as long
NOTICE = "DEMO: 1h=1.25s, 5m=20s"  # the header's reminder (at most 30 characters)


def calendar(seconds: float) -> float:
    """A bake's length in the demo."""
    return seconds * CALENDAR_FACTOR


def reaction(seconds: float) -> float:
    """A window, grace or cooldown in the demo."""
    if seconds <= 0:
        return seconds
    shrunk = REACTION_TO_S * (seconds / REACTION_FROM_S) ** REACTION_EXPONENT
    return min(seconds, float(max(1, round(shrunk))))


def duration_text(seconds: float) -> str:
    """Seconds as a duration the plan accepts: 60 -> "60s", 1.25 -> "1.25s"."""
    text = f"{round(seconds, 3):.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def explain() -> list[str]:
    """The time scale in a few lines, for the event log and the plan's header."""
    return [
        "bakes: 1h = 1.25s (48h -> 60s, 72h -> 90s)",
        "windows, grace, cooldowns: 30s -> 10s, 1m -> 12s, 5m -> 20s, 10m -> 25s, 30m -> 34s",
        "polls and timeouts keep real time",
    ]
