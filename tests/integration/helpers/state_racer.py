"""A cockpit stand-in for the race test, driven line by line on stdin so the parent can line
up several of them: `load`, `commit` (phase + 1 against the version loaded), `bump N`
(N read-modify-writes with update()), `quit`. Answers one line per command on stdout."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from cockpit.core.rollout_model import HistoryEntry, Status
from cockpit.core.state import StateChanged, StateStore, Versioned


def main(path: str, name: str) -> None:
    store = StateStore(Path(path), lock_timeout=30)
    loaded = store.load()

    def advanced(current: Versioned) -> Versioned:
        state = current.state
        now = time.time()
        step = HistoryEntry(
            now, name, "advance", state.status, Status.RUNNING, state.phase, state.phase + 1
        )
        return Versioned(
            replace(
                state,
                status=Status.RUNNING,
                phase=state.phase + 1,
                updated_by=name,
                updated_at=now,
                history=(*state.history, step),
            ),
            current.version,
        )

    for line in sys.stdin:
        command, *args = line.split()
        if command == "load":
            loaded = store.load()
            answer = f"loaded {loaded.version}"
        elif command == "commit":
            try:
                answer = f"won {store.commit(advanced(loaded).state, loaded.version).version}"
            except StateChanged as exc:
                answer = f"lost {exc.current.version} {exc}"
        elif command == "bump":
            for _ in range(int(args[0])):
                store.update(lambda current: advanced(current).state)
            answer = "bumped"
        else:
            return
        print(answer, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
