"""The executable plan: what `cockpit.toml` means once validated (phases, rules, checklists).

Built by `config.load_plan`; read by the rollout machine, the gates and the engine. Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.core.catalog import Catalog
from cockpit.core.rule_types import Rule


@dataclass(frozen=True)
class Phase:
    name: str
    traffic: int  # percent of production traffic on the new path
    bake_s: float  # minimum time in the phase before advancing
    success: tuple[Rule, ...] = ()
    failure: tuple[Rule, ...] = ()
    checks: tuple[str, ...] = ()  # manual items a person ticks


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP action: the body is any TOML value, sent as JSON."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    json: object = None


@dataclass(frozen=True)
class RollbackMethod:
    name: str
    title: str
    eta_s: float | None
    when: str
    run: tuple[tuple[str, ...], ...] = ()  # argv lists, in order
    traffic: int | None = None  # set traffic to this percent via [traffic]
    manual: str | None = None  # a step the operator confirms by hand
    verify: str | None = None  # URL that must answer 2xx afterwards
    timeout_s: float = 300.0  # per step
    shell: bool = False  # each run entry is one string for /bin/sh -c


@dataclass(frozen=True)
class TrafficAction:
    run: tuple[str, ...] | None = None  # argv; placeholders like {percent} filled at run time
    http: HttpRequest | None = None
    stdin: str | None = None
    then: tuple[tuple[str, ...], ...] = ()
    verify: str | None = None
    verify_for_s: float = 60.0
    timeout_s: float = 300.0
    shell: bool = False  # run and each then are one string for /bin/sh -c


@dataclass(frozen=True)
class AutoRollback:
    when: tuple[Rule, ...]
    method: str
    grace_s: float = 30.0
    on_unknown: str = "hold"  # hold | page | rollback
    unknown_for_s: float = 300.0
    cooldown_s: float = 600.0


@dataclass(frozen=True)
class Notify:
    slack: str | None = None  # Slack incoming-webhook URL
    webhook: str | None = None  # generic JSON POST
    summary_every_s: float = 4 * 3600.0


@dataclass(frozen=True)
class SourceSpec:
    """What the engine needs to know of a source; the full settings stay in `settings`."""

    name: str
    kind: str
    every_s: float
    timeout_s: float
    settings: Mapping[str, object] = field(default_factory=dict)

    @property
    def stale_after_s(self) -> float:
        """Data older than three intervals is stale and never reaches a gate."""
        return 3 * self.every_s


@dataclass(frozen=True)
class Plan:
    name: str
    config_path: Path
    state_path: Path
    audit_path: Path
    sources: Mapping[str, SourceSpec]
    catalog: Catalog
    phases: tuple[Phase, ...]
    preflight_checks: tuple[str, ...] = ()
    preflight_rules: tuple[Rule, ...] = ()
    after_rollback_checks: tuple[str, ...] = ()
    rollbacks: tuple[RollbackMethod, ...] = ()
    traffic: TrafficAction | None = None
    auto_rollback: AutoRollback | None = None
    notify: Notify | None = None
    baseline: Mapping[str, float] = field(default_factory=dict)  # configured, base units
    theme: str = "dark"
    keymap: Mapping[str, str] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()  # values to mask in every output

    def rollback(self, name: str) -> RollbackMethod | None:
        return next((m for m in self.rollbacks if m.name == name), None)

    def phase(self, number: int) -> Phase | None:
        """Phase by 1-based number, as people count them."""
        return self.phases[number - 1] if 1 <= number <= len(self.phases) else None
