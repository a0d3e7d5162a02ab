"""The cockpit's palettes (Textual themes: colour variables only; structure is in cockpit.tcss).

They live in the package so an installed cockpit finds them; `themes/README.md` lists them.
"""

from __future__ import annotations

from textual.theme import Theme

THEMES: dict[str, Theme] = {
    "dark": Theme(
        name="dark",
        primary="#5fafff",
        secondary="#87afd7",
        accent="#ffaf00",
        warning="#ffaf00",
        error="#ff5f5f",
        success="#5fd75f",
        foreground="#d0d0d0",
        background="#121212",
        surface="#1c1c1c",
        panel="#262626",
        dark=True,
    ),
    "light": Theme(
        name="light",
        primary="#005faf",
        secondary="#5f5f87",
        accent="#af5f00",
        warning="#af5f00",
        error="#d70000",
        success="#008700",
        foreground="#1c1c1c",
        background="#ffffff",
        surface="#f0f0f0",
        panel="#e4e4e4",
        dark=False,
    ),
    "high-contrast": Theme(
        name="high-contrast",
        primary="#00ffff",
        secondary="#ffffff",
        accent="#ffff00",
        warning="#ffff00",
        error="#ff0000",
        success="#00ff00",
        foreground="#ffffff",
        background="#000000",
        surface="#000000",
        panel="#000000",
        dark=True,
    ),
    "mono": Theme(
        name="mono",
        primary="#e4e4e4",
        secondary="#bcbcbc",
        accent="#ffffff",
        warning="#ffffff",
        error="#ffffff",
        success="#bcbcbc",
        foreground="#d0d0d0",
        background="#000000",
        surface="#000000",
        panel="#1c1c1c",
        dark=True,
    ),
}

ORDER = tuple(THEMES)


def next_theme(current: str) -> str:
    """The theme after `current` in the cycle (dark -> light -> high-contrast -> mono)."""
    index = ORDER.index(current) if current in ORDER else -1
    return ORDER[(index + 1) % len(ORDER)]
