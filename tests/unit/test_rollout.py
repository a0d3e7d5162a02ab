"""The rollout state machine, rule by rule: each allowed and each refused transition."""

from __future__ import annotations

import calendar
import time
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


def make_plan(phases: tuple[Phase, ...] | None = None) -> Plan:
    if phases is None:
        phases = (
            Phase("shadow", 10, 48 * H, checks=("Dashboards green", "Slack update posted")),
            Phase("partial", 50, 72 * H, checks=("Cost reviewed",)),
            Phase("full", 100, 24 * H, checks=("Final report sent",)),
        )
    return Plan(
        name="phase3",
        config_path=Path("x"),
        state_path=Path("x"),
        audit_path=Path("x"),
        sources={},
        catalog=Catalog({}),
        phases=phases,
        preflight_checks=PREFLIGHT_CHECKS,
        after_rollback_checks=AFTER_CHECKS,
        rollbacks=tuple(
            RollbackMethod(name, title, eta, when)
            for name, title, eta, when in (
                ("instant", "Vercel instant rollback", 30.0, "production down"),
                ("env", "Environment variable rollback", 120.0, "app functional"),
                ("revert", "Git revert + redeploy", 600.0, "time to investigate"),
                ("manual", "Manual code disable", 900.0, "all else failed"),
            )
        ),
    )


M = RolloutMachine(make_plan())


def ok(state: RolloutState, event: Event, now: float) -> Outcome:
    outcome = M.transition(state, event, now)
    assert outcome.refused is None, outcome.refused
    return outcome


def refused(state: RolloutState, event: Event, now: float) -> str:
    outcome = M.transition(state, event, now)
    assert outcome.refused is not None
    assert outcome.state is state
    assert outcome.actions == ()
    assert "\n" not in outcome.refused
    return outcome.refused


def tick_all(state: RolloutState, now: float) -> RolloutState:
    _, items = M.checklist(state)
    for item in items:
        if item not in state.ticks.get(M.checklist(state)[0], {}):
            state = ok(state, Check(ALICE, item), now).state
    return state


def running(phase: int = 1, now: float = T0) -> RolloutState:
    """A state in `phase`, entered at `now`, checks of that phase still open."""
    state = ok(tick_all(RolloutState(), now), Advance(ALICE), now).state
    for _ in range(phase - 1):
        state = ok(state, Advance(ALICE, force=True, reason="setup"), now).state
    return state


def rolling_back(method: str = "instant", now: float = T0) -> RolloutState:
    return ok(running(2, now), Rollback(BOB, method, "errors"), now).state


def rolled_back(now: float = T0) -> RolloutState:
    return ok(rolling_back(now=now), RollbackFinished(BOB, ok=True), now).state


def complete(now: float = T0) -> RolloutState:
    return ok(running(3, now), Advance(ALICE, force=True, reason="setup"), now).state


# -- advance ----------------------------------------------------------------------------------


def test_advance_from_pending_is_blocked_by_open_preflight_checks_and_gates() -> None:
    why = refused(RolloutState(), Advance(ALICE, gate_blockers=("db.up is 0",)), T0)
    assert why == (
        "cannot advance: db.up is 0; check open: Indexes verified; "
        "check open: Rollback procedures documented; check open: On-call briefed"
    )


def test_advance_from_pending_starts_phase_one_without_bake() -> None:
    state = tick_all(RolloutState(), T0)
    outcome = ok(state, Advance(ALICE), T0 + 5)
    new = outcome.state
    assert (new.status, new.phase) == (Status.RUNNING, 1)
    assert new.started_at == T0 + 5
    assert new.phase_entered_at == T0 + 5
    assert outcome.actions == (SetTraffic(10, 1),)
    assert (new.updated_by, new.updated_at) == (ALICE, T0 + 5)
    entry = new.history[-1]
    assert (entry.event, entry.from_status, entry.to_status) == ("advance", "pending", "running")
    assert (entry.from_phase, entry.to_phase, entry.forced) == (0, 1, False)


def test_advance_is_blocked_by_bake_with_readable_time_left() -> None:
    state = tick_all(running(1), T0)
    assert M.blockers(state, T0 + 2 * H) == ["bake: 46h left of 48h"]
    assert refused(state, Advance(ALICE), T0 + 2 * H) == "cannot advance: bake: 46h left of 48h"
    assert M.blockers(state, T0 + 48 * H - 1) == ["bake: 1s left of 48h"]
    assert M.blockers(state, T0 + 48 * H) == []


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


def test_advance_moves_to_the_next_phase_and_sets_its_traffic() -> None:
    state = tick_all(running(1), T0)
    outcome = ok(state, Advance(ALICE), T0 + 48 * H)
    assert (outcome.state.status, outcome.state.phase) == (Status.RUNNING, 2)
    assert outcome.actions == (SetTraffic(50, 2),)
    assert outcome.state.phase_entered_at == T0 + 48 * H
    assert outcome.state.started_at == T0
    # The new phase has its own checklist and its own bake.
    assert M.blockers(outcome.state, T0 + 48 * H) == [
        "bake: 72h left of 72h",
        "check open: Cost reviewed",
    ]


def test_advance_from_the_last_phase_completes_without_action() -> None:
    state = tick_all(running(3), T0)
    outcome = ok(state, Advance(ALICE), T0 + 24 * H)
    assert (outcome.state.status, outcome.state.phase) == (Status.COMPLETE, 3)
    assert outcome.actions == ()
    assert outcome.state.phase_entered_at == T0  # the phase number did not change


def test_forced_advance_needs_a_reason() -> None:
    state = running(1)
    assert refused(state, Advance(ALICE, force=True), T0) == "a forced advance needs a reason"
    assert refused(state, Advance(ALICE, force=True, reason="  "), T0) == (
        "a forced advance needs a reason"
    )


def test_forced_advance_records_what_it_overrode() -> None:
    state = running(1)
    outcome = ok(state, Advance(BOB, ("rule x",), force=True, reason="CEO says go"), T0 + H)
    assert outcome.state.phase == 2
    assert outcome.actions == (SetTraffic(50, 2),)
    entry = outcome.state.history[-1]
    assert entry.forced is True
    assert entry.by == BOB
    assert entry.reason == (
        "CEO says go (overrode: rule x; bake: 47h left of 48h; "
        "check open: Dashboards green; check open: Slack update posted)"
    )


def test_force_with_nothing_to_override_is_a_plain_advance() -> None:
    state = tick_all(running(1), T0)
    outcome = ok(state, Advance(ALICE, force=True, reason="on time"), T0 + 48 * H)
    assert outcome.state.history[-1].forced is False
    assert outcome.state.history[-1].reason == "on time"


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: ok(running(1), Hold(ALICE, "p95 drifting"), T0).state,
         "on hold: p95 drifting — resume first"),
        (rolling_back, "cannot advance while rolling back"),
        (rolled_back, "cannot advance: rolled back — restart for a new attempt"),
        (complete, "cannot advance: the rollout is already complete"),
    ],
)  # fmt: skip
def test_advance_is_refused_where_it_cannot_apply(make: object, why: str) -> None:
    assert callable(make)
    state = make()
    assert refused(state, Advance(ALICE), T0 + 1000 * H) == why
    # Force overrides blockers, never the state itself.
    assert refused(state, Advance(ALICE, force=True, reason="x"), T0 + 1000 * H) == why


def test_blockers_in_states_that_cannot_advance_are_one_line() -> None:
    holding = ok(running(1), Hold(ALICE, "p95 drifting"), T0).state
    assert M.blockers(holding, T0, ["gate"]) == ["holding: p95 drifting — resume first"]
    assert M.blockers(rolling_back(), T0) == ["rolling back"]
    assert M.blockers(rolled_back(), T0) == ["rolled back"]
    assert M.blockers(complete(), T0) == ["complete"]


def test_a_plan_without_phases_cannot_start() -> None:
    machine = RolloutMachine(replace(make_plan(), phases=(), preflight_checks=()))
    outcome = machine.transition(RolloutState(), Advance(ALICE), T0)
    assert outcome.refused == "cannot advance: the plan has no phases"
    assert machine.traffic(RolloutState()) == 0


def test_a_state_in_a_phase_the_plan_lacks_cannot_advance() -> None:
    state = RolloutState(status=Status.RUNNING, phase=7, phase_entered_at=T0)
    assert refused(state, Advance(ALICE), T0) == (
        "cannot advance: phase 7 is not in the plan (3 phases)"
    )
    assert M.traffic(state) == 0


# -- hold and resume --------------------------------------------------------------------------


def test_hold_and_resume_keep_the_bake_counting() -> None:
    state = tick_all(running(1), T0)
    held = ok(state, Hold(ALICE, "  p95 drifting  "), T0 + H).state
    assert (held.status, held.hold_reason, held.phase) == (Status.HOLDING, "p95 drifting", 1)
    assert held.phase_entered_at == T0
    assert M.traffic(held) == 10
    resumed = ok(held, Resume(BOB, "fixed"), T0 + 49 * H).state
    assert (resumed.status, resumed.hold_reason) == (Status.RUNNING, None)
    assert resumed.history[-1].reason == "fixed"
    assert ok(resumed, Advance(ALICE), T0 + 49 * H).state.phase == 2


def test_hold_needs_a_reason_and_a_running_phase() -> None:
    assert refused(running(1), Hold(ALICE, " "), T0) == "a hold needs a reason"
    held = ok(running(1), Hold(ALICE, "why"), T0).state
    assert refused(held, Hold(BOB, "again"), T0) == "already on hold: why"
    assert refused(RolloutState(), Hold(ALICE, "x"), T0) == (
        "cannot hold: not started; only a running phase holds"
    )
    assert refused(complete(), Hold(ALICE, "x"), T0) == (
        "cannot hold: complete; only a running phase holds"
    )


def test_resume_only_from_hold() -> None:
    assert refused(running(2), Resume(ALICE), T0) == "cannot resume: not on hold (running phase 2)"
    assert refused(rolled_back(), Resume(ALICE), T0) == "cannot resume: not on hold (rolled back)"


# -- checklists -------------------------------------------------------------------------------


def test_checklist_follows_the_status() -> None:
    assert M.checklist(RolloutState()) == (PREFLIGHT, PREFLIGHT_CHECKS)
    assert M.checklist(running(2)) == (phase_key(2), ("Cost reviewed",))
    assert M.checklist(ok(running(2), Hold(ALICE, "x"), T0).state) == (
        "phase-2",
        ("Cost reviewed",),
    )
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


def test_check_refuses_items_not_on_the_current_checklist() -> None:
    assert refused(running(1), Check(ALICE, "Cost reviewed"), T0) == (
        "'Cost reviewed' is not on the phase-1 checklist"
    )
    assert refused(running(1), Check(ALICE, "dashboards green"), T0) == (
        "'dashboards green' is not on the phase-1 checklist"
    )


def test_check_twice_says_who_ticked_it_and_when() -> None:
    state = ok(running(1), Check(ALICE.split("@")[0], "Dashboards green"), T0).state
    assert refused(state, Check(BOB, "Dashboards green"), T0 + H) == (
        "already ticked by alice at 14:02 UTC"
    )
    assert refused(state, Check(BOB, "Dashboards green"), T0 + 24 * H) == (
        "already ticked by alice at 2024-05-06 14:02 UTC"
    )


def test_uncheck_removes_a_tick_and_refuses_an_open_item() -> None:
    state = ok(running(1), Check(ALICE, "Dashboards green"), T0).state
    state = ok(state, Check(ALICE, "Slack update posted"), T0).state
    new = ok(state, Uncheck(BOB, "Dashboards green"), T0 + 1).state
    assert new.ticks["phase-1"] == {"Slack update posted": Tick(ALICE, T0)}
    assert new.history[-1].event == "uncheck"
    emptied = ok(new, Uncheck(BOB, "Slack update posted"), T0 + 2).state
    assert set(emptied.ticks) == {PREFLIGHT}
    assert refused(new, Uncheck(BOB, "Dashboards green"), T0) == "not ticked: Dashboards green"


def test_after_rollback_checks_tick_while_rolling_back() -> None:
    state = ok(rolling_back(), Check(BOB, "Schedule retry"), T0).state
    assert state.ticks[AFTER_ROLLBACK] == {"Schedule retry": Tick(BOB, T0)}


def test_ticks_from_an_earlier_phase_stay_but_do_not_count() -> None:
    state = tick_all(running(1), T0)
    state = ok(state, Advance(ALICE), T0 + 48 * H).state
    assert set(state.ticks["phase-1"]) == {"Dashboards green", "Slack update posted"}
    assert "check open: Cost reviewed" in M.blockers(state, T0 + 200 * H)


# -- resolve_item -----------------------------------------------------------------------------


def test_resolve_item_by_text_number_or_unique_piece() -> None:
    state = RolloutState()
    assert M.resolve_item(state, "On-call briefed") == "On-call briefed"
    assert M.resolve_item(state, " 2 ") == "Rollback procedures documented"
    assert M.resolve_item(state, "INDEXES") == "Indexes verified"
    assert M.resolve_item(rolled_back(), "retry") == "Schedule retry"


def test_resolve_item_prefers_a_whole_case_insensitive_match_over_pieces() -> None:
    plan = replace(make_plan(), preflight_checks=("Deploy", "Deploy canary"))
    assert RolloutMachine(plan).resolve_item(RolloutState(), "deploy") == "Deploy"


def test_resolve_item_ambiguous_lists_the_candidates() -> None:
    with pytest.raises(ValueError, match="^'E' matches 3 items, say which: ") as err:
        M.resolve_item(RolloutState(), "E")
    assert str(err.value).endswith(
        "'Indexes verified'; 'Rollback procedures documented'; 'On-call briefed'"
    )


def test_resolve_item_unknown_suggests_and_lists_the_checklist() -> None:
    with pytest.raises(ValueError, match="did you mean") as err:
        M.resolve_item(RolloutState(), "Indexes verifed!")
    assert str(err.value) == (
        "no item 'Indexes verifed!' on the preflight checklist; did you mean 'Indexes verified'?"
        " items: 1. Indexes verified; 2. Rollback procedures documented; 3. On-call briefed"
    )
    with pytest.raises(ValueError, match="^no item 'zzz' on the phase-2 checklist items: 1. Cost"):
        M.resolve_item(running(2), "zzz")


def test_resolve_item_number_out_of_range_and_empty_inputs() -> None:
    with pytest.raises(ValueError, match="^no item 4: the preflight checklist has items 1-3$"):
        M.resolve_item(RolloutState(), "4")
    with pytest.raises(ValueError, match="^no item 0:"):
        M.resolve_item(RolloutState(), "0")
    with pytest.raises(ValueError, match="^no item '²' on the preflight checklist"):
        M.resolve_item(RolloutState(), "²")
    with pytest.raises(ValueError, match="^which item\\? the preflight checklist: 1. Indexes"):
        M.resolve_item(RolloutState(), "  ")
    empty = RolloutMachine(replace(make_plan(), preflight_checks=()))
    with pytest.raises(ValueError, match="^the preflight checklist is empty$"):
        empty.resolve_item(RolloutState(), "anything")


# -- rollback ---------------------------------------------------------------------------------


def test_rollback_from_running_starts_the_method() -> None:
    state = ok(running(2), Check(ALICE, "Cost reviewed"), T0).state
    outcome = ok(state, Rollback(BOB, "env", "error rate 1.2%"), T0 + H)
    new = outcome.state
    assert new.status is Status.ROLLING_BACK
    assert new.phase == 2
    assert new.rollback == RollbackRecord("env", T0 + H, BOB, "error rate 1.2%", auto=False)
    assert outcome.actions == (RunRollback("env", False),)
    assert new.history[-1].event == "rollback"
    assert M.traffic(new) == 50


def test_rollback_from_hold_clears_the_hold_reason() -> None:
    held = ok(running(1), Hold(ALICE, "look"), T0).state
    new = ok(held, Rollback(ALICE, "instant"), T0).state
    assert (new.status, new.hold_reason) == (Status.ROLLING_BACK, None)


def test_rollback_from_complete_is_allowed() -> None:
    outcome = ok(complete(), Rollback(ALICE, "revert", "late regression"), T0 + 200 * H)
    assert outcome.state.status is Status.ROLLING_BACK
    assert outcome.actions == (RunRollback("revert", False),)
    assert M.traffic(outcome.state) == 100


def test_rollback_with_an_unknown_method_suggests_one() -> None:
    assert refused(running(1), Rollback(ALICE, "instnt"), T0) == (
        "unknown rollback method 'instnt'; did you mean 'instant'? "
        "methods: instant, env, revert, manual"
    )
    assert refused(running(1), Rollback(ALICE, "zzz"), T0) == (
        "unknown rollback method 'zzz' methods: instant, env, revert, manual"
    )
    bare = RolloutMachine(replace(make_plan(), rollbacks=()))
    outcome = bare.transition(running(1), Rollback(ALICE, "instant"), T0)
    assert outcome.refused == "unknown rollback method 'instant': the plan defines none"


def test_rollback_is_refused_before_start_and_after_it_is_done() -> None:
    assert refused(RolloutState(), Rollback(ALICE, "instant"), T0) == (
        "nothing to roll back: the rollout has not started"
    )
    assert refused(rolled_back(), Rollback(ALICE, "instant"), T0) == (
        "already rolled back (restart for a new attempt)"
    )


def test_a_second_rollback_waits_for_the_first_then_may_follow_a_failure() -> None:
    state = rolling_back("instant")
    assert refused(state, Rollback(ALICE, "env"), T0 + 60) == (
        f"rollback 'instant' is in progress (started by {BOB} at 14:02 UTC); wait for it to finish"
    )
    failed = ok(state, RollbackFinished(BOB, ok=False, detail="verify got 502"), T0 + 90).state
    assert failed.status is Status.ROLLING_BACK
    assert failed.rollback is not None
    assert (failed.rollback.ok, failed.rollback.detail) == (False, "verify got 502")
    assert failed.rollback.finished_at == T0 + 90
    assert failed.history[-1].reason == "instant failed: verify got 502"
    retry = ok(failed, Rollback(ALICE, "env", "instant failed"), T0 + 120)
    assert retry.actions == (RunRollback("env", False),)
    assert retry.state.rollback == RollbackRecord("env", T0 + 120, ALICE, "instant failed")


def test_auto_rollback_records_the_rule_and_asks_for_an_auto_run() -> None:
    outcome = ok(running(1), AutoRollback("cockpit", "instant", "error rate 2.4% > 2% for 5m"), T0)
    assert outcome.actions == (RunRollback("instant", True),)
    assert outcome.state.rollback is not None
    assert outcome.state.rollback.auto is True
    assert outcome.state.history[-1].event == "auto_rollback"
    assert outcome.state.history[-1].reason == "error rate 2.4% > 2% for 5m"
    held = ok(running(1), Hold(ALICE, "x"), T0).state
    assert ok(held, AutoRollback("cockpit", "env", "r"), T0).state.status is Status.ROLLING_BACK
    assert ok(complete(), AutoRollback("cockpit", "env", "r"), T0).actions == (
        RunRollback("env", True),
    )


def test_auto_rollback_refusals() -> None:
    assert refused(running(1), AutoRollback("cockpit", "instant", " "), T0) == (
        "an automatic rollback needs the rule that fired as its reason"
    )
    assert refused(running(1), AutoRollback("cockpit", "nope", "r"), T0).startswith(
        "unknown rollback method 'nope'"
    )
    assert refused(RolloutState(), AutoRollback("cockpit", "instant", "r"), T0).startswith(
        "nothing to roll back"
    )
    assert refused(rolling_back(), AutoRollback("cockpit", "env", "r"), T0).startswith(
        "rollback 'instant' is in progress"
    )
    failed = ok(rolling_back(), RollbackFinished(BOB, ok=False), T0).state
    assert refused(failed, AutoRollback("cockpit", "env", "r"), T0) == (
        "a rollback is under way; after a failure an operator picks the next method"
    )
    assert refused(rolled_back(), AutoRollback("cockpit", "env", "r"), T0).startswith(
        "already rolled back"
    )


def test_rollback_finished_ok_means_rolled_back() -> None:
    outcome = ok(rolling_back("env"), RollbackFinished("cockpit", ok=True, detail="2xx"), T0 + 120)
    new = outcome.state
    assert new.status is Status.ROLLED_BACK
    assert new.rollback == RollbackRecord("env", T0, BOB, "errors", False, T0 + 120, True, "2xx")
    assert outcome.actions == ()
    assert new.history[-1].reason == "env ok: 2xx"
    assert M.traffic(new) == 0


def test_rollback_finished_is_refused_when_nothing_runs() -> None:
    assert refused(running(1), RollbackFinished(ALICE, ok=True), T0) == (
        "no rollback is running (running phase 1)"
    )
    assert refused(rolled_back(), RollbackFinished(ALICE, ok=True), T0) == (
        "no rollback is running (rolled back)"
    )
    failed = ok(rolling_back(), RollbackFinished(BOB, ok=False), T0).state
    assert refused(failed, RollbackFinished(ALICE, ok=True), T0) == (
        "rollback 'instant' already finished: it failed"
    )


# -- restart ----------------------------------------------------------------------------------


def test_restart_after_a_rollback_is_a_fresh_attempt() -> None:
    state = ok(rolled_back(), Check(BOB, "Schedule retry"), T0 + H).state
    state = ok(state, CaptureBaseline(BOB, {"http.p95": 850.0}, 3600.0), T0 + H).state
    new = ok(state, Restart(ALICE, "cache key fixed"), T0 + 30 * H).state
    assert (new.status, new.phase, new.phase_entered_at, new.started_at) == (
        Status.PENDING,
        0,
        None,
        None,
    )
    assert (new.ticks, new.rollback, new.hold_reason) == ({}, None, None)
    assert new.baseline == state.baseline
    assert new.history[:-1] == state.history
    entry = new.history[-1]
    assert (entry.event, entry.from_phase, entry.to_phase, entry.reason) == (
        "restart",
        2,
        0,
        "cache key fixed",
    )
    assert (new.updated_by, new.updated_at) == (ALICE, T0 + 30 * H)
    assert M.traffic(new) == 0
    assert M.blockers(new, T0 + 30 * H)[0] == "check open: Indexes verified"


def test_restart_refusals() -> None:
    assert refused(rolled_back(), Restart(ALICE, ""), T0) == (
        "a restart needs a reason (what changed since the rollback?)"
    )
    assert refused(rolling_back(), Restart(ALICE, "x"), T0) == (
        "cannot restart: rolling back; restart follows a rollback"
    )
    assert refused(running(1), Restart(ALICE, "x"), T0) == (
        "cannot restart: running phase 1; restart follows a rollback"
    )


# -- baseline ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [RolloutState, running, lambda: ok(running(), Hold(ALICE, "x"), T0).state, rolling_back,
     rolled_back, complete],
)  # fmt: skip
def test_capture_baseline_in_every_status(make: object) -> None:
    assert callable(make)
    state = make()
    outcome = ok(state, CaptureBaseline(BOB, {"http.p95": 850.0, "db.qps": 40.0}, 900.0), T0 + 9)
    new = outcome.state
    assert new.baseline == Baseline({"http.p95": 850.0, "db.qps": 40.0}, T0 + 9, 900.0, BOB)
    assert (new.status, new.phase) == (state.status, state.phase)
    assert outcome.actions == ()
    assert new.history[-1].event == "capture_baseline"
    assert new.history[-1].reason == "2 metric(s) over 15m: db.qps, http.p95"


def test_capture_baseline_refusals() -> None:
    state = running(1)
    assert refused(state, CaptureBaseline(BOB, {}, 900.0), T0) == "nothing measured to capture"
    assert refused(state, CaptureBaseline(BOB, {"x": float("nan")}, 900.0), T0) == (
        "cannot capture x: nan is not a number"
    )
    assert refused(state, CaptureBaseline(BOB, {"x": 1.0}, 0.0), T0) == (
        "the baseline window must be positive, not 0.0"
    )


def test_captured_values_are_copied() -> None:
    values = {"http.p95": 850.0}
    new = ok(RolloutState(), CaptureBaseline(BOB, values, 60.0), T0).state
    values["http.p95"] = 1.0
    assert new.baseline is not None
    assert new.baseline.values == {"http.p95": 850.0}


# -- history, operators, traffic, purity ------------------------------------------------------


def test_history_is_bounded() -> None:
    state = running(1)
    for n in range(MAX_HISTORY + 60):
        event = Check(ALICE, "Dashboards green") if n % 2 == 0 else Uncheck(BOB, "Dashboards green")
        state = ok(state, event, T0 + n).state
    assert len(state.history) == MAX_HISTORY == 200
    assert state.history[-1].at == T0 + MAX_HISTORY + 59
    assert state.history[0].at == T0 + 60
    assert [e.event for e in state.history[-2:]] == ["check", "uncheck"]


def test_an_event_without_an_operator_is_refused() -> None:
    assert refused(running(1), Hold(" ", "why"), T0) == "hold: who is acting? no operator given"


def test_refusal_messages_are_one_line_even_with_multiline_input() -> None:
    held = ok(running(1), Hold(ALICE, "line one\nline two"), T0).state
    assert refused(held, Advance(ALICE), T0) == "on hold: line one line two — resume first"


def test_traffic_in_each_status() -> None:
    assert M.traffic(RolloutState()) == 0
    assert [M.traffic(running(n)) for n in (1, 2, 3)] == [10, 50, 100]
    assert M.traffic(ok(running(2), Hold(ALICE, "x"), T0).state) == 50
    assert M.traffic(rolling_back()) == 50
    assert M.traffic(rolled_back()) == 0
    assert M.traffic(complete()) == 100


def test_the_machine_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the machine must not read the clock")

    for name in ("time", "monotonic", "time_ns", "perf_counter"):
        monkeypatch.setattr(time, name, no_clock)
    state = ok(tick_all(RolloutState(), T0), Advance(ALICE), T0).state
    state = ok(state, Check(ALICE, "Dashboards green"), T0 + 1).state
    assert refused(state, Check(BOB, "Dashboards green"), T0 + 2).startswith("already ticked")
    assert M.blockers(state, T0 + 3)[0] == "bake: 47h59m left of 48h"
