"""The audit log: fields, time, operator, hash chain, torn lines, odd values; and the operator."""

from __future__ import annotations

import enum
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cockpit.core import audit as audit_module
from cockpit.core.atomic import exclusive_lock
from cockpit.core.audit import AuditError, AuditLog
from cockpit.core.operator import Operator, current_operator
from cockpit.core.rollout_model import RolloutState, Status

T0 = 1_746_108_123.4567  # 2025-05-01T14:02:03.456Z


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now - 1.0


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / ".cockpit" / "audit.jsonl", clock=FakeClock())


def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        log.append("advance", operator="alice", phase=n, reason=f"step {n}")


def raw_lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().split(b"\n")[:-1]


def write_lines(log: AuditLog, lines: list[bytes]) -> None:
    log.path.write_bytes(b"".join(line + b"\n" for line in lines))


# --- append / read --------------------------------------------------------------------


def test_append_writes_every_field_and_read_returns_it(log: AuditLog) -> None:
    gates = [{"phase": 1, "rule": "http.error_rate <= 0.1%", "verdict": "pass"}]
    written = log.append(
        "advance",
        operator=Operator("alice", "10.0.0.5"),
        phase=1,
        before={"status": "pending", "phase": 0},
        after={"status": "running", "phase": 1},
        reason="bake done",
        gates=gates,
        forced=False,
        step="start",
    )
    assert log.read() == [written]
    assert written == {
        "time": "2025-05-01T14:02:03.456Z",
        "operator": "alice",
        "address": "10.0.0.5",
        "event": "advance",
        "phase": 1,
        "before": {"status": "pending", "phase": 0},
        "after": {"status": "running", "phase": 1},
        "reason": "bake done",
        "gates": gates,
        "forced": False,
        "step": "start",
        "prev": "",
    }
    assert list(written)[0] == "time"
    assert list(written)[-1] == "prev"


def test_plain_string_operator_has_no_address(log: AuditLog) -> None:
    entry = log.append("hold", operator="bob", reason="why not")
    assert (entry["operator"], entry["address"], entry["phase"], entry["gates"]) == (
        "bob",
        None,
        None,
        None,
    )


def test_each_line_carries_the_hash_of_the_line_before(log: AuditLog) -> None:
    fill(log, 3)
    lines = raw_lines(log)
    entries = log.read()
    assert entries[0]["prev"] == ""
    assert entries[1]["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert entries[2]["prev"] == hashlib.sha256(lines[1]).hexdigest()
    assert [e["time"] for e in entries] == [
        "2025-05-01T14:02:03.456Z",
        "2025-05-01T14:02:04.456Z",
        "2025-05-01T14:02:05.456Z",
    ]


def test_one_json_object_per_line_and_durable(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(audit_module.os, "fdatasync", counting)
    fill(log, 4)
    assert len(synced) == 4
    text = log.path.read_text()
    assert text.endswith("\n")
    assert [json.loads(line)["phase"] for line in text.splitlines()] == [0, 1, 2, 3]


def test_missing_log_reads_empty_and_verifies(log: AuditLog) -> None:
    assert log.read() == []
    assert log.verify() is None


def test_files_are_created_group_writable(log: AuditLog) -> None:
    old = os.umask(0o022)
    try:
        fill(log, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o664
    assert stat.S_IMODE(log.lock_path.stat().st_mode) == 0o664
    assert log.path.parent.stat().st_mode & stat.S_ISGID


def test_reserved_field_names_are_refused(log: AuditLog) -> None:
    with pytest.raises(TypeError, match="prev"):
        log.append("x", operator="a", prev="forged")
    assert not log.path.exists()


def test_a_held_lock_times_out_as_an_audit_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", lock_timeout=0)
    with exclusive_lock(log.lock_path, timeout=1), pytest.raises(AuditError) as caught:
        log.append("advance", operator="alice")
    assert str(caught.value).startswith("audit log is locked by another cockpit (pid ")


# --- chain verification ---------------------------------------------------------------


def test_intact_chain_verifies(log: AuditLog) -> None:
    fill(log, 6)
    assert log.verify() is None


def test_altered_line_is_named(log: AuditLog) -> None:
    fill(log, 6)
    lines = raw_lines(log)
    lines[2] = lines[2].replace(b"step 2", b"step 9")
    write_lines(log, lines)
    assert log.read()[2]["reason"] == "step 9"  # still readable, but no longer trusted
    assert log.verify() == (
        "line 3 was altered or a line after it was removed (line 4 does not follow it)"
    )


def test_removed_line_is_detected(log: AuditLog) -> None:
    fill(log, 6)
    lines = raw_lines(log)
    del lines[3]
    write_lines(log, lines)
    assert log.verify() == (
        "line 3 was altered or a line after it was removed (line 4 does not follow it)"
    )


def test_removed_first_line_is_detected(log: AuditLog) -> None:
    fill(log, 3)
    write_lines(log, raw_lines(log)[1:])
    assert log.verify() == "line 1 was altered or lines before it were removed"


def test_corrupt_middle_line_names_its_number(log: AuditLog) -> None:
    fill(log, 4)
    lines = raw_lines(log)
    lines[1] = b'{"time": "2025-05-01T14:02:04.456Z", "oper'
    write_lines(log, lines)
    with pytest.raises(AuditError) as caught:
        log.read()
    assert str(caught.value).startswith(f"{log.path}:2: not valid JSON")
    verdict = log.verify()
    assert verdict is not None
    assert verdict.startswith("line 2 is damaged (not valid JSON")


def test_a_line_that_is_not_an_object_is_corrupt(log: AuditLog) -> None:
    fill(log, 2)
    write_lines(log, [b"[1, 2]", *raw_lines(log)])
    with pytest.raises(AuditError, match=r":1: not a JSON object"):
        log.read()


# --- torn lines -----------------------------------------------------------------------


def test_torn_last_line_is_skipped_then_repaired_by_the_next_append(log: AuditLog) -> None:
    fill(log, 3)
    torn = b'{"time":"2025-05-01T14:02:06.456Z","operator":"alice","eve'
    with open(log.path, "ab") as f:
        f.write(torn)
    assert [e["reason"] for e in log.read()] == ["step 0", "step 1", "step 2"]
    assert log.torn_tail == len(torn)
    assert log.verify() is None

    log.append("resume", operator="bob")
    entries = log.read()
    assert log.torn_tail == 0
    assert [e["event"] for e in entries] == ["advance"] * 3 + ["audit_repaired", "resume"]
    assert entries[3]["reason"] == f"removed {len(torn)} bytes of a line torn by a crash"
    assert entries[3]["operator"] == "bob"
    assert log.verify() is None


def test_torn_only_line_of_a_new_log_is_repaired(log: AuditLog) -> None:
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b'{"time":')
    assert log.read() == []
    assert log.torn_tail == 8
    log.append("advance", operator="alice")
    assert [e["event"] for e in log.read()] == ["audit_repaired", "advance"]
    assert log.read()[0]["prev"] == ""
    assert log.verify() is None


def test_long_lines_chain_correctly(log: AuditLog) -> None:
    # longer than the 64 KiB chunk the tail is read backwards in
    for size in (10, 200_000, 70_000, 5):
        log.append("action_output", operator="alice", output="x" * size)
    assert [len(e["output"]) for e in log.read()] == [10, 200_000, 70_000, 5]
    assert log.verify() is None


# --- odd values -----------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Point:
    x: int
    where: Path


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_odd_values_are_serialised_never_crash(log: AuditLog) -> None:
    looped: list[object] = []
    looped.append(looped)
    entry = log.append(
        "odd",
        operator="alice",
        before={"state": RolloutState(status=Status.RUNNING, phase=1)},
        after={Colour.RED: Point(1, Path("/tmp/x")), 3: {1, 2}},
        reason="odd",
        enum_value=Status.HOLDING,
        path=Path("/etc/cockpit.toml"),
        numbers=(1.5, float("nan"), float("inf")),
        when=datetime(2025, 5, 1, 14, 2, tzinfo=UTC),
        raw=b"\xffbytes",
        frozen=frozenset({"b", "a"}),
        weird=Unprintable(),
        looped=looped,
        surrogate="file-\udcff",
    )
    back = log.read()[0]
    assert back == entry
    assert back["before"]["state"]["status"] == "running"
    assert back["before"]["state"]["history"] == []
    assert back["after"] == {"red": {"x": 1, "where": "/tmp/x"}, "3": [1, 2]}
    assert back["enum_value"] == "holding"
    assert back["path"] == "/etc/cockpit.toml"
    assert back["numbers"] == [1.5, "nan", "inf"]
    assert back["when"] == "2025-05-01T14:02:00+00:00"
    assert back["raw"] == "\ufffdbytes"
    assert back["frozen"] == ["a", "b"]
    assert back["weird"] == "<unprintable Unprintable>"
    assert "<too deep>" in json.dumps(back["looped"])
    assert back["surrogate"] == "file-\udcff"
    assert log.verify() is None


# --- operator -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"USER": "alice", "SSH_CLIENT": "10.0.0.5 52311 22"}, Operator("alice", "10.0.0.5")),
        ({"USER": "alice"}, Operator("alice", None)),
        ({"LOGNAME": "bob", "SSH_CLIENT": ""}, Operator("bob", None)),
        ({"USER": " ", "LOGNAME": "bob"}, Operator("bob", None)),
    ],
)
def test_current_operator_from_environment(environ: dict[str, str], expected: Operator) -> None:
    assert current_operator(environ) == expected


def test_current_operator_falls_back_to_the_password_database() -> None:
    import pwd

    assert current_operator({}).user == pwd.getpwuid(os.getuid()).pw_name


def test_current_operator_without_a_passwd_entry_uses_the_uid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cockpit.core import operator as operator_module

    def missing(uid: int) -> object:
        raise KeyError(uid)

    monkeypatch.setattr(operator_module.pwd, "getpwuid", missing)
    assert current_operator({}).user == f"uid:{os.getuid()}"


def test_operator_prints_user_and_address() -> None:
    assert str(Operator("alice")) == "alice"
    assert str(Operator("alice", "10.0.0.5")) == "alice@10.0.0.5"


@pytest.fixture(autouse=True)
def _no_leaked_descriptors() -> Iterator[None]:
    before = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) <= before
