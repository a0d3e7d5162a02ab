"""Operator commands applied for real: CAS on the state file, audit lines, actions, settling."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cockpit.core.atomic import exclusive_lock
from cockpit.core.audit import AuditError, AuditLog
from cockpit.core.catalog import Catalog
from cockpit.core.control import Cockpit, Refused
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import Operator
from cockpit.core.plan import HttpRequest, Phase, Plan, RollbackMethod, TrafficAction
from cockpit.core.rollout_events import Advance, Hold, Rollback, RunRollback, SetTraffic
from cockpit.core.rollout_model import Status
from cockpit.core.state import StateChanged

ALICE = Operator("alice", "10.0.0.5")
SECRET = "hunter2-token"


def make_cockpit(tmp_path: Path, *, traffic_exit: int = 0) -> Cockpit:
    record = tmp_path / "calls.txt"
    (tmp_path / "cockpit.toml").write_text(
        "# the plan is built in code; actions need it to exist\n"
    )
    script = (
        "import sys; "
        f"log = open({str(record)!r}, 'a'); "
        "log.write(' '.join(sys.argv[1:]) + '|' + sys.stdin.read() + '\\n'); "
        f"print('deploying with {SECRET}'); sys.exit({traffic_exit})"
    )
    plan = Plan(
        name="t",
        config_path=tmp_path / "cockpit.toml",
        state_path=tmp_path / "state" / "state.toml",
        audit_path=tmp_path / "state" / "audit.jsonl",
        sources={},
        catalog=Catalog({}),
        phases=(Phase("Shadow", 10, 0.0), Phase("Full", 100, 0.0)),
        rollbacks=(
            RollbackMethod("flag", "Flag", 120.0, "app ok", traffic=0),
            RollbackMethod("disable", "Manual", None, "last resort", manual="edit farm.service.ts"),
        ),
        traffic=TrafficAction(
            run=(sys.executable, "-c", script, "set", "{percent}"), stdin="{phase}"
        ),
        secrets=frozenset({SECRET}),
    )
    clock = iter(float(t) for t in range(1_800_000_000, 1_800_001_000))
    return Cockpit(plan=plan, operator=ALICE, metrics=MetricStore(), clock=lambda: next(clock))


def test_apply_commits_and_audits(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    seen = cockpit.store.load()
    applied = cockpit.apply(seen, Advance(by=str(ALICE), force=True, reason="go"))
    assert applied.after.version == seen.version + 1
    assert applied.after.state.status is Status.RUNNING
    assert applied.actions == (SetTraffic(10, 1),)
    assert cockpit.store.load().state.phase == 1
    [entry] = cockpit.audit.read()
    assert entry["event"] == "advance"
    assert entry["operator"] == "alice"
    assert entry["address"] == "10.0.0.5"
    assert entry["before"] == {"status": "pending", "phase": 0, "traffic": 0, "version": 0}
    assert entry["after"] == {"status": "running", "phase": 1, "traffic": 10, "version": 1}
    assert entry["force"] is True


def test_refused_event_changes_nothing(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    with pytest.raises(Refused):
        cockpit.apply(cockpit.store.load(), Hold(by="alice", reason="not running yet"))
    assert cockpit.store.load().version == 0
    assert cockpit.audit.read() == []


def test_stale_version_loses_the_race(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    seen = cockpit.store.load()
    cockpit.apply(seen, Advance(by="bob", force=True, reason="first"))
    with pytest.raises(StateChanged, match=r"state changed: now in phase 1 \(by bob at"):
        cockpit.apply(seen, Advance(by="alice", force=True, reason="second"))
    assert [e["event"] for e in cockpit.audit.read()] == ["advance"]


def test_traffic_action_runs_with_placeholders_and_audits_masked(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    applied = cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    [result] = cockpit.run_action(applied.actions[0], confirm_manual=lambda text: False)
    assert result.ok
    assert (tmp_path / "calls.txt").read_text() == "set 10|1\n"
    events = cockpit.audit.read()
    assert [e["event"] for e in events] == ["advance", "action.start", "action.end"]
    assert events[2]["ok"] is True
    assert SECRET not in (tmp_path / "state" / "audit.jsonl").read_text()
    assert "deploying with ****" in events[2]["output"]


def test_failed_traffic_change_holds_the_rollout(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path, traffic_exit=4)
    applied = cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    [result] = cockpit.run_action(applied.actions[0], confirm_manual=lambda text: False)
    assert not result.ok
    state = cockpit.store.load().state
    assert state.status is Status.HOLDING
    assert state.hold_reason is not None
    assert "traffic change to 10% failed" in state.hold_reason
    assert "exited with status 4" in state.hold_reason


def test_rollback_that_succeeds_ends_rolled_back(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    applied = cockpit.apply(cockpit.store.load(), Rollback(by="alice", method="flag"))
    results = cockpit.run_action(applied.actions[0], confirm_manual=lambda text: False)
    assert [r.ok for r in results] == [True]
    assert (tmp_path / "calls.txt").read_text().splitlines()[-1] == "set 0|1"
    state = cockpit.store.load().state
    assert state.status is Status.ROLLED_BACK
    assert state.rollback is not None
    assert state.rollback.ok is True


def test_manual_step_not_confirmed_leaves_the_rollback_failed(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    applied = cockpit.apply(cockpit.store.load(), Rollback(by="alice", method="disable"))
    asked: list[str] = []
    cockpit.run_action(applied.actions[0], confirm_manual=lambda text: asked.append(text) or False)
    assert asked == ["edit farm.service.ts"]
    state = cockpit.store.load().state
    assert state.status is Status.ROLLING_BACK
    assert state.rollback is not None
    assert state.rollback.ok is False
    assert "manual step not confirmed" in state.rollback.detail
    # The operator can now pick another method.
    again = cockpit.apply(cockpit.store.load(), Rollback(by="alice", method="flag"))
    assert again.after.state.rollback is not None
    assert again.after.state.rollback.method == "flag"


def test_interrupt_mid_rollback_is_recorded_not_left_running(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    applied = cockpit.apply(cockpit.store.load(), Rollback(by="alice", method="disable"))

    def ctrl_c(text: str) -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cockpit.run_action(applied.actions[0], confirm_manual=ctrl_c)
    state = cockpit.store.load().state
    assert state.rollback is not None
    assert state.rollback.ok is False
    assert "interrupted by the operator" in state.rollback.detail
    ends = [e for e in cockpit.audit.read() if e["event"] == "action.end"]
    assert ends[-1]["error"] == "interrupted by the operator"


def test_unwritable_audit_changes_nothing(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit folder should be")
    cockpit.audit = AuditLog(blocker / "audit.jsonl")
    with pytest.raises(AuditError):
        cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    assert cockpit.store.load().version == 0


def test_rollback_whose_runner_died_is_marked_interrupted(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    cockpit.apply(cockpit.store.load(), Rollback(by="alice", method="flag"))
    running = replace(cockpit, operator=Operator("bob", None)).load().state.rollback
    assert running is not None
    assert running.ok is None  # `apply` holds the actions lock for its runner: leave it alone
    cockpit.claim_timeout_s = 0.0  # ... but that runner never came for it
    settled = cockpit.load().state  # nobody runs it any more: it was cut short
    assert settled.status is Status.ROLLING_BACK
    assert settled.rollback is not None
    assert settled.rollback.ok is False
    assert settled.rollback.detail.startswith("interrupted")
    again = cockpit.apply(cockpit.load(), Rollback(by="alice", method="disable"))
    assert again.actions == (RunRollback("disable", False),)


def test_a_rollback_about_to_run_is_not_taken_for_an_interrupted_one(tmp_path: Path) -> None:
    """Between the commit that starts a rollback and its runner, another cockpit watching the
    same state must not settle it as interrupted (it once did, and the runner then crashed
    on a rollback 'already finished')."""
    alice = make_cockpit(tmp_path)
    alice.apply(alice.store.load(), Advance(by="alice", force=True, reason="go"))
    applied = alice.apply(alice.store.load(), Rollback(by="alice", method="flag"))
    bob = replace(alice, operator=Operator("bob", None))  # a second cockpit, same files
    watching = bob.load().state
    assert watching.status is Status.ROLLING_BACK
    assert watching.rollback is not None
    assert watching.rollback.ok is None  # still alice's, running
    assert not bob.interrupted(bob.store.load())
    results = alice.run_action(applied.actions[0], confirm_manual=lambda text: False)
    assert [r.ok for r in results] == [True]
    state = alice.store.load().state
    assert state.status is Status.ROLLED_BACK
    assert state.rollback is not None
    assert state.rollback.ok is True
    # the lock is free again: a later action takes it at once
    with exclusive_lock(alice.plan.state_path.with_name("state.toml.actions.lock"), timeout=0):
        pass


def test_http_traffic_action_sends_the_filled_request(tmp_path: Path) -> None:
    received: list[tuple[str, bytes]] = []

    class Flags(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flags)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cockpit = make_cockpit(tmp_path)
        url = f"http://127.0.0.1:{server.server_address[1]}/flags/phase-{{phase}}"
        request = HttpRequest(url=url, method="PUT", json={"percent": "{percent}"})
        plan = cockpit.plan
        cockpit.plan = replace(plan, traffic=TrafficAction(http=request))
        applied = cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
        [result] = cockpit.run_action(applied.actions[0], confirm_manual=lambda text: False)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok
    assert received == [("/flags/phase-1", b'{"percent":"10"}')]


def test_untrusted_config_refuses_actions_before_the_state_moves(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    tmp_path.chmod(0o777)  # anyone could replace the plan and its commands
    try:
        with pytest.raises(Refused, match="refusing to run actions"):
            cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
        assert cockpit.store.load().version == 0
    finally:
        tmp_path.chmod(0o755)
    applied = cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    assert applied.after.version == 1  # trusted again: it acts


def test_command_output_streams_masked_as_it_runs(tmp_path: Path) -> None:
    cockpit = make_cockpit(tmp_path)
    lines: list[str] = []
    cockpit.on_output = lines.append
    applied = cockpit.apply(cockpit.store.load(), Advance(by="alice", force=True, reason="go"))
    cockpit.run_action(applied.actions[0], confirm_manual=lambda text: False)
    assert len(lines) == 1
    assert lines[0].endswith("deploying with ****")
    assert SECRET not in lines[0]
