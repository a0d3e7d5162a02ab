"""The header: rollout, phase, traffic, state, time in phase against bake, operator, clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from textual.content import Content

from cockpit.core.durations import format_duration
from cockpit.core.rollout_model import Status
from cockpit.core.snapshot import Snapshot
from cockpit.tui.widgets.pane import Pane

STATE_STYLE = {
    Status.PENDING: "bold",
    Status.RUNNING: "bold $success",
    Status.HOLDING: "bold $warning",
    Status.ROLLING_BACK: "bold reverse $error",
    Status.ROLLED_BACK: "bold $error",
    Status.COMPLETE: "bold $success",
}


def state_text(snapshot: Snapshot) -> str:
    state = snapshot.state
    if state.status is Status.HOLDING:
        return f"HOLDING: {state.hold_reason or ''}"
    return state.status.value.replace("_", " ").upper()


class HeaderBar(Pane):
    """Two lines: where the rollout is, and who/when."""

    DEFAULT_CSS = "HeaderBar { height: 2; background: $panel; padding: 0 1; }"

    operator: str = ""
    flags: str = ""  # "DRY-RUN", "READ-ONLY"

    def draw(self, snapshot: Snapshot) -> Content:
        plan, state = snapshot.plan, snapshot.state
        phases = len(plan.phases)
        phase = plan.phase(state.phase)
        bake = ""
        if phase is not None and state.phase_entered_at is not None:
            in_phase = snapshot.taken_at - state.phase_entered_at
            bake = f"  {format_duration(in_phase)} of {format_duration(phase.bake_s)}"
        first = Content.assemble(
            (plan.name, "bold"),
            f"  {state.phase}/{phases} {snapshot.phase_name}  {snapshot.traffic}%  ",
            (state_text(snapshot), STATE_STYLE[state.status]),
            bake,
        )
        now = snapshot.taken_at
        # Minutes, not seconds: a clock ticking every second would repaint an idle screen.
        utc = datetime.fromtimestamp(now, UTC).strftime("%H:%M UTC")
        local = time.localtime(now)
        clock = utc if local.tm_gmtoff == 0 else f"{utc} ({time.strftime('%H:%M %Z', local)})"
        second = Content.assemble(
            f"{self.operator}  {clock}  v{snapshot.version}",
            ("  " + self.flags if self.flags else "", "bold reverse $warning"),
        )
        return Content("\n").join([first, second])
