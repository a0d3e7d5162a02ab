"""Runs cockpit work in forked children and SIGKILLs each at the moment it is told.

Imports and plan loading happen once, here; each kill then costs a fork, not an interpreter
start, so hundreds fit in a test. Started with the plan's path; reads one command a line:

    kill WORKLOAD DELAY_S SEED

forks a child that loops WORKLOAD (see WORKLOADS) on the plan's state file and audit log,
waits until the child has finished one unit of work, waits DELAY_S more, SIGKILLs it, reaps
it and every orphan it left (this process is a child subreaper, so a command the child was
running when it died is reaped here), then answers `killed WORKLOAD`. Anything else stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cockpit.core.audit import AuditLog
from cockpit.core.config import load_plan
from cockpit.core.control import Cockpit
from cockpit.core.metrics.store import MetricStore
from cockpit.core.operator import Operator
from cockpit.core.plan import Plan
from cockpit.core.rollout_events import Rollback
from cockpit.core.rollout_model import HistoryEntry, RolloutState, Status
from cockpit.core.state import StateStore, Versioned

PR_SET_CHILD_SUBREAPER = 36
DRILL = Operator("drill", "10.0.0.7")

Ready = Callable[[], None]


def churned(current: Versioned, rng: random.Random) -> RolloutState:
    """The next state of a rollout that moves between phases 1 and 2, holding now and then."""
    state, now = current.state, time.time()
    holding = rng.random() < 0.3
    status = Status.HOLDING if holding else Status.RUNNING
    phase = 1 + current.version % 2
    history = state.history[-60:] + (
        HistoryEntry(now, "drill", "advance", state.status, status, state.phase, phase,
                     reason=f"v{current.version + 1} " + "r" * rng.randrange(0, 400)),
    )  # fmt: skip
    return replace(
        state, status=status, phase=phase, phase_entered_at=now, started_at=state.started_at or now,
        hold_reason="drill hold " + "h" * rng.randrange(0, 2000) if holding else None,
        rollback=None, history=history, updated_by="drill", updated_at=now,
    )  # fmt: skip


def state_writes(plan: Plan, ready: Ready, rng: random.Random) -> None:
    store = StateStore(plan.state_path)
    while True:
        store.update(lambda current: churned(current, rng))
        ready()


def audit_writes(plan: Plan, ready: Ready, rng: random.Random) -> None:
    log = AuditLog(plan.audit_path)
    n = 0
    while True:
        n += 1
        # Mostly small lines, now and then one big enough that a kill can tear it.
        size = rng.choice([0, 200, 2_000, 20_000]) if rng.random() > 0.04 else 400_000
        log.append("drill_output", operator=DRILL, phase=n % 3, output="o" * size, n=n)
        ready()


def actions(plan: Plan, ready: Ready, rng: random.Random) -> None:
    """Roll back by a method with commands, over and over, as an operator would."""
    cockpit = Cockpit(plan=plan, operator=DRILL, metrics=MetricStore())
    while True:
        seen = cockpit.load()  # as every cockpit starts: settles a rollback cut short
        if seen.state.status not in (Status.RUNNING, Status.HOLDING):
            # A fresh rollout to roll back again (the drill's own shortcut, not a command).
            cockpit.store.commit(churned(seen, rng), seen.version)
            continue
        applied = cockpit.apply(seen, Rollback(by=str(DRILL), method="revert", reason="drill"))
        ready()
        for action in applied.actions:
            cockpit.run_action(action, confirm_manual=lambda text: True)


WORKLOADS = {"state": state_writes, "audit": audit_writes, "action": actions}


def kill_one(plan: Plan, workload: str, delay_s: float, seed: int) -> str:
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work until killed, never return into the parent's loop
        os.close(readable)
        told = False

        def ready() -> None:
            nonlocal told
            if not told:
                told = True
                os.write(writable, b"r")

        try:
            WORKLOADS[workload](plan, ready, random.Random(seed))
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)
    os.close(writable)
    try:
        if not select.select([readable], [], [], 60)[0] or os.read(readable, 1) != b"r":
            return f"never-ready {workload}"
        time.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
    finally:
        os.close(readable)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        reap_orphans()
    if not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGKILL:
        return f"exited {workload} {status}"
    return f"killed {workload}"


def reap_orphans() -> None:
    """Wait for the commands a killed child left running (short ones: they end on their own)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def main(config: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    plan = load_plan(Path(config), {})
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command != "kill":
            return
        workload, delay, seed = args
        print(kill_one(plan, workload, float(delay), int(seed)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
