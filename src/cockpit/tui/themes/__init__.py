"""The cockpit's palettes: one TOML file per Textual theme in this folder (colour variables
only; structure is in cockpit.tcss). They are package data, so an installed cockpit finds them
outside the repo; the repo's `themes/README.md` lists them."""

from __future__ import annotations

import tomllib
from importlib.resources import files

from textual.theme import Theme

ORDER = ("dark", "light", "high-contrast", "mono")  # the cycle of `t`
COLOURS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
)


def load_theme(name: str) -> Theme:
    """The palette `<name>.toml` shipped in this package."""
    data = tomllib.loads(files(__package__).joinpath(f"{name}.toml").read_text("utf-8"))
    c = {key: str(data[key]) for key in COLOURS}
    return Theme(
        name=name,
        dark=bool(data["dark"]),
        primary=c["primary"],
        secondary=c["secondary"],
        accent=c["accent"],
        warning=c["warning"],
        error=c["error"],
        success=c["success"],
        foreground=c["foreground"],
        background=c["background"],
        surface=c["surface"],
        panel=c["panel"],
    )


THEMES: dict[str, Theme] = {name: load_theme(name) for name in ORDER}


def next_theme(current: str) -> str:
    """The theme after `current` in the cycle (dark -> light -> high-contrast -> mono)."""
    index = ORDER.index(current) if current in ORDER else -1
    return ORDER[(index + 1) % len(ORDER)]
