"""The demo plan: the bundled `cockpit.toml`, whole, with its durations shortened (see
`timescale`) and pointed at the demo platform.

It is made from the bundled plan's validated model rather than kept as a second file, so it
stays in step with it: every section, rule and checklist is carried over and only what must
change changes. A duration key this module does not know would be written as plain seconds
and refused when the result is validated (as every demo and its tests do), so nothing slips
through unshortened. What changes:

- URLs: APP_URL, REDIS_URL and DATABASE_URL are the platform's. The HTTP probes go as one
  user of the first Phase 3 cohort (a canary), so from phase 1 on they measure the new path
  the phase's latency rules are about. In-process (no Redis/PostgreSQL), the redis and
  postgres sources read the API's exporter pages instead, and their rules drop the units
  those pages cannot carry (`30%` -> `0.3`).
- Actions: `[traffic]` sets the rollout through the API's admin endpoint, so the `flag`
  rollback really takes the demo to 0%; every production command (vercel, git) becomes an
  `echo` that says what it would run; manual steps stay manual.
- `[baseline]` keeps the plan's latencies (the platform's standard path is fitted to them);
  the database's queries per minute are the demo's own: its load plus the probes, each one
  query on the standard path.
- `[notify]` is left out: a demo must not post to a real Slack channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from cockpit.core.config import load_config, load_plan
from cockpit.core.durations import parse_duration
from cockpit.core.plan import Plan
from cockpit.core.rules import parse_rule
from cockpit.demo.exporter import CACHE_FIELDS, DB_FIELDS
from cockpit.demo.timescale import calendar, duration_text, explain, reaction

CANARY_USER = "cockpit-canary"  # its sticky bucket is 2.4: on the new path from 3% on
PLAN_NAME = "cockpit.toml"
HTTP_WINDOW_POLLS = 25  # an HTTP window holds at least this many probes: p95 needs 20
_FOR = re.compile(r"\bfor\s+[0-9a-z.\s]+$")
_KEPT_DURATIONS = ("every", "timeout", "slow_query", "connect_timeout", "statement_timeout")


@dataclass(frozen=True)
class DemoTarget:
    """What the demo plan points at."""

    urls: Mapping[str, str]  # APP_URL; REDIS_URL and DATABASE_URL when real servers run
    load_per_s: float  # the load generator's rate (requests per second)

    @property
    def in_process(self) -> bool:
        return "DATABASE_URL" not in self.urls or "REDIS_URL" not in self.urls


def bundled_plan() -> Path:
    """The repository's cockpit.toml; an installed cockpit has the same plan as its starter."""
    import cockpit

    package = Path(cockpit.__file__).resolve().parent
    for candidate in (package.parents[1] / PLAN_NAME, package / "templates" / "starter.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the bundled {PLAN_NAME} is not beside the cockpit package")


def write_demo_plan(folder: Path, target: DemoTarget, source: Path | None = None) -> Plan:
    """Write `folder/cockpit.toml` and return it validated, as any command would load it."""
    path = folder / PLAN_NAME
    path.write_text(demo_plan_text(source or bundled_plan(), target), encoding="utf-8")
    return load_plan(path, {})


def demo_plan_text(source: Path, target: DemoTarget) -> str:
    header = [
        f"# The demo plan, written by `cockpit demo` from {source}:",
        "# the same plan, pointed at the demo platform, with its durations shortened.",
        *(f"#   {line}" for line in explain()),
        "# Production commands are `echo` stand-ins that say what they would run.",
        "",
    ]
    return "\n".join(header) + tomli_w.dumps(_escape(demo_plan_data(source, target)))


def demo_plan_data(source: Path, target: DemoTarget) -> dict[str, Any]:
    config = load_config(source, dict(target.urls)).config
    data: dict[str, Any] = _clean(config.model_dump(by_alias=True, warnings=False))
    app = target.urls["APP_URL"]
    kinds = {name: spec.kind for name, spec in config.sources.items()}
    replaced = _replaced_sources(kinds, target)

    data["rollout"]["name"] = f"{config.rollout.name} (demo)"
    data["sources"] = {
        name: _source(source_data, app, replaced.get(name))
        for name, source_data in data.get("sources", {}).items()
    }
    data["baseline"] = _baseline(data.get("baseline", {}), kinds, data["sources"], target)

    def rules(texts: list[str]) -> list[str]:
        return [_rule(text, replaced) for text in texts]

    if "preflight" in data:
        data["preflight"]["rules"] = rules(data["preflight"].get("rules", []))
    for phase in data.get("phase", []):
        phase["bake"] = duration_text(calendar(phase.get("bake", 0.0)))
        for kind in ("success", "failure"):
            phase[kind] = rules(phase.get(kind, []))
    data["traffic"] = _traffic(data.get("traffic"), app)
    for method in data.get("rollback", []):
        _rollback(method)
    auto = data.get("auto_rollback")
    if auto is not None:
        auto["when"] = rules(auto["when"])
        for key in ("grace", "unknown_for", "cooldown"):
            auto[key] = duration_text(reaction(auto[key]))
    data.pop("notify", None)
    return data


# -- sources and baseline --------------------------------------------------------------------


def _replaced_sources(kinds: Mapping[str, str], target: DemoTarget) -> dict[str, str]:
    """In-process, which sources read an exporter page instead: name -> page path."""
    if not target.in_process:
        return {}
    pages = {"redis": "/metrics/cache", "postgres": "/metrics/db"}
    return {name: pages[kind] for name, kind in kinds.items() if kind in pages}


def _source(data: dict[str, Any], app: str, page: str | None) -> dict[str, Any]:
    if page is not None:
        fields = CACHE_FIELDS if page.endswith("cache") else DB_FIELDS
        keep: dict[str, Any] = {k: data[k] for k in ("every", "timeout", "window") if k in data}
        data = {"kind": "prometheus", "scrape": app + page, "metrics": dict(fields), **keep}
    for key in _KEPT_DURATIONS:
        if key in data:
            data[key] = duration_text(data[key])
    window = reaction(data["window"])
    if data["kind"] == "http":
        window = max(window, HTTP_WINDOW_POLLS * _every(data))
        data["headers"] = {**data.get("headers", {}), "X-User": CANARY_USER}
    data["window"] = duration_text(window)
    return data


def _every(data: Mapping[str, Any]) -> float:
    return parse_duration(str(data["every"]))


def _baseline(
    values: Mapping[str, Any],
    kinds: Mapping[str, str],
    sources: Mapping[str, Mapping[str, Any]],
    target: DemoTarget,
) -> dict[str, Any]:
    """The plan's baseline, but the database's queries per minute are the demo's own."""
    probes_per_s = sum(1.0 / _every(s) for s in sources.values() if s["kind"] == "http")
    queries_per_min = round((target.load_per_s + probes_per_s) * 60)
    out = dict(values)
    for metric in values:
        source, _, field = metric.partition(".")
        if kinds.get(source) == "postgres" and field == "queries_per_min":
            out[metric] = queries_per_min
    return out


# -- rules -------------------------------------------------------------------------------------


def _rule(text: str, replaced: Mapping[str, str]) -> str:
    """`for 5m` -> `for 20s`; on an exporter page's metric, units become plain numbers."""
    rule = parse_rule(text)
    window = f" for {duration_text(reaction(rule.for_s))}" if rule.for_s else ""
    source = rule.metric.partition(".")[0]
    if source in replaced and rule.unit is not None and not rule.improvement:
        return f"{rule.metric} {rule.op.value} {rule.threshold:g}{window}"
    body = _FOR.sub("", text.strip()).rstrip() if rule.for_s else text.strip()
    return body + window


# -- actions -----------------------------------------------------------------------------------


def stand_in(argv: list[str], stdin: str | None = None) -> list[str]:
    """A production command as an `echo` saying what would run."""
    said = ["echo", "demo stand-in for:", *argv]
    return [*said, f"(stdin: {stdin})"] if stdin is not None else said


def _traffic(data: dict[str, Any] | None, app: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "http": {"method": "POST", "url": f"{app}/admin/rollout", "json": {"percent": "{percent}"}}
    }
    if data is None:
        return out
    if "run" in data:
        out["run"] = stand_in(data["run"], data.get("stdin"))
    if data.get("then"):
        out["then"] = [stand_in(argv) for argv in data["then"]]
    if "verify" in data:
        out["verify"] = data["verify"]
    out["verify_for"] = duration_text(reaction(data["verify_for"]))
    out["timeout"] = duration_text(data["timeout"])
    return out


def _rollback(method: dict[str, Any]) -> None:
    if "eta" in method:
        method["eta"] = duration_text(reaction(method["eta"]))
    method["timeout"] = duration_text(method["timeout"])
    if method.get("run"):
        method["run"] = [stand_in(argv) for argv in method["run"]]
    method["shell"] = False  # the stand-ins are argv lists


# -- TOML ----------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """TOML has no null: unset keys are left out (they take their defaults again)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    return value


def _escape(value: Any) -> Any:
    """Values are already interpolated: a `${` left in one must stay literal on reload."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value
