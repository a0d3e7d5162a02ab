"""The rollout state machine, rule by rule: each allowed and each refused transition."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

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
    Outcome,
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
    Baseline,
    RollbackRecord,
    RolloutState,
    Status,
    Tick,
    phase_key,
)

H = 3600.0
T0 = float(calendar.timegm((2024, 5, 6, 14, 2, 0)))  # Monday 14:02 UTC
ALICE = "alice@10.0.0.5"
BOB = "bob@10.0.0.6"

PREFLIGHT_CHECKS = ("Indexes verified", "Rollback procedures documented", "On-call briefed")
AFTER_CHECKS = ("Verify application is stable", "Error rates back to baseline", "Schedule retry")
PHASES = (
    Phase("shadow", 10, 48 * H, checks=("Dashboards green", "Slack update posted")),
    Phase("partial", 50, 72 * H, checks=("Cost reviewed",)),
    Phase("full", 100, 24 * H, checks=("Final report sent",)),
)
METHODS = ("instant", "env", "revert", "manual")


def make_plan() -> Plan:
    x = Path("x")
    return Plan(
        "phase3", x, x, x, {}, Catalog({}), PHASES,
        preflight_checks=PREFLIGHT_CHECKS,
        after_rollback_checks=AFTER_CHECKS,
        rollbacks=tuple(RollbackMethod(name, name.title(), 60.0, "when asked") for name in METHODS),
    )  # fmt: skip


M = RolloutMachine(make_plan())


def ok(state: RolloutState, event: Event, now: float) -> Outcome:
    outcome = M.transition(state, event, now)
    assert outcome.refused is None, outcome.refused
    return outcome


def refused(state: RolloutState, event: Event, now: float) -> str:
    outcome = M.transition(state, event, now)
    assert outcome.refused is not None
    assert (outcome.state is state, outcome.actions) == (True, ())
    assert "\n" not in outcome.refused
    return outcome.refused


def tick_all(state: RolloutState, now: float) -> RolloutState:
    key, items = M.checklist(state)
    for item in items:
        if item not in state.ticks.get(key, {}):
            state = ok(state, Check(ALICE, item), now).state
    return state


def running(phase: int = 1) -> RolloutState:
    """A state in `phase`, entered at T0, checks of that phase still open."""
    state = ok(tick_all(RolloutState(), T0), Advance(ALICE), T0).state
    for _ in range(phase - 1):
        state = ok(state, Advance(ALICE, force=True, reason="setup"), T0).state
    return state


def held() -> RolloutState:
    return ok(running(1), Hold(ALICE, "p95 drifting"), T0).state


def rolling_back(method: str = "instant") -> RolloutState:
    return ok(running(2), Rollback(BOB, method, "errors"), T0).state


def failed() -> RolloutState:
    """Rolling back after the first method failed."""
    return ok(rolling_back(), RollbackFinished(BOB, ok=False), T0).state


def rolled_back() -> RolloutState:
    return ok(rolling_back(), RollbackFinished(BOB, ok=True), T0).state


def complete() -> RolloutState:
    return ok(running(3), Advance(ALICE, force=True, reason="setup"), T0).state


# -- every refusal: state untouched, no actions, one line that says why ------------------------

OPEN = (
    "check open: Indexes verified; check open: Rollback procedures documented; "
    "check open: On-call briefed"
)
BUSY = f"rollback 'instant' is in progress (started by {BOB} at 14:02 UTC); wait for it to finish"
ALL = "methods: instant, env, revert, manual"
NOT_STARTED = "nothing to roll back: the rollout has not started"
DONE = "already rolled back (restart for a new attempt)"
FORCE = Advance(ALICE, force=True, reason="x")
AUTO = AutoRollback("cockpit", "env", "rule fired")
NAN = float("nan")
REFUSALS: list[tuple[Callable[[], RolloutState], Event, str]] = [
    # advance
    (RolloutState, Advance(ALICE, ("db.up is 0",)), f"cannot advance: db.up is 0; {OPEN}"),
    (running, Advance(ALICE, force=True), "a forced advance needs a reason"),
    (running, Advance(ALICE, force=True, reason="  "), "a forced advance needs a reason"),
    (held, Advance(ALICE), "on hold: p95 drifting — resume first"),
    (held, FORCE, "on hold: p95 drifting — resume first"),
    (rolling_back, FORCE, "cannot advance while rolling back"),
    (rolled_back, Advance(ALICE), "cannot advance: rolled back — restart for a new attempt"),
    (complete, FORCE, "cannot advance: the rollout is already complete"),
    # hold and resume
    (running, Hold(ALICE, " "), "a hold needs a reason"),
    (held, Hold(BOB, "again"), "already on hold: p95 drifting"),
    (RolloutState, Hold(ALICE, "x"), "cannot hold: not started; only a running phase holds"),
    (complete, Hold(ALICE, "x"), "cannot hold: complete; only a running phase holds"),
    (lambda: running(2), Resume(ALICE), "cannot resume: not on hold (running phase 2)"),
    (rolled_back, Resume(ALICE), "cannot resume: not on hold (rolled back)"),
    # checklists
    (running, Check(ALICE, "Cost reviewed"), "'Cost reviewed' is not on the phase-1 checklist"),
    (running, Check(ALICE, "dashboards green"),
     "'dashboards green' is not on the phase-1 checklist"),
    (running, Uncheck(BOB, "Dashboards green"), "not ticked: Dashboards green"),
    # rollback
    (RolloutState, Rollback(ALICE, "instant"), NOT_STARTED),
    (rolled_back, Rollback(ALICE, "instant"), DONE),
    (rolling_back, Rollback(ALICE, "env"), BUSY),
    (running, Rollback(ALICE, "instnt"),
     f"unknown rollback method 'instnt'; did you mean 'instant'? {ALL}"),
    (running, Rollback(ALICE, "zzz"), f"unknown rollback method 'zzz' {ALL}"),
    (running, AutoRollback("cockpit", "instant", " "),
     "an automatic rollback needs the rule that fired as its reason"),
    (running, AutoRollback("cockpit", "nope", "r"), f"unknown rollback method 'nope' {ALL}"),
    (RolloutState, AUTO, NOT_STARTED),
    (rolling_back, AUTO, BUSY),
    (failed, AUTO, "a rollback is under way; after a failure an operator picks the next method"),
    (rolled_back, AUTO, DONE),
    (running, RollbackFinished(ALICE, ok=True), "no rollback is running (running phase 1)"),
    (rolled_back, RollbackFinished(ALICE, ok=True), "no rollback is running (rolled back)"),
    (failed, RollbackFinished(ALICE, ok=True), "rollback 'instant' already finished: it failed"),
    # restart
    (rolled_back, Restart(ALICE, ""),
     "a restart needs a reason (what changed since the rollback?)"),
    (rolling_back, Restart(ALICE, "x"), "cannot restart: rolling back; restart follows a rollback"),
    (running, Restart(ALICE, "x"), "cannot restart: running phase 1; restart follows a rollback"),
    # baseline
    (running, CaptureBaseline(BOB, {}, 900.0), "nothing measured to capture"),
    (running, CaptureBaseline(BOB, {"x": NAN}, 9), "cannot capture x: nan is not a number"),
    (running, CaptureBaseline(BOB, {"x": 1}, 0.0), "the baseline window must be positive, not 0.0"),
    # anyone
    (running, Hold(" ", "why"), "hold: who is acting? no operator given"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "event", "why"), REFUSALS, ids=[r[2][:50] for r in REFUSALS])
def test_refusal(make: Callable[[], RolloutState], event: Event, why: str) -> None:
    assert refused(make(), event, T0 + 60) == why


def test_refusal_messages_are_one_line_even_with_multiline_input() -> None:
    state = ok(running(1), Hold(ALICE, "line one\nline two"), T0).state
    assert refused(state, Advance(ALICE), T0) == "on hold: line one line two — resume first"


def test_machine_refuses_what_the_plan_cannot_do() -> None:
    no_phases = RolloutMachine(replace(make_plan(), phases=(), preflight_checks=()))
    outcome = no_phases.transition(RolloutState(), Advance(ALICE), T0)
    assert outcome.refused == "cannot advance: the plan has no phases"
    lost = RolloutState(status=Status.RUNNING, phase=7, phase_entered_at=T0)
    why = refused(lost, Advance(ALICE), T0)
    assert why == "cannot advance: phase 7 is not in the plan (3 phases)"
    assert M.traffic(lost) == 0
    no_methods = RolloutMachine(replace(make_plan(), rollbacks=()))
    outcome = no_methods.transition(running(1), Rollback(ALICE, "instant"), T0)
    assert outcome.refused == "unknown rollback method 'instant': the plan defines none"


# -- advance and bake -------------------------------------------------------------------------


def test_advance_from_pending_starts_phase_one_without_bake() -> None:
    outcome = ok(tick_all(RolloutState(), T0), Advance(ALICE), T0 + 5)
    new = outcome.state
    assert (new.status, new.phase, new.started_at, new.phase_entered_at) == (
        Status.RUNNING, 1, T0 + 5, T0 + 5,
    )  # fmt: skip
    assert outcome.actions == (SetTraffic(10, 1),)
    assert (new.updated_by, new.updated_at) == (ALICE, T0 + 5)
    entry = new.history[-1]
    assert (entry.event, entry.from_status, entry.to_status) == ("advance", "pending", "running")
    assert (entry.from_phase, entry.to_phase, entry.forced, entry.at) == (0, 1, False, T0 + 5)


def test_bake_blocks_with_readable_time_left_and_ends_exactly_on_time() -> None:
    state = tick_all(running(1), T0)
    assert M.blockers(state, T0 + 2 * H) == ["bake: 46h left of 48h"]
    assert refused(state, Advance(ALICE), T0 + 2 * H) == "cannot advance: bake: 46h left of 48h"
    assert M.blockers(state, T0 + 48 * H - 1) == ["bake: 1s left of 48h"]
    assert M.blockers(state, T0 + 48 * H) == []
    assert M.bake_left(state, T0 + 47 * H) == H


def test_blockers_list_gates_then_bake_then_open_checks() -> None:
    state = running(1)
    assert M.blockers(state, T0 + H, ["p95 850ms > 500ms"]) == [
        "p95 850ms > 500ms",
        "bake: 47h left of 48h",
        "check open: Dashboards green",
        "check open: Slack update posted",
    ]
    state = ok(state, Check(ALICE, "Slack update posted"), T0 + H).state
    assert M.blockers(state, T0 + 49 * H) == ["check open: Dashboards green"]


def test_blockers_in_states_that_cannot_advance_are_one_line() -> None:
    assert M.blockers(held(), T0, ["gate"]) == ["holding: p95 drifting — resume first"]
    assert M.blockers(rolling_back(), T0) == ["rolling back"]
    assert M.blockers(rolled_back(), T0) == ["rolled back"]
    assert M.blockers(complete(), T0) == ["complete"]


def test_advance_moves_to_the_next_phase_with_its_traffic_bake_and_checks() -> None:
    outcome = ok(tick_all(running(1), T0), Advance(ALICE), T0 + 48 * H)
    new = outcome.state
    assert (new.status, new.phase, new.phase_entered_at, new.started_at) == (
        Status.RUNNING, 2, T0 + 48 * H, T0,
    )  # fmt: skip
    assert outcome.actions == (SetTraffic(50, 2),)
    assert M.blockers(new, T0 + 48 * H) == ["bake: 72h left of 72h", "check open: Cost reviewed"]
    # Ticks of the earlier phase stay as a record; they do not count here.
    assert set(new.ticks["phase-1"]) == {"Dashboards green", "Slack update posted"}


def test_advance_from_the_last_phase_completes_without_action() -> None:
    outcome = ok(tick_all(running(3), T0), Advance(ALICE), T0 + 24 * H)
    assert (outcome.state.status, outcome.state.phase) == (Status.COMPLETE, 3)
    assert outcome.actions == ()
    assert outcome.state.phase_entered_at == T0  # the phase number did not change


def test_forced_advance_records_what_it_overrode() -> None:
    outcome = ok(running(1), Advance(BOB, ("rule x",), force=True, reason="CEO says go"), T0 + H)
    assert outcome.state.phase == 2
    assert outcome.actions == (SetTraffic(50, 2),)
    entry = outcome.state.history[-1]
    assert (entry.forced, entry.by) == (True, BOB)
    assert entry.reason == (
        "CEO says go (overrode: rule x; bake: 47h left of 48h; "
        "check open: Dashboards green; check open: Slack update posted)"
    )


def test_force_with_nothing_to_override_is_a_plain_advance() -> None:
    state = tick_all(running(1), T0)
    entry = ok(state, Advance(ALICE, force=True, reason="on time"), T0 + 48 * H).state.history[-1]
    assert (entry.forced, entry.reason) == (False, "on time")


# -- hold and resume --------------------------------------------------------------------------


def test_hold_and_resume_keep_the_bake_counting() -> None:
    state = tick_all(running(1), T0)
    hold = ok(state, Hold(ALICE, "  p95 drifting  "), T0 + H).state
    assert (hold.status, hold.hold_reason, hold.phase) == (Status.HOLDING, "p95 drifting", 1)
    assert (hold.phase_entered_at, M.traffic(hold)) == (T0, 10)
    resumed = ok(hold, Resume(BOB, "fixed"), T0 + 49 * H).state
    assert (resumed.status, resumed.hold_reason) == (Status.RUNNING, None)
    assert resumed.history[-1].reason == "fixed"
    assert ok(resumed, Advance(ALICE), T0 + 49 * H).state.phase == 2


# -- checklists -------------------------------------------------------------------------------


def test_checklist_follows_the_status() -> None:
    assert M.checklist(RolloutState()) == (PREFLIGHT, PREFLIGHT_CHECKS)
    assert M.checklist(running(2)) == (phase_key(2), ("Cost reviewed",))
    assert M.checklist(held()) == ("phase-1", ("Dashboards green", "Slack update posted"))
    assert M.checklist(rolling_back()) == (AFTER_ROLLBACK, AFTER_CHECKS)
    assert M.checklist(rolled_back()) == (AFTER_ROLLBACK, AFTER_CHECKS)
    assert M.checklist(complete()) == ("phase-3", ("Final report sent",))


def test_check_records_who_and_when_without_touching_the_input() -> None:
    state = running(1)
    new = ok(state, Check(BOB, "Dashboards green"), T0 + 60).state
    assert new.ticks["phase-1"] == {"Dashboards green": Tick(BOB, T0 + 60)}
    assert new.ticks[PREFLIGHT] == state.ticks[PREFLIGHT]
    assert "phase-1" not in state.ticks
    entry = new.history[-1]
    assert (entry.event, entry.reason, entry.by) == ("check", "Dashboards green", BOB)
    assert new.phase_entered_at == T0
    rb = ok(rolling_back(), Check(BOB, "Schedule retry"), T0).state
    assert rb.ticks[AFTER_ROLLBACK] == {"Schedule retry": Tick(BOB, T0)}


def test_check_twice_says_who_ticked_it_and_when() -> None:
    again = Check(BOB, "Dashboards green")
    state = ok(running(1), Check("alice", "Dashboards green"), T0).state
    assert refused(state, again, T0 + H) == "already ticked by alice at 14:02 UTC"
    assert refused(state, again, T0 + 24 * H) == "already ticked by alice at 2024-05-06 14:02 UTC"


def test_uncheck_removes_the_tick_and_empty_tables() -> None:
    state = ok(running(1), Check(ALICE, "Dashboards green"), T0).state
    state = ok(state, Check(ALICE, "Slack update posted"), T0).state
    new = ok(state, Uncheck(BOB, "Dashboards green"), T0 + 1).state
    assert new.ticks["phase-1"] == {"Slack update posted": Tick(ALICE, T0)}
    assert new.history[-1].event == "uncheck"
    emptied = ok(new, Uncheck(BOB, "Slack update posted"), T0 + 2).state
    assert set(emptied.ticks) == {PREFLIGHT}


# -- resolve_item -----------------------------------------------------------------------------


def test_resolve_item_by_text_number_or_unique_piece() -> None:
    state = RolloutState()
    assert M.resolve_item(state, "On-call briefed") == "On-call briefed"
    assert M.resolve_item(state, " 2 ") == "Rollback procedures documented"
    assert M.resolve_item(state, "INDEXES") == "Indexes verified"
    assert M.resolve_item(rolled_back(), "retry") == "Schedule retry"
    plan = replace(make_plan(), preflight_checks=("Deploy", "Deploy canary"))
    assert RolloutMachine(plan).resolve_item(state, "deploy") == "Deploy"  # whole match wins


LISTED = "1. Indexes verified; 2. Rollback procedures documented; 3. On-call briefed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("E", "'E' matches 3 items, say which: 'Indexes verified'; "
              "'Rollback procedures documented'; 'On-call briefed'"),
        ("Indexes verifed!", "no item 'Indexes verifed!' on the preflight checklist; "
                             f"did you mean 'Indexes verified'? items: {LISTED}"),
        ("zzz", f"no item 'zzz' on the preflight checklist items: {LISTED}"),
        ("4", "no item 4: the preflight checklist has items 1-3"),
        ("0", "no item 0: the preflight checklist has items 1-3"),
        ("²", f"no item '²' on the preflight checklist items: {LISTED}"),
        ("  ", f"which item? the preflight checklist: {LISTED}"),
    ],
)  # fmt: skip
def test_resolve_item_errors_are_one_helpful_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^") as err:
        M.resolve_item(RolloutState(), text)
    assert str(err.value) == message
    empty = RolloutMachine(replace(make_plan(), preflight_checks=()))
    with pytest.raises(ValueError, match="^the preflight checklist is empty$"):
        empty.resolve_item(RolloutState(), text)


# -- rollback and restart ---------------------------------------------------------------------


def test_rollback_starts_the_method_from_running_hold_or_complete() -> None:
    outcome = ok(running(2), Rollback(BOB, "env", "error rate 1.2%"), T0 + H)
    new = outcome.state
    assert (new.status, new.phase, M.traffic(new)) == (Status.ROLLING_BACK, 2, 50)
    assert new.rollback == RollbackRecord("env", T0 + H, BOB, "error rate 1.2%", auto=False)
    assert outcome.actions == (RunRollback("env", False),)
    assert new.history[-1].event == "rollback"
    from_hold = ok(held(), Rollback(ALICE, "instant"), T0).state
    assert (from_hold.status, from_hold.hold_reason) == (Status.ROLLING_BACK, None)
    late = ok(complete(), Rollback(ALICE, "revert", "late regression"), T0 + 200 * H)
    assert (late.actions, M.traffic(late.state)) == ((RunRollback("revert", False),), 100)


def test_after_a_failed_rollback_the_operator_picks_another_method() -> None:
    fail = ok(rolling_back(), RollbackFinished(BOB, ok=False, detail="verify got 502"), T0 + 90)
    assert fail.state.status is Status.ROLLING_BACK
    assert fail.state.rollback == RollbackRecord(
        "instant", T0, BOB, "errors", False, T0 + 90, False, "verify got 502"
    )
    assert fail.state.history[-1].reason == "instant failed: verify got 502"
    retry = ok(fail.state, Rollback(ALICE, "env", "instant failed"), T0 + 120)
    assert retry.actions == (RunRollback("env", False),)
    assert retry.state.rollback == RollbackRecord("env", T0 + 120, ALICE, "instant failed")


def test_auto_rollback_records_the_rule_and_asks_for_an_auto_run() -> None:
    outcome = ok(running(1), AutoRollback("cockpit", "instant", "error rate 2.4% > 2% for 5m"), T0)
    assert outcome.actions == (RunRollback("instant", True),)
    assert outcome.state.rollback is not None
    assert outcome.state.rollback.auto is True
    entry = outcome.state.history[-1]
    assert (entry.event, entry.reason) == ("auto_rollback", "error rate 2.4% > 2% for 5m")
    assert ok(held(), AutoRollback("cockpit", "env", "r"), T0).state.status is Status.ROLLING_BACK
    assert ok(complete(), AutoRollback("c", "env", "r"), T0).actions == (RunRollback("env", True),)


def test_rollback_finished_ok_means_rolled_back_with_no_traffic() -> None:
    outcome = ok(rolling_back("env"), RollbackFinished("cockpit", ok=True, detail="2xx"), T0 + 120)
    new = outcome.state
    assert new.status is Status.ROLLED_BACK
    assert new.rollback == RollbackRecord("env", T0, BOB, "errors", False, T0 + 120, True, "2xx")
    assert (outcome.actions, new.history[-1].reason, M.traffic(new)) == ((), "env ok: 2xx", 0)


def test_restart_after_a_rollback_is_a_fresh_attempt() -> None:
    state = ok(rolled_back(), Check(BOB, "Schedule retry"), T0 + H).state
    state = ok(state, CaptureBaseline(BOB, {"http.p95": 850.0}, 3600.0), T0 + H).state
    new = ok(state, Restart(ALICE, "cache key fixed"), T0 + 30 * H).state
    assert (new.status, new.phase, new.phase_entered_at, new.started_at) == (
        Status.PENDING, 0, None, None,
    )  # fmt: skip
    assert (new.ticks, new.rollback, new.hold_reason) == ({}, None, None)
    assert (new.baseline, new.history[:-1]) == (state.baseline, state.history)
    entry = new.history[-1]
    assert (entry.event, entry.from_phase, entry.to_phase) == ("restart", 2, 0)
    assert entry.reason == "cache key fixed"
    assert (new.updated_by, new.updated_at, M.traffic(new)) == (ALICE, T0 + 30 * H, 0)
    assert M.blockers(new, T0 + 30 * H)[0] == "check open: Indexes verified"


# -- baseline, history, traffic, purity -------------------------------------------------------


@pytest.mark.parametrize("make", [RolloutState, running, held, rolling_back, rolled_back, complete])
def test_capture_baseline_in_every_status(make: Callable[[], RolloutState]) -> None:
    state = make()
    values = {"http.p95": 850.0, "db.qps": 40.0}
    outcome = ok(state, CaptureBaseline(BOB, values, 900.0), T0 + 9)
    new = outcome.state
    assert new.baseline is not None
    assert new.baseline == Baseline({"http.p95": 850.0, "db.qps": 40.0}, T0 + 9, 900.0, BOB)
    assert (new.status, new.phase, outcome.actions) == (state.status, state.phase, ())
    assert new.history[-1].event == "capture_baseline"
    assert new.history[-1].reason == "2 metric(s) over 15m: db.qps, http.p95"
    values["http.p95"] = 1.0  # the state keeps its own copy
    assert new.baseline.values["http.p95"] == 850.0


def test_history_is_bounded() -> None:
    state = running(1)
    for n in range(MAX_HISTORY + 60):
        event = Check(ALICE, "Dashboards green") if n % 2 == 0 else Uncheck(BOB, "Dashboards green")
        state = ok(state, event, T0 + n).state
    assert len(state.history) == MAX_HISTORY == 200
    assert (state.history[0].at, state.history[-1].at) == (T0 + 60, T0 + MAX_HISTORY + 59)
    assert [e.event for e in state.history[-2:]] == ["check", "uncheck"]


def test_traffic_in_each_status() -> None:
    assert [M.traffic(running(n)) for n in (1, 2, 3)] == [10, 50, 100]
    states = (RolloutState, held, rolling_back, rolled_back, complete)
    assert [M.traffic(make()) for make in states] == [0, 10, 50, 0, 100]
    assert M.traffic(ok(running(2), Hold(ALICE, "x"), T0).state) == 50


def test_the_machine_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the machine must not read the clock")

    for name in ("time", "monotonic", "time_ns", "perf_counter"):
        monkeypatch.setattr(time, name, no_clock)
    state = ok(tick_all(RolloutState(), T0), Advance(ALICE), T0).state
    state = ok(state, Check(ALICE, "Dashboards green"), T0 + 1).state
    assert refused(state, Check(BOB, "Dashboards green"), T0 + 2).startswith("already ticked")
    assert M.blockers(state, T0 + 3)[0] == "bake: 47h59m left of 48h"
