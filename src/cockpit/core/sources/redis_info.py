"""Redis INFO, turned into the redis source's fields: parsing, windowed deltas, resets. Pure.

Counters in INFO only ever grow, until the server restarts (new `run_id`, `uptime_in_seconds`
drops) or someone runs CONFIG RESETSTAT (counters drop to 0, run_id and uptime stay). Either
way a delta across the reset is meaningless, so the window restarts from the new sample and
the delta-based fields are None with the reason until the next poll.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from cockpit.core.sources.base import Reading

HITS = "keyspace_hits"
MISSES = "keyspace_misses"
COMMANDS = "total_commands_processed"
EVICTED = "evicted_keys"
# Not reported, only watched: RESETSTAT zeroes them too, so a reset that more traffic has
# already hidden in the four counters above (hits back above their old value) still shows.
_RESET_WITNESSES = ("total_connections_received", "total_net_input_bytes")
COUNTERS = (HITS, MISSES, COMMANDS, EVICTED, *_RESET_WITNESSES)

# Each poll sends INFO and PING; INFO counts every command before itself, so from one INFO to
# the next the server counted exactly our previous INFO and PING. Subtracted from ops_per_sec
# so an idle server reads 0 (commands sent when a connection opens are not: they are rare).
OWN_COMMANDS_PER_POLL = 2

FIRST_SAMPLE = "first sample"
COUNTER_RESET = "counter reset (restart or CONFIG RESETSTAT)"
NO_READS = "no reads in the window"
NO_MEMORY_LIMIT = "maxmemory is 0 (no limit)"


def parse_info(text: str) -> dict[str, str]:
    """`key:value` lines of an INFO reply; section headers, blanks and odd lines are skipped."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            info[key] = value
    return info


# Fields every INFO from Redis (or a server that speaks for it: Valkey, KeyDB, Upstash) has.
_ANY_OF = ("redis_version", "used_memory", "connected_clients", COMMANDS, "uptime_in_seconds")


def not_info(text: str, info: Mapping[str, str]) -> str | None:
    """Why an INFO answer is not one (a server on the wrong port answering `+OK`), or None."""
    if any(key in info for key in _ANY_OF):
        return None
    shown = text.strip()[:60]
    return f"INFO answer is not Redis INFO: {shown!r}" if shown else "INFO answer is empty"


def number(info: Mapping[str, str], key: str) -> float | None:
    """A numeric INFO value, or None when missing or not a (finite) number."""
    try:
        value = float(info[key])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None  # "nan", "1e400": not a count


@dataclass(frozen=True)
class Sample:
    """What one INFO says about the counters, taken at `t` (clock seconds)."""

    t: float
    run_id: str | None
    uptime_s: float | None
    counters: Mapping[str, int]

    @classmethod
    def from_info(cls, t: float, info: Mapping[str, str]) -> Sample:
        counters = {}
        for key in COUNTERS:
            value = number(info, key)
            if value is not None:
                counters[key] = int(value)
        return cls(t, info.get("run_id") or None, number(info, "uptime_in_seconds"), counters)


def reset_between(before: Sample, after: Sample) -> bool:
    """Did the server restart or reset its stats between two consecutive samples?"""
    if before.run_id and after.run_id and before.run_id != after.run_id:
        return True
    if (
        before.uptime_s is not None
        and after.uptime_s is not None
        and after.uptime_s < before.uptime_s
    ):
        return True
    return any(
        after.counters[key] < value
        for key, value in before.counters.items()
        if key in after.counters
    )


@dataclass(frozen=True)
class Delta:
    """Counter changes from the window's baseline sample to now."""

    span_s: float
    counts: Mapping[str, int]  # only counters present in both samples
    polls: int  # polls from the baseline to now (each sent OWN_COMMANDS_PER_POLL commands)


@dataclass(frozen=True)
class NoDelta:
    reason: str


class CounterWindow:
    """Samples of the last `window_s` seconds; deltas from the oldest one in the window to now.

    When polls are further apart than the window, the previous sample is the baseline as long
    as it is no older than `max_span_s` (so `every > window` still yields values); an older
    one (a long outage) restarts the window instead of averaging over the gap.
    """

    def __init__(self, window_s: float, max_span_s: float | None = None) -> None:
        self.window_s = window_s
        self.max_span_s = max(window_s, max_span_s or window_s)
        self._samples: deque[tuple[int, Sample]] = deque()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, sample: Sample) -> Delta | NoDelta:
        self._seq += 1
        previous = self._samples[-1][1] if self._samples else None
        if previous is None:
            return self._restart(sample, FIRST_SAMPLE)
        if sample.t <= previous.t:
            return self._restart(sample, "clock went backwards; window restarted")
        if reset_between(previous, sample):
            return self._restart(sample, COUNTER_RESET)
        age = sample.t - previous.t
        if age > self.max_span_s:
            return self._restart(
                sample, f"previous sample is {age:.0f} s old (window {self.window_s:g} s)"
            )
        self._samples.append((self._seq, sample))
        cutoff = sample.t - self.window_s
        # Keep one sample besides the new one, even when it is older than the window.
        while len(self._samples) > 2 and self._samples[0][1].t < cutoff:
            self._samples.popleft()
        base_seq, base = self._samples[0]
        counts = {
            key: sample.counters[key] - value
            for key, value in base.counters.items()
            if key in sample.counters
        }
        return Delta(sample.t - base.t, counts, self._seq - base_seq)

    def _restart(self, sample: Sample, reason: str) -> NoDelta:
        self._samples.clear()
        self._samples.append((self._seq, sample))
        return NoDelta(reason)


def missing(key: str) -> str:
    return f"INFO has no {key}"


class _Fields:
    """Values with the reason beside every None."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}
        self.reasons: dict[str, str] = {}

    def put(self, name: str, value: float | None, reason: str) -> None:
        self.values[name] = value
        if value is None:
            self.reasons[name] = reason


def redis_reading(info: Mapping[str, str], delta: Delta | NoDelta, latency_ms: float) -> Reading:
    """The redis source's fields (catalog.KIND_FIELDS["redis"]) from one INFO and its delta."""
    fields = _Fields()
    fields.put("up", 1.0, "")
    fields.put("latency_ms", latency_ms, "")
    used = number(info, "used_memory")
    limit = number(info, "maxmemory")
    fields.put("memory_bytes", used, missing("used_memory"))
    if used is None or limit is None:
        fields.put("memory_used", None, missing("used_memory" if used is None else "maxmemory"))
    else:
        fields.put("memory_used", used / limit if limit > 0 else None, NO_MEMORY_LIMIT)
    fields.put("clients", number(info, "connected_clients"), missing("connected_clients"))

    details: dict[str, object] = {}
    if isinstance(delta, NoDelta):
        for name in ("hit_rate", "ops_per_sec", "evicted_per_min"):
            fields.put(name, None, delta.reason)
    else:
        _delta_fields(delta, fields)
        details.update(window_s=round(delta.span_s, 3))
        details.update(hits=delta.counts.get(HITS), misses=delta.counts.get(MISSES))
    if "redis_version" in info:
        details["version"] = info["redis_version"]
    return Reading(fields.values, fields.reasons, details)


def _delta_fields(delta: Delta, fields: _Fields) -> None:
    counts = delta.counts
    if HITS not in counts or MISSES not in counts:
        fields.put("hit_rate", None, missing(HITS if HITS not in counts else MISSES))
    else:
        reads = counts[HITS] + counts[MISSES]
        fields.put("hit_rate", counts[HITS] / reads if reads else None, NO_READS)
    if COMMANDS not in counts:
        fields.put("ops_per_sec", None, missing(COMMANDS))
    else:
        others = max(0, counts[COMMANDS] - OWN_COMMANDS_PER_POLL * delta.polls)
        fields.put("ops_per_sec", others / delta.span_s, "")
    if EVICTED not in counts:
        fields.put("evicted_per_min", None, missing(EVICTED))
    else:
        fields.put("evicted_per_min", counts[EVICTED] / delta.span_s * 60.0, "")
