"""Writes the state file in a tight loop until killed; prints `ready` once it is writing.

`raw PATH TEXT...`: holds the state lock and replaces PATH with each prepared TEXT file in
turn, so nearly all its time is spent inside `atomic_write` (where a kill is most telling).
`update PATH`: StateStore.update() in a loop, each adding a history entry, as a cockpit does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from cockpit.core.atomic import atomic_write, remove_stale_temps
from cockpit.core.rollout_model import HistoryEntry, RolloutState, Status
from cockpit.core.state import StateStore, Versioned


def grown(current: Versioned) -> RolloutState:
    state = current.state
    history = state.history if len(state.history) < 120 else state.history[60:]
    now = time.time()
    step = HistoryEntry(
        now, "writer", "advance", Status.RUNNING, Status.RUNNING, state.phase, state.phase + 1,
        reason=f"{len(history)} " + "x" * 120,
    )  # fmt: skip
    return replace(
        state, status=Status.RUNNING, phase=state.phase + 1, updated_at=now,
        updated_by="writer", history=(*history, step),
    )  # fmt: skip


def main(mode: str, path: str, *texts: str) -> None:
    store = StateStore(Path(path))
    if mode == "update":
        store.update(grown)
        print("ready", flush=True)
        while True:
            store.update(grown)
    contents = [Path(t).read_bytes() for t in texts]
    with store.lock():
        remove_stale_temps(store.path)
        atomic_write(store.path, contents[0])
        print("ready", flush=True)
        while True:
            for data in contents:
                atomic_write(store.path, data)


if __name__ == "__main__":
    main(*sys.argv[1:])
