"""The newest matching log lines, from the logs source through the metric store to the
snapshot and `status --json`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.metrics.store import MetricStore, SourceStatus
from cockpit.core.plan import Plan, SourceSpec
from cockpit.core.rollout_model import RolloutState
from cockpit.core.snapshot import LogLine, build_snapshot, log_lines, snapshot_to_json
from cockpit.core.sources.logs import RECENT_KEPT, RECENT_TEXT, LineCounter


def make_plan() -> Plan:
    sources = {
        "farms": SourceSpec("farms", "http", 1.0, 5.0),
        "logs": SourceSpec("logs", "logs", 1.0, 5.0, {"command": ["true"]}),
    }
    catalog = Catalog({n: source_fields(s.kind) for n, s in sources.items()})
    return Plan(
        name="Phase 3",
        config_path=Path("cockpit.toml"),
        state_path=Path("state.toml"),
        audit_path=Path("audit.jsonl"),
        sources=sources,
        catalog=catalog,
        phases=(),
    )


def test_the_counter_keeps_the_newest_matching_lines_with_their_time_and_kind() -> None:
    counter = LineCounter("(?i)error", "(?i)warn", 60.0)
    for n in range(50):
        counter.feed(f"ERROR {n}" if n % 2 else f"WARN {n}", 100.0 + n)
        counter.feed("GET /health 200", 100.0 + n)  # not a match: not kept
    assert len(counter.recent) == RECENT_KEPT
    assert counter.recent[-1] == (149.0, "error", "ERROR 49")
    assert counter.recent[0] == (130.0, "warn", "WARN 30")


def test_a_long_line_is_cut_for_the_screen() -> None:
    counter = LineCounter("error", "warn", 60.0)
    counter.feed("error " + "x" * 10_000, 1.0)
    assert len(counter.recent[-1][2]) == RECENT_TEXT
    assert len(counter.lines[-1]) == 10_006  # the full line stays where it was


def test_details_are_a_read_only_copy_kept_until_replaced() -> None:
    store = MetricStore()
    assert store.details("logs") == {}
    given = {"recent": ((1.0, "error", "boom"),)}
    store.set_details("logs", given)
    given["recent"] = ()
    assert store.details("logs") == {"recent": ((1.0, "error", "boom"),)}
    with pytest.raises(TypeError):
        store.details("logs")["recent"] = ()  # type: ignore[index]
    store.set_source("logs", SourceStatus(up=False, error="command exited"))
    assert store.details("logs")["recent"] == ((1.0, "error", "boom"),)


def test_malformed_details_are_left_out() -> None:
    assert log_lines(None) == ()
    assert log_lines("error") == ()
    assert log_lines([(1, "error", "a"), ("x", "error", "b"), (2.0, "warn"), 3]) == (
        LogLine(1.0, "error", "a"),
    )


def test_the_snapshot_and_status_json_carry_the_lines_of_a_logs_source() -> None:
    plan, store, now = make_plan(), MetricStore(), time.time()
    store.set_source("logs", SourceStatus(up=True, last_ok=now, last_poll=now))
    store.set_details("logs", {"recent": ((now - 1, "error", "ERROR db timeout"),)})
    snapshot = build_snapshot(plan, RolloutState(), 0, store, now)
    logs = next(s for s in snapshot.sources if s.name == "logs")
    assert logs.lines == (LogLine(now - 1, "error", "ERROR db timeout"),)
    assert all(s.lines == () for s in snapshot.sources if s.name != "logs")
    doc = snapshot_to_json(snapshot)
    assert doc["sources"]["logs"]["lines"] == [
        {"t": now - 1, "kind": "error", "text": "ERROR db timeout"}
    ]
    assert "lines" not in doc["sources"]["farms"]  # only logs sources have lines
