"""What changed between two snapshots, as lines for people: the rollout, sources, gates.

`cockpit run --headless` prints these lines; the full-screen cockpit can log them too, so a
`--log` file shows when a source went down and when a gate flipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from cockpit.core.snapshot import Snapshot


class ChangeLog:
    """Turns successive snapshots into lines for what changed: sources, gates, the rollout."""

    def __init__(self) -> None:
        self.sources: dict[str, bool | None] = {}
        self.gates: dict[tuple[str, str], str] = {}
        self.rollout: tuple[str, int, int] | None = None

    def changes(self, snapshot: Snapshot) -> Iterator[str]:
        state = snapshot.state
        rollout = (state.status.value, state.phase, snapshot.version)
        if rollout != self.rollout:
            who = f" (by {state.updated_by})" if state.updated_by else ""
            yield (
                f"rollout {state.status.value} phase {state.phase}/{len(snapshot.plan.phases)}"
                f" {snapshot.phase_name}, traffic {snapshot.traffic}%{who}"
            )
            self.rollout = rollout
        for source in snapshot.sources:
            # Only transitions: a down source's error text may change every poll.
            if self.sources.get(source.name) != source.up:
                if source.up is not None:
                    word = "up" if source.up else f"DOWN: {source.error}"
                    yield f"source {source.name} {word}"
                self.sources[source.name] = source.up
        for gate in snapshot.gates:
            key = (gate.kind.value, gate.rule.text)
            verdict = gate.verdict.value
            if self.gates.get(key) != verdict:
                was = self.gates.get(key, "-")
                yield f"gate {gate.kind.value} {gate.rule.text}: {was} -> {verdict} ({gate.reason})"
                self.gates[key] = verdict
