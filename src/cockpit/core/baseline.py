"""Capturing a baseline: the median of each baseline metric over a measured window."""

from __future__ import annotations

import statistics

from cockpit.core.metrics.store import MetricStore
from cockpit.core.plan import Plan


def baseline_metrics(plan: Plan) -> list[str]:
    """Metrics a baseline is needed for: those configured, and every improvement() subject."""
    names = set(plan.baseline)
    rules = list(plan.preflight_rules)
    for phase in plan.phases:
        rules += [*phase.success, *phase.failure]
    if plan.auto_rollback is not None:
        rules += plan.auto_rollback.when
    names.update(rule.metric for rule in rules if rule.improvement)
    return sorted(names)


def capture_values(plan: Plan, store: MetricStore, since: float, now: float) -> dict[str, float]:
    """Median of the known values of each baseline metric seen in [since, now].

    The median, not the mean, so one slow probe in the window does not move the baseline.
    Metrics with no known value in the window are left out (never captured as zero).
    """
    values = {}
    for name in baseline_metrics(plan):
        known = [p.value for p in store.points(name, since) if p.value is not None and p.t <= now]
        if known:
            values[name] = statistics.median(known)
    return values
