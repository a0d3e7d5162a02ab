"""Property tests: no sequence of events, on any plan shape, reaches an invalid rollout state."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cockpit.core.catalog import Catalog
from cockpit.core.plan import Phase, Plan, RollbackMethod
from cockpit.core.rollout import MAX_HISTORY, RolloutMachine
from cockpit.core.rollout_events import (
    Advance,
    AutoRollback,
    CaptureBaseline,
    Check,
    Event,
    Hold,
    Restart,
    Resume,
    Rollback,
    RollbackFinished,
    RunRollback,
    SetTraffic,
    Uncheck,
)
from cockpit.core.rollout_model import (
    AFTER_ROLLBACK,
    PREFLIGHT,
    RolloutState,
    Status,
    phase_key,
)

ITEMS = ("Dashboards green", "Cost reviewed", "Slack update", "Indexes verified", "Retry")
METHODS = ("instant", "env", "revert", "manual")
OPERATORS = st.sampled_from(("alice@10.0.0.5", "bob", "cockpit", "dave", "eve", "", "  "))
REASONS = st.sampled_from(("", " ", "p95 drifting", "error rate 2.4% > 2%", "why", "go"))
START = 1_715_000_000.0
S = Status
ALLOWED_FROM: dict[str, set[Status]] = {
    "advance": {S.PENDING, S.RUNNING},
    "hold": {S.RUNNING},
    "resume": {S.HOLDING},
    "rollback": {S.RUNNING, S.HOLDING, S.COMPLETE, S.ROLLING_BACK},
    "auto_rollback": {S.RUNNING, S.HOLDING, S.COMPLETE},
    "rollback_finished": {S.ROLLING_BACK},
    "restart": {S.ROLLED_BACK},
    "check": set(S),
    "uncheck": set(S),
    "capture_baseline": set(S),
}


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(1, 4))
    traffic = sorted(draw(st.lists(st.integers(1, 100), min_size=count, max_size=count)))
    checklists = st.lists(st.sampled_from(ITEMS), max_size=2, unique=True).map(tuple)
    phases = tuple(
        Phase(f"p{n}", percent, draw(st.sampled_from((0.0, 30.0, 90.0))), checks=draw(checklists))
        for n, percent in enumerate(traffic, start=1)
    )
    methods = draw(st.lists(st.sampled_from(METHODS), min_size=1, max_size=4, unique=True))
    return Plan(
        name="prop",
        config_path=Path("x"),
        state_path=Path("x"),
        audit_path=Path("x"),
        sources={},
        catalog=Catalog({}),
        phases=phases,
        preflight_checks=draw(checklists),
        after_rollback_checks=draw(checklists),
        rollbacks=tuple(RollbackMethod(m, m, None, "") for m in methods),
    )


def events(plan: Plan) -> st.SearchStrategy[Event]:
    items = st.sampled_from((*ITEMS, "not an item"))
    methods = st.sampled_from((*(m.name for m in plan.rollbacks), "nope"))
    blockers = st.lists(st.sampled_from(("rule a failed", "db unknown")), max_size=2).map(tuple)
    values = st.dictionaries(st.sampled_from(("http.p95", "db.qps")), st.floats(), max_size=2)
    return st.one_of(
        st.builds(Advance, OPERATORS, blockers, st.booleans(), REASONS),
        st.builds(Hold, OPERATORS, REASONS),
        st.builds(Resume, OPERATORS, REASONS),
        st.builds(Rollback, OPERATORS, methods, REASONS),
        st.builds(AutoRollback, OPERATORS, methods, REASONS),
        st.builds(RollbackFinished, OPERATORS, st.booleans(), REASONS),
        st.builds(Check, OPERATORS, items),
        st.builds(Uncheck, OPERATORS, items),
        st.builds(CaptureBaseline, OPERATORS, values, st.sampled_from((0.0, 60.0, 900.0))),
        st.builds(Restart, OPERATORS, REASONS),
    )


class RolloutSequences(RuleBasedStateMachine):
    """Feeds random events at non-decreasing times and checks every answer and every state."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = RolloutMachine(
            Plan("none", Path("x"), Path("x"), Path("x"), {}, Catalog({}), ())
        )
        self.state = RolloutState()
        self.now = START
        self.events: st.SearchStrategy[Event] = st.nothing()

    @initialize(plan=plans())
    def choose_plan(self, plan: Plan) -> None:
        self.machine = RolloutMachine(plan)
        self.events = events(plan)  # built once: building strategies per step is slow

    @property
    def plan(self) -> Plan:
        return self.machine.plan

    @rule(data=st.data(), dt=st.sampled_from((0.0, 0.5, 10.0, 45.0, 100.0)))
    def random_event(self, data: st.DataObject, dt: float) -> None:
        self.apply(data.draw(self.events), dt)

    @rule(dt=st.sampled_from((0.0, 50.0)))
    def tick_next_open_item(self, dt: float) -> None:
        """Random items rarely hit the current checklist; this keeps sequences moving."""
        key, items = self.machine.checklist(self.state)
        open_items = [i for i in items if i not in self.state.ticks.get(key, {})]
        if open_items:
            self.apply(Check("alice", open_items[0]), dt)

    @rule(dt=st.sampled_from((0.0, 100.0)))
    def advance_plainly(self, dt: float) -> None:
        self.apply(Advance("alice"), dt)

    @rule(choice=st.integers(0, 6), last_method=st.booleans(), dt=st.sampled_from((0.0, 20.0)))
    def operator_move(self, choice: int, last_method: bool, dt: float) -> None:
        """Well-formed moves, so holds, failed rollbacks and restarts happen often."""
        method = self.plan.rollbacks[-1 if last_method else 0].name
        move: Event = (
            Hold("bob", "p95 drifting"),
            Resume("alice"),
            Rollback("bob", method, "errors"),
            AutoRollback("cockpit", method, "error rate 2.4% > 2% for 5m"),
            RollbackFinished("cockpit", ok=True),
            RollbackFinished("cockpit", ok=False, detail="verify got 502"),
            Restart("alice", "fixed"),
        )[choice]
        self.apply(move, dt)

    @rule(text=st.one_of(st.text(max_size=12), st.sampled_from((*ITEMS, "1", "2", "9", "e"))))
    def resolve(self, text: str) -> None:
        _, items = self.machine.checklist(self.state)
        try:
            found, message = self.machine.resolve_item(self.state, text), ""
        except ValueError as err:
            found, message = None, str(err)
        if found is None:
            assert message.strip()
            assert "\n" not in message
        else:
            assert found in items

    def apply(self, event: Event, dt: float) -> None:
        self.now += dt
        before, now = self.state, self.now
        gates = event.gate_blockers if isinstance(event, Advance) else ()
        blockers = self.machine.blockers(before, now, gates)
        outcome = self.machine.transition(before, event, now)
        assert self.machine.transition(before, event, now) == outcome  # pure: same in, same out
        if outcome.refused is not None:
            assert outcome.state is before
            assert outcome.actions == ()
            assert outcome.refused.strip()
            assert "\n" not in outcome.refused
            return
        new = self.state = outcome.state
        self.check_accepted(before, new, event, now)
        self.check_actions(before, new, event, outcome.actions)
        if isinstance(event, Advance):
            assert event.force or not blockers, blockers
            assert new.history[-1].forced == bool(blockers)

    def check_accepted(
        self, before: RolloutState, new: RolloutState, event: Event, now: float
    ) -> None:
        entry = new.history[-1]
        assert (entry.at, entry.by, entry.event) == (now, event.by, event.name)
        assert (entry.from_status, entry.to_status) == (before.status, new.status)
        assert (entry.from_phase, entry.to_phase) == (before.phase, new.phase)
        assert (new.updated_by, new.updated_at) == (event.by, now)
        assert event.by.strip()
        assert before.status in ALLOWED_FROM[event.name]
        if isinstance(event, Rollback) and before.status is Status.ROLLING_BACK:
            assert before.rollback is not None
            assert before.rollback.ok is False  # only a failed rollback makes way for another
        if isinstance(event, Restart):
            assert before.status is Status.ROLLED_BACK
            assert (new.phase, new.phase_entered_at, dict(new.ticks)) == (0, None, {})
        elif new.phase != before.phase:
            assert isinstance(event, Advance)
            assert new.phase == before.phase + 1  # never skips
            assert new.phase_entered_at == now
        else:
            assert new.phase_entered_at == before.phase_entered_at

    def check_actions(
        self, before: RolloutState, new: RolloutState, event: Event, actions: tuple[object, ...]
    ) -> None:
        traffic = [a for a in actions if isinstance(a, SetTraffic)]
        runs = [a for a in actions if isinstance(a, RunRollback)]
        assert len(traffic) + len(runs) == len(actions)
        entered_phase = new.phase == before.phase + 1
        assert len(traffic) == (1 if entered_phase else 0)
        for action in traffic:
            phase = self.plan.phase(new.phase)
            assert phase is not None
            assert (action.percent, action.phase) == (phase.traffic, new.phase)
            assert self.machine.traffic(new) == action.percent
        if isinstance(event, Rollback | AutoRollback):
            assert runs == [RunRollback(event.method, isinstance(event, AutoRollback))]
            assert new.status is Status.ROLLING_BACK
        else:
            assert runs == []

    @invariant()
    def status_and_phase_agree(self) -> None:
        state, count = self.state, len(self.plan.phases)
        if state.status is Status.PENDING:
            assert state.phase == 0
            assert state.phase_entered_at is None
        if state.status in (Status.RUNNING, Status.HOLDING):
            assert 1 <= state.phase <= count
            assert state.phase_entered_at is not None
            assert state.started_at is not None
        if state.status is Status.COMPLETE:
            assert state.phase == count
        assert (state.status is Status.HOLDING) == bool(
            state.hold_reason and state.hold_reason.strip()
        )
        if state.status in (Status.ROLLING_BACK, Status.ROLLED_BACK):
            assert state.rollback is not None
            assert self.plan.rollback(state.rollback.method) is not None
        if state.status is Status.ROLLED_BACK:
            assert state.rollback is not None
            assert state.rollback.ok is True
        if state.status is Status.ROLLING_BACK:
            assert state.rollback is not None
            assert state.rollback.ok is not True
        assert 0 <= self.machine.traffic(state) <= 100

    @invariant()
    def ticks_name_real_items(self) -> None:
        lists = {
            PREFLIGHT: self.plan.preflight_checks,
            AFTER_ROLLBACK: self.plan.after_rollback_checks,
        }
        lists.update({phase_key(n): p.checks for n, p in enumerate(self.plan.phases, start=1)})
        for key, ticked in self.state.ticks.items():
            assert ticked, f"empty tick table {key} left behind"
            assert set(ticked) <= set(lists[key])

    @invariant()
    def history_is_bounded_and_ordered(self) -> None:
        times = [entry.at for entry in self.state.history]
        assert len(times) <= MAX_HISTORY
        assert times == sorted(times)

    @invariant()
    def baseline_is_sane(self) -> None:
        baseline = self.state.baseline
        if baseline is not None:
            assert baseline.values
            assert baseline.window_s > 0


RolloutSequences.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_rollout_sequences = RolloutSequences.TestCase
