"""Automatic rollback decisions: arm, count down, fire once; cancel and cooldown; UNKNOWN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cockpit.core.autopilot import Arm, AutoPilot, Blind, Disarm, Fire
from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.gates import GateKind, GateResult
from cockpit.core.plan import AutoRollback, Phase, Plan, RollbackMethod
from cockpit.core.rollout import RolloutMachine
from cockpit.core.rollout_events import CancelAuto
from cockpit.core.rollout_model import RolloutState, Status
from cockpit.core.rules import parse_rule
from cockpit.core.state import dump_state, parse_state
from cockpit.core.verdict import Verdict

ERRORS = "http.error_rate > 2% for 5m"
P95 = "http.p95 > 2s for 10m"
RUNNING = RolloutState(status=Status.RUNNING, phase=1, phase_entered_at=0.0)


def plan(on_unknown: str = "hold") -> Plan:
    return Plan(
        name="t",
        config_path=Path("c"),
        state_path=Path("s"),
        audit_path=Path("a"),
        sources={},
        catalog=Catalog({"farms": source_fields("http")}),
        phases=(Phase("one", 10, 0.0),),
        rollbacks=(RollbackMethod("flag", "Flag", 120.0, "ok", traffic=0),),
        auto_rollback=AutoRollback(
            when=(parse_rule(ERRORS), parse_rule(P95)),
            method="flag",
            grace_s=30.0,
            on_unknown=on_unknown,
            unknown_for_s=300.0,
            cooldown_s=600.0,
        ),
    )


def gates(errors: Verdict, p95: Verdict = Verdict.PASS) -> list[GateResult]:
    return [
        GateResult(
            1, GateKind.AUTO_ROLLBACK, parse_rule(ERRORS), errors, 0.024, "2.4%", "2.4% > 2% for 5m"
        ),
        GateResult(1, GateKind.AUTO_ROLLBACK, parse_rule(P95), p95, None, None, "stale 14s"),
    ]


def test_arms_counts_down_and_fires_once() -> None:
    pilot = AutoPilot(plan())
    [arm] = pilot.step(RUNNING, gates(Verdict.FAIL), 100.0)
    assert isinstance(arm, Arm)
    assert arm.armed.rule == ERRORS
    assert arm.armed.fire_at == 130.0
    assert arm.armed.left_s(110.0) == 20.0
    assert pilot.step(RUNNING, gates(Verdict.FAIL), 129.0) == []
    [fire] = pilot.step(RUNNING, gates(Verdict.FAIL), 130.0)
    assert fire == Fire("flag", f"automatic: {ERRORS}: 2.4% > 2% for 5m")
    rolling = replace(RUNNING, status=Status.ROLLING_BACK)
    assert pilot.step(rolling, gates(Verdict.FAIL), 131.0) == []  # never twice


def test_disarms_when_the_trigger_clears() -> None:
    pilot = AutoPilot(plan())
    pilot.step(RUNNING, gates(Verdict.FAIL), 100.0)
    assert pilot.step(RUNNING, gates(Verdict.PASS), 110.0) == [Disarm(ERRORS, "trigger cleared")]
    assert pilot.armed is None


def test_unknown_never_arms_nor_fires() -> None:
    pilot = AutoPilot(plan())
    for now in range(0, 299, 10):
        assert pilot.step(RUNNING, gates(Verdict.UNKNOWN, Verdict.UNKNOWN), float(now)) == []
    pilot.step(RUNNING, gates(Verdict.FAIL), 400.0)
    assert pilot.armed is not None
    # A trigger that goes UNKNOWN during the countdown disarms: missing data is not failure.
    # It says so: "unknown", never "cleared" (nothing says the errors stopped).
    [disarm] = pilot.step(RUNNING, gates(Verdict.UNKNOWN), 410.0)
    assert disarm.rule == ERRORS
    assert disarm.why.startswith("trigger unknown: ")


def test_unknown_for_too_long_does_what_on_unknown_says_once() -> None:
    for action in ("hold", "page", "rollback"):
        pilot = AutoPilot(plan(on_unknown=action))
        assert pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 0.0) == []
        assert pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 299.0) == []
        [blind] = pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 300.0)
        assert blind == Blind(action, P95, f"monitoring blind: {P95} unknown for 5m (stale 14s)")
        assert pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 900.0) == []
        # Known again, then blind again: a new episode acts again.
        pilot.step(RUNNING, gates(Verdict.PASS, Verdict.PASS), 901.0)
        pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 902.0)
        assert len(pilot.step(RUNNING, gates(Verdict.PASS, Verdict.UNKNOWN), 1202.0)) == 1


def test_cancel_disarms_and_holds_for_the_cooldown() -> None:
    machine = RolloutMachine(plan())
    pilot = AutoPilot(plan())
    pilot.step(RUNNING, gates(Verdict.FAIL), 100.0)
    outcome = machine.transition(RUNNING, CancelAuto("alice", (ERRORS,), "load test", 700.0), 105.0)
    assert outcome.refused is None
    cancelled = outcome.state
    [disarm] = pilot.step(cancelled, gates(Verdict.FAIL), 106.0)
    assert disarm == Disarm(ERRORS, "cancelled by alice: load test")
    assert pilot.step(cancelled, gates(Verdict.FAIL), 699.0) == []  # cannot re-arm yet
    [arm] = pilot.step(cancelled, gates(Verdict.FAIL), 700.0)  # cooldown over
    assert isinstance(arm, Arm)


def test_cancel_needs_a_reason_and_a_known_trigger_and_survives_the_state_file() -> None:
    machine = RolloutMachine(plan())
    assert machine.transition(RUNNING, CancelAuto("al", (ERRORS,), " ", 700.0), 1.0).refused
    refused = machine.transition(RUNNING, CancelAuto("al", ("nope > 1",), "x", 700.0), 1.0)
    assert refused.refused == "no such automatic trigger: nope > 1"
    state = machine.transition(RUNNING, CancelAuto("al", (ERRORS,), "x", 700.0), 1.0).state
    assert state.history[-1].event == "cancel_auto"
    assert parse_state(dump_state(state, 4)).state == state


def test_nothing_to_watch_before_start_or_after_rollback() -> None:
    pilot = AutoPilot(plan())
    assert pilot.step(RolloutState(), gates(Verdict.FAIL), 0.0) == []
    pilot.step(RUNNING, gates(Verdict.FAIL), 0.0)
    done = replace(RUNNING, status=Status.ROLLED_BACK)
    assert pilot.step(done, gates(Verdict.FAIL), 1.0) == [Disarm(ERRORS, "rollout is rolled_back")]
