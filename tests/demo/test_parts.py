"""The demo's parts without servers: flag assignment, L1 cache, fault specs, seed, load mix."""

from __future__ import annotations

import random

import pytest

from cockpit.demo.cache import LruCache
from cockpit.demo.faults import FaultError, FaultState, FaultSwitch, ScheduledFault, parse_fault
from cockpit.demo.flags import Rollout, bucket
from cockpit.demo.load import LoadShape, next_request
from cockpit.demo.seed import generate
from cockpit.demo.servers import Detection, fallback_message


def test_assignment_is_sticky_and_matches_the_percentage() -> None:
    rollout = Rollout(30)
    users = [f"user-{n}" for n in range(2000)]
    first = [rollout.includes(user) for user in users]
    assert first == [rollout.includes(user) for user in users]
    assert 0.25 < sum(first) / len(users) < 0.35
    rollout.set(60)  # raising the percentage only adds users
    assert all(rollout.includes(user) for user, was in zip(users, first, strict=True) if was)
    assert bucket("user-1") == bucket("user-1")


def test_anonymous_requests_are_spread_at_the_percentage() -> None:
    rollout = Rollout(10)
    share = sum(rollout.includes(None) for _ in range(1000)) / 1000
    assert 0.08 < share < 0.12


def test_rollout_refuses_a_percent_out_of_range() -> None:
    with pytest.raises(ValueError, match="0-100"):
        Rollout(101)


def test_lru_expires_after_ttl_refreshes_on_read_and_evicts_the_oldest() -> None:
    now = [0.0]
    cache = LruCache(max_items=2, ttl_s=300, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] = 200
    assert cache.get("a") == 1  # age refreshed at 200
    now[0] = 450
    assert cache.get("a") == 1
    now[0] = 751
    assert cache.get("a") is None
    cache.put("b", 2)
    cache.put("c", 3)
    cache.put("d", 4)
    assert (cache.get("b"), cache.get("c"), cache.get("d"), len(cache)) == (None, 3, 4, 2)


def test_fault_specs_parse_and_bad_ones_say_why() -> None:
    assert parse_fault("errors-at=90s") == ScheduledFault("errors", 90.0)
    assert parse_fault("slow-db-at=1m") == ScheduledFault("slow-db", 60.0)
    assert parse_fault("redis-down-at=120s") == ScheduledFault("redis-down", 120.0)
    for bad in ("errors=90s", "fire-at=10s", "errors-at=soon", "errors-at"):
        with pytest.raises(FaultError, match="bad fault"):
            parse_fault(bad)


def test_fault_switch_turns_each_fault_on_and_off() -> None:
    calls: list[str] = []
    state = FaultState()
    switch = FaultSwitch(state, lambda: calls.append("stop"), lambda: calls.append("start"))
    assert switch.toggle("errors") is True
    assert state.error_fraction == 0.5
    switch.set("slow-db", True)
    switch.set("redis-down", True)
    switch.set("redis-down", True)  # already down: not stopped twice
    assert switch.active() == {"errors", "slow-db", "redis-down"}
    switch.clear()
    assert (state.error_fraction, state.extra_db_delay_s, state.redis_down) == (0, 0, False)
    assert calls == ["stop", "start"]


def test_seed_is_deterministic_with_realistic_rows() -> None:
    farms = generate(3000)
    assert farms == generate(3000)
    assert len({farm.name for farm in farms}) > 100
    assert sum("apples" in farm.products for farm in farms) > 100
    assert farms[0].as_json()["id"] == 1


def test_load_mix_has_lists_details_and_searches_from_many_users() -> None:
    rng = random.Random(1)
    picks = [next_request(rng, LoadShape()) for _ in range(2000)]
    paths = [path for _, path in picks]
    details = sum(path.startswith("/api/farms/") for path in paths)
    searches = sum("search=" in path for path in paths)
    assert 0.35 < details / 2000 < 0.45
    assert 0.1 < searches / 2000 < 0.2
    assert len({user for user, _ in picks}) > 250


def test_fallback_message_names_what_is_missing() -> None:
    detection = Detection(None, None, ("redis-server not found (apt-get install -y redis-server)",))
    assert not detection.real
    message = fallback_message(detection)
    assert "in-process store" in message
    assert "redis-server not found" in message
