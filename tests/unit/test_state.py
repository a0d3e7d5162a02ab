"""The state file: TOML round trip, strict parsing, compare-and-swap, locking, atomic writes."""

from __future__ import annotations

import os
import pickle
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cockpit.core import atomic
from cockpit.core import state as state_module
from cockpit.core.atomic import atomic_write, exclusive_lock, temp_files
from cockpit.core.rollout_model import (
    Baseline,
    HistoryEntry,
    RollbackRecord,
    RolloutState,
    Status,
    Tick,
)
from cockpit.core.state import (
    StateChanged,
    StateError,
    StateStore,
    Versioned,
    dump_state,
    parse_state,
)

T0 = 1_746_108_123.123456  # 2025-05-01T14:02:03.123456Z


def rich_state() -> RolloutState:
    return RolloutState(
        status=Status.HOLDING,
        phase=2,
        phase_entered_at=T0,
        started_at=T0 - 86_400.5,
        hold_reason="cache hit rate 41% < 50% — waiting for warm-up",
        ticks={
            "preflight": {
                "Staging verification completed": Tick(by="alice", at=T0 - 90_000.25),
                "Rollback procedures tested": Tick(by="bob@10.0.0.5", at=T0 - 89_000.0),
            },
            "phase-1": {"No critical errors in logs": Tick(by="alice", at=T0 - 3_600.0)},
            "phase-2": {},
        },
        baseline=Baseline(
            values={"farms.p95": 0.8, "db.queries_per_min": 500.0, "search.p95": 0.9},
            captured_at=T0 - 100_000.0,
            window_s=900.0,
            by="carol",
        ),
        rollback=RollbackRecord(
            method="flag",
            started_at=T0 - 50.0,
            by="dave",
            reason='error rate "2.4%" > 2%',
            auto=True,
            finished_at=T0 - 10.0,
            ok=False,
            detail="step 2 failed: exit 1",
        ),
        history=(
            HistoryEntry(T0 - 86_400.5, "alice", "advance", Status.PENDING, Status.RUNNING, 0, 1),
            HistoryEntry(
                T0 - 10.0, "bob", "advance", Status.RUNNING, Status.RUNNING, 1, 2, "bake", True
            ),
            HistoryEntry(T0, "carol", "hold", Status.RUNNING, Status.HOLDING, 2, 2, "low hits"),
        ),
        updated_by="carol",
        updated_at=T0,
    )


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# --- dump / parse ---------------------------------------------------------------------


def test_rich_state_round_trips_exactly() -> None:
    state = rich_state()
    assert parse_state(dump_state(state, 42)) == Versioned(state, 42)


def test_dump_is_readable_toml_with_tables_and_utc_times() -> None:
    text = dump_state(rich_state(), 3)
    doc = tomllib.loads(text)
    assert doc["schema"] == 1
    assert doc["version"] == 3
    assert doc["status"] == "holding"
    assert "updated_at = 2025-05-01T14:02:03.123456Z" in text
    for header in ("[baseline]", "[rollback]", "[[history]]", '[ticks.preflight."Staging'):
        assert header in text
    assert text.count("[[history]]") == 3
    assert "ok = false" in text


def test_none_values_are_left_out() -> None:
    doc = tomllib.loads(dump_state(RolloutState(), 0))
    assert set(doc) == {"schema", "version", "status", "phase", "updated_by"}
    running = RollbackRecord(method="flag", started_at=T0, by="a", reason="r")
    rb = tomllib.loads(dump_state(RolloutState(rollback=running), 1))["rollback"]
    assert "finished_at" not in rb
    assert "ok" not in rb


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**6))
def test_microsecond_times_round_trip_exactly(micros: int) -> None:
    epoch = micros / 1e6
    state = RolloutState(updated_at=epoch, phase_entered_at=epoch)
    back = parse_state(dump_state(state, 1)).state
    assert back.updated_at == epoch
    assert back.phase_entered_at == epoch


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_any_time_survives_within_a_microsecond(epoch: float) -> None:
    back = parse_state(dump_state(RolloutState(started_at=epoch), 1)).state
    assert back.started_at is not None
    assert abs(back.started_at - epoch) <= 1e-6


def test_dump_refuses_an_unstorable_time() -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        dump_state(RolloutState(updated_at=1e300), 1)


def test_an_offset_other_than_utc_is_read_correctly() -> None:
    text = 'version = 1\nstatus = "running"\nphase = 1\nupdated_at = 2025-05-01T16:02:03+02:00\n'
    assert parse_state(text).state.updated_at == 1_746_108_123.0


GOOD = 'version = 1\nstatus = "running"\nphase = 1\n'
HISTORY = (
    "[[history]]\nat = 2025-05-01T14:02:03Z\nby = 'a'\nevent = 'advance'\n"
    "from_status = 'pending'\nto_status = 'running'\nfrom_phase = 0\nto_phase = 1\n"
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("status = [[[", "not valid TOML"),
        ('status = "running"\n', "version: missing"),
        ('version = "7"\nstatus = "running"\n', "version: expected a whole number >= 0, got"),
        ('version = 1\nstatus = "runing"\n', "status: unknown status 'runing' (did you mean"),
        ('version = 1\nstatus = "zzz"\n', "(one of pending, running, holding"),
        (GOOD.replace("phase = 1", "phase = true"), "phase: expected a whole number >= 0"),
        (GOOD.replace("phase = 1", "phase = -1"), "phase: expected a whole number >= 0"),
        (GOOD + "updated_at = 2025-05-01T14:02:03\n", "updated_at: needs a UTC offset"),
        (GOOD + "updated_at = 2025-05-01\n", "updated_at: expected a date-time"),
        (GOOD + "phaze = 2\n", "phaze: unknown key"),
        (GOOD + "history = 3\n", "history: expected an array of tables"),
        (GOOD + HISTORY.replace("to_status = 'running'", "to_status = 'up'"), "history[0]."),
        (GOOD + HISTORY.replace("by = 'a'\n", ""), "history[0].by: missing"),
        (GOOD + HISTORY + "color = 'red'\n", "history[0].color: unknown key"),
        (GOOD + "[ticks]\npreflight = 3\n", "ticks.preflight: expected a table"),
        (GOOD + '[ticks.preflight."Item one"]\nby = "a"\n', 'ticks.preflight."Item one".at'),
        (GOOD + "[baseline.values]\n'farms.p95' = 'fast'\n", 'baseline.values."farms.p95"'),
        (GOOD + "[rollback]\nmethod = 'flag'\nby = 'a'\n", "rollback.started_at: missing"),
        ("schema = 2\n" + GOOD, "schema 2 is not schema 1"),
    ],
)
def test_bad_content_is_one_line_naming_path_and_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "state.toml"
    path.write_text(content)
    with pytest.raises(StateError) as caught:
        StateStore(path).load()
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_binary_garbage_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StateError, match="not UTF-8"):
        StateStore(path).load()


def test_unreadable_path_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    path.mkdir()
    with pytest.raises(StateError, match="cannot read"):
        StateStore(path).load()


# --- the store ------------------------------------------------------------------------


def test_missing_file_is_the_initial_state_at_version_0(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "nowhere" / "state.toml")
    assert store.load() == Versioned(RolloutState(), 0)
    assert store.signature() is None


def test_commit_increments_the_version(tmp_path: Path) -> None:
    store = StateStore(tmp_path / ".cockpit" / "state.toml")
    first = store.commit(RolloutState(status=Status.RUNNING, phase=1), expected_version=0)
    assert first.version == 1
    second = store.commit(rich_state(), expected_version=1)
    assert second == Versioned(rich_state(), 2)
    assert store.load() == second


def by_alice(status: Status, phase: int) -> RolloutState:
    """A consistent state in `status` (holds have reasons, rollbacks have records)."""
    hold = "p99 spike" if status is Status.HOLDING else None
    rollback = None
    if status in (Status.ROLLING_BACK, Status.ROLLED_BACK):
        done = status is Status.ROLLED_BACK
        rollback = RollbackRecord("flag", T0, "alice", "", ok=True if done else None)
    return RolloutState(
        status=status,
        phase=phase,
        hold_reason=hold,
        rollback=rollback,
        updated_by="alice",
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("current", "message"),
    [
        (by_alice(Status.RUNNING, 2), "state changed: now in phase 2 (by alice at 14:02 UTC)"),
        (by_alice(Status.PENDING, 0), "state changed: now pending (by alice at 14:02 UTC)"),
        (
            by_alice(Status.HOLDING, 3),
            "state changed: now holding in phase 3 (by alice at 14:02 UTC)",
        ),
        (
            by_alice(Status.ROLLING_BACK, 2),
            "state changed: now rolling back (by alice at 14:02 UTC)",
        ),
        (by_alice(Status.ROLLED_BACK, 2), "state changed: now rolled back (by alice at 14:02 UTC)"),
        (by_alice(Status.COMPLETE, 3), "state changed: now complete (by alice at 14:02 UTC)"),
        (RolloutState(status=Status.RUNNING, phase=1), "state changed: now in phase 1"),
        (RolloutState(updated_by="bob"), "state changed: now pending (by bob)"),
    ],
)
def test_stale_commit_raises_state_changed_with_what_happened(
    tmp_path: Path, current: RolloutState, message: str
) -> None:
    store = StateStore(tmp_path / "state.toml")
    store.commit(RolloutState(), expected_version=0)
    store.commit(current, expected_version=1)
    before = (tmp_path / "state.toml").read_bytes()
    with pytest.raises(StateChanged) as caught:
        store.commit(RolloutState(status=Status.RUNNING, phase=1), expected_version=1)
    assert str(caught.value) == message
    assert caught.value.current == Versioned(current, 2)
    assert (tmp_path / "state.toml").read_bytes() == before


def test_state_changed_survives_pickling_across_processes() -> None:
    error = StateChanged(Versioned(by_alice(Status.RUNNING, 2), 5))
    copy = pickle.loads(pickle.dumps(error))
    assert copy.current == error.current
    assert str(copy) == str(error)


def test_update_writes_what_fn_returns_and_none_writes_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.toml")
    seen: list[Versioned] = []

    def nothing(current: Versioned) -> RolloutState | None:
        seen.append(current)
        return None

    assert store.update(nothing) is None
    assert not store.path.exists()
    assert seen == [Versioned(RolloutState(), 0)]

    def advance(current: Versioned) -> RolloutState:
        return replace(current.state, status=Status.RUNNING, phase=current.state.phase + 1)

    assert store.update(advance) == Versioned(RolloutState(status=Status.RUNNING, phase=1), 1)
    assert store.update(advance) == Versioned(RolloutState(status=Status.RUNNING, phase=2), 2)
    assert store.load().version == 2


def test_commit_refuses_to_overwrite_a_file_it_cannot_understand(tmp_path: Path) -> None:
    path = tmp_path / "state.toml"
    path.write_text("version = 1\nstatus = 'confused'\n")
    with pytest.raises(StateError, match="unknown status"):
        StateStore(path).commit(RolloutState(), expected_version=1)
    assert path.read_text() == "version = 1\nstatus = 'confused'\n"


def test_lock_held_elsewhere_times_out_with_the_holder_named(tmp_path: Path) -> None:
    holder = StateStore(tmp_path / "state.toml")
    other = StateStore(tmp_path / "state.toml", lock_timeout=0)
    with holder.lock(), pytest.raises(StateError) as caught:
        other.commit(RolloutState(), expected_version=0)
    message = str(caught.value)
    assert message.startswith("state is locked by another cockpit (pid ")
    assert f"pid {os.getpid()} " in message
    assert str(tmp_path / "state.toml.lock") in message
    assert not holder.path.exists()


def test_lock_is_reentrant_within_one_store(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.toml", lock_timeout=0)
    with store.lock():
        loaded = store.load()
        running = RolloutState(status=Status.RUNNING, phase=1)
        assert store.commit(running, loaded.version).version == 1
    # released afterwards: another store can take it at once
    assert StateStore(store.path, lock_timeout=0).commit(RolloutState(), 1).version == 2


def test_signature_changes_with_every_commit(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.toml")
    store.commit(RolloutState(), 0)
    first = store.signature()
    store.commit(RolloutState(), 1)  # same bytes but for the version, maybe same mtime tick
    assert first is not None
    assert store.signature() not in (None, first)


def test_commit_clears_temps_left_by_a_killed_writer(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.toml")
    stale = tmp_path / ".state.toml.k1ll3d.tmp"
    stale.write_text("half a stat")
    unrelated = tmp_path / ".other.toml.abc.tmp"
    unrelated.write_text("not ours")
    store.commit(RolloutState(), 0)
    assert temp_files(store.path) == []
    assert unrelated.exists()


def test_files_are_group_writable_and_the_folder_setgid(tmp_path: Path, umask_022: None) -> None:
    store = StateStore(tmp_path / "shared" / ".cockpit" / "state.toml")
    store.commit(RolloutState(), 0)
    for path in (store.path, store.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    for folder in (store.path.parent, store.path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o2755  # umask 022 applied, setgid kept


# --- atomic_write ---------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_atomic_write_failing_rename_removes_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # os.replace(file, directory) fails, even for root
    with pytest.raises(IsADirectoryError):
        atomic_write(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_atomic_write_failing_fsync_removes_its_temp_and_keeps_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.txt"
    atomic_write(target, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_write_failure_is_a_one_line_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state_module, "atomic_write", disk_full)
    store = StateStore(tmp_path / "state.toml")
    with pytest.raises(StateError) as caught:
        store.commit(RolloutState(), 0)
    assert str(caught.value) == f"{store.path}: cannot write: No space left on device"


def test_exclusive_lock_timeout_zero_fails_fast(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock, timeout=1), pytest.raises(atomic.LockTimeout) as caught:  # noqa: SIM117
        with exclusive_lock(lock, timeout=0, what="thing"):
            pass
    assert str(caught.value).startswith("thing is locked by another cockpit (pid ")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('status = "pending"\nphase = 2\n', "pending but phase is 2"),
        ('status = "running"\nphase = 0\n', "running but phase is 0"),
        ('status = "holding"\nphase = 1\n', "holding but there is no hold_reason"),
        ('status = "rolled_back"\nphase = 1\n', "rolled_back but there is no [rollback]"),
    ],
)
def test_impossible_states_are_refused(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "state.toml"
    path.write_text(f"schema = 1\nversion = 3\n{body}")
    with pytest.raises(StateError) as caught:
        StateStore(path).load()
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)
