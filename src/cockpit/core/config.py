"""`cockpit.toml` -> `Plan`: find the file, read it, fill `${VAR}`s, validate, resolve.

Every problem is one `ConfigError` whose text names the file, the line and the key path,
e.g. `cockpit.toml:42: phase[2].success[1]: unknown metric 'http.p59' (did you mean 'http.p95'?)`.
Array indices in key paths are 1-based, as people count phases.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.config_locate import KeyPath, locate
from cockpit.core.config_models import (
    CockpitConfig,
    HttpAction,
    NotifySection,
    PrometheusSource,
    RollbackSection,
    describe,
    did_you_mean,
)
from cockpit.core.interpolate import InterpolationError, interpolate
from cockpit.core.plan import (
    AutoRollback,
    HttpRequest,
    Notify,
    Phase,
    Plan,
    RollbackMethod,
    SourceSpec,
    TrafficAction,
)
from cockpit.core.quantities import parse_quantity
from cockpit.core.rule_types import Rule, RuleError
from cockpit.core.rules import check_rule, parse_rule

DEFAULT_NAME = "cockpit.toml"
ENV_VAR = "COCKPIT_CONFIG"
# A plan is written by hand: one past this is the wrong file (a log, a dump), and reading it
# whole would only be slow. The bundled plan is about 10 KiB.
MAX_BYTES = 1024 * 1024
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$")
# Durations in source settings are handed on in seconds, under the key plus "_s".
_SETTING_DURATIONS = ("window", "slow_query", "connect_timeout", "statement_timeout")


class ConfigError(Exception):
    """One line for a person: `{file}:{line}: {key}: {message}`, unknown parts left out."""

    def __init__(
        self, file: str, message: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        parts = [part for part in (where, self.key, self.message) if part]
        # One line, whatever a quoted value contained.
        return ": ".join(parts).replace("\r", "\\r").replace("\n", "\\n")


class ConfigNotFound(ConfigError):
    """No config where we looked; says where that was and what to do."""


def find_config(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """The config to use: `-c PATH`, else `$COCKPIT_CONFIG`, else `./cockpit.toml`."""
    for named, given_by in ((explicit, "-c"), (environ.get(ENV_VAR), f"${ENV_VAR}")):
        if named:
            try:
                path = Path(named).expanduser()
            except RuntimeError:  # ~user with no such user, or no home folder
                raise ConfigNotFound(
                    named,
                    f"cannot find the home folder of {named.split('/')[0]!r} (named by {given_by})",
                ) from None
            if not path.exists():
                raise ConfigNotFound(named, f"{_missing(path)} (named by {given_by})")
            return path
    path = Path(DEFAULT_NAME)
    if path.exists():
        return path
    raise ConfigNotFound(
        "",
        f"no {DEFAULT_NAME} found (looked at -c, ${ENV_VAR}, ./{DEFAULT_NAME}): "
        f"run `cockpit init` to write one, or `cockpit demo` to try it",
    )


@dataclass(frozen=True)
class LoadedConfig:
    """The validated file as written (every key) and the plan it means."""

    config: CockpitConfig
    plan: Plan


def load_plan(path: Path, environ: Mapping[str, str] | None = None) -> Plan:
    """Read, validate and resolve a config file. Raises ConfigError (and nothing else)."""
    return load_config(path, environ).plan


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """`load_plan`, keeping the validated model too (for keys the Plan does not carry yet)."""
    file = str(path)
    text = _read(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(file, text, err) from None
    try:
        data, secrets = interpolate(raw, os.environ if environ is None else environ)
    except InterpolationError as err:
        raise _at(file, text, err.path, err.message) from None
    try:
        config = CockpitConfig.model_validate(data)
    except ValidationError as err:
        raise _first_error(file, text, err) from None
    return LoadedConfig(config, _Builder(path, text, config, secrets).plan())


def _missing(path: Path) -> str:
    """Why a path that does not exist does not: a dangling or looping link says so."""
    if not path.is_symlink():
        return "no such file"
    try:
        target = os.readlink(path)
    except OSError:
        return "no such file"
    return f"no such file: a symbolic link to {target!r} that leads nowhere (or in a loop)"


def _read(path: Path) -> str:
    file = str(path)
    try:
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise ConfigError(file, f"cannot read: {kind}, not a config file")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # never more: the file may be huge, or growing
    except FileNotFoundError:
        raise ConfigNotFound(file, _missing(path)) from None
    except PermissionError:
        raise ConfigError(file, "cannot read: permission denied") from None
    except OSError as err:
        raise ConfigError(file, f"cannot read: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        size = f"{MAX_BYTES // (1024 * 1024)} MiB"
        raise ConfigError(file, f"cannot read: larger than {size}: not a plan (a log or a dump?)")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # Windows editors write one; TOML wants none
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        bad = data[err.start : err.start + 1].hex()
        raise ConfigError(file, f"not UTF-8 text (byte 0x{bad})", line=line) from None


def _syntax_error(file: str, text: str, err: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(err)
    found = _TOML_WHERE.search(message)
    line: int | None = None
    if found:
        message = message[: found.start()]
        line = int(found.group(1)) if found.group(1) else text.count("\n") + 1
    return ConfigError(file, f"syntax error: {message}", line=line)


def key_text(path: Sequence[str | int]) -> str:
    """`("phase", 1, "success", 0)` -> `phase[2].success[1]` (1-based, as people count).

    Keys that TOML would quote are quoted: `baseline."farms.p95"`.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            shown = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += ("." if out else "") + shown
    return out


def _at(file: str, text: str, path: KeyPath, message: str) -> ConfigError:
    return ConfigError(file, message, line=locate(text, path), key=key_text(path) or None)


def _first_error(file: str, text: str, err: ValidationError) -> ConfigError:
    """The error nearest the top of the file (pydantic's own order breaks ties)."""
    found = [describe(detail) for detail in err.errors()]
    placed = [(locate(text, path), n, path, message) for n, (path, message) in enumerate(found)]
    line, _, path, message = min(placed, key=lambda p: (p[0] is None, p[0] or 0, p[1]))
    return ConfigError(file, message, line=line, key=key_text(path) or None)


class _Builder:
    """Turns the validated model into a Plan, checking what needs the whole file."""

    def __init__(
        self, path: Path, text: str, config: CockpitConfig, secrets: frozenset[str]
    ) -> None:
        self.path = path
        self.text = text
        self.config = config
        self.secrets = secrets
        self.catalog = Catalog(
            {
                name: source_fields(source.kind, _extra_fields(source))
                for name, source in config.sources.items()
            }
        )

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return _at(str(self.path), self.text, path, message)

    def plan(self) -> Plan:
        config = self.config
        folder = self.path.absolute().parent
        rollbacks = self.rollbacks()
        state_path = folder / self.expanded(("rollout", "state"), config.rollout.state)
        audit_path = folder / self.expanded(("rollout", "audit"), config.rollout.audit)
        self.check_paths(state_path, audit_path)
        return Plan(
            name=config.rollout.name,
            config_path=self.path.absolute(),
            state_path=state_path,
            audit_path=audit_path,
            sources={name: _source_spec(name, src) for name, src in config.sources.items()},
            catalog=self.catalog,
            phases=self.phases(),
            preflight_checks=tuple(config.preflight.checks),
            preflight_rules=self.rules(("preflight", "rules"), config.preflight.rules),
            after_rollback_checks=tuple(config.after_rollback.checks),
            rollbacks=rollbacks,
            traffic=self.traffic(),
            auto_rollback=self.auto_rollback(rollbacks),
            notify=_notify(config.notify) if config.notify is not None else None,
            baseline=self.baseline(),
            theme=config.rollout.theme,
            keymap=dict(config.keymap),
            secrets=self.secrets,
        )

    def expanded(self, key: KeyPath, text: str) -> Path:
        try:
            return Path(text).expanduser()
        except RuntimeError:  # ~user with no such user, or no home folder
            raise self.error(key, f"cannot find the home folder in {text!r}") from None

    def resolved(self, key: KeyPath, path: Path) -> Path:
        try:
            return path.resolve()
        except (RuntimeError, OSError) as err:  # a symbolic link loop, say
            raise self.error(key, f"cannot follow {str(path)!r}: {err}") from None

    def check_paths(self, state_path: Path, audit_path: Path) -> None:
        """The state file and the journal must not overwrite the plan or each other."""
        config = self.path.absolute().resolve()
        state = self.resolved(("rollout", "state"), state_path)
        audit = self.resolved(("rollout", "audit"), audit_path)
        if state == config:
            raise self.error(("rollout", "state"), "the state file cannot be this config file")
        if audit == config:
            raise self.error(("rollout", "audit"), "the audit log cannot be this config file")
        if audit == state:
            raise self.error(("rollout", "audit"), "the audit log cannot be the state file")

    def rules(self, path: KeyPath, texts: Sequence[str]) -> tuple[Rule, ...]:
        rules = []
        for number, text in enumerate(texts):
            try:
                rule = parse_rule(text)
                check_rule(rule, self.catalog)
            except RuleError as err:
                raise self.error(path + (number,), str(err)) from None
            rules.append(rule)
        return tuple(rules)

    def phases(self) -> tuple[Phase, ...]:
        phases: list[Phase] = []
        for number, section in enumerate(self.config.phase):
            here: KeyPath = ("phase", number)
            for earlier, other in enumerate(phases):
                if other.name == section.name:
                    raise self.error(
                        here + ("name",),
                        f"duplicate phase name {section.name!r} (also phase[{earlier + 1}])",
                    )
            if phases and section.traffic <= phases[-1].traffic:
                raise self.error(
                    here + ("traffic",),
                    f"traffic must increase from phase to phase: {section.traffic}% is not "
                    f"more than phase[{number}]'s {phases[-1].traffic}%",
                )
            phases.append(
                Phase(
                    name=section.name,
                    traffic=section.traffic,
                    bake_s=section.bake,
                    success=self.rules(here + ("success",), section.success),
                    failure=self.rules(here + ("failure",), section.failure),
                    checks=tuple(section.checks),
                )
            )
        return tuple(phases)

    def rollbacks(self) -> tuple[RollbackMethod, ...]:
        methods: list[RollbackMethod] = []
        for number, section in enumerate(self.config.rollback):
            here: KeyPath = ("rollback", number)
            for earlier, other in enumerate(methods):
                if other.name == section.name:
                    raise self.error(
                        here + ("name",),
                        f"duplicate rollback name {section.name!r} (also rollback[{earlier + 1}])",
                    )
            if section.traffic is not None and self.config.traffic is None:
                raise self.error(
                    here + ("traffic",),
                    "setting traffic needs a [traffic] section that says how to set it",
                )
            methods.append(_rollback_method(section))
        return tuple(methods)

    def traffic(self) -> TrafficAction | None:
        section = self.config.traffic
        if section is None:
            return None
        return TrafficAction(
            run=tuple(section.run) if section.run is not None else None,
            http=_http_request(section.http) if section.http is not None else None,
            stdin=section.stdin,
            then=tuple(tuple(argv) for argv in section.then),
            verify=section.verify,
            verify_for_s=section.verify_for,
            timeout_s=section.timeout,
            shell=section.shell,
        )

    def auto_rollback(self, methods: Sequence[RollbackMethod]) -> AutoRollback | None:
        section = self.config.auto_rollback
        if section is None:
            return None
        names = [method.name for method in methods]
        if section.method not in names:
            known = f" (methods: {', '.join(names)})" if names else ""
            hint = did_you_mean(section.method, names) or known
            raise self.error(
                ("auto_rollback", "method"), f"no [[rollback]] named {section.method!r}{hint}"
            )
        return AutoRollback(
            when=self.rules(("auto_rollback", "when"), section.when),
            method=section.method,
            grace_s=section.grace,
            on_unknown=section.on_unknown,
            unknown_for_s=section.unknown_for,
            cooldown_s=section.cooldown,
        )

    def baseline(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for metric, written in self.config.baseline.items():
            unit = self.catalog.unit(metric)
            if unit is None:
                hint = self.catalog.suggest(metric)
                suffix = f" (did you mean {hint!r}?)" if hint else ""
                raise self.error(("baseline", metric), f"unknown metric {metric!r}{suffix}")
            try:
                values[metric] = parse_quantity(written, unit, metric)
            except RuleError as err:
                raise self.error(("baseline", metric), str(err)) from None
        return values


def _extra_fields(source: Any) -> list[str]:
    if isinstance(source, PrometheusSource):
        return [*source.metrics, *source.queries]
    return []


def _source_spec(name: str, source: Any) -> SourceSpec:
    settings: dict[str, object] = {}
    for key, value in source.model_dump(exclude={"kind", "every", "timeout"}).items():
        if key in _SETTING_DURATIONS:
            settings[f"{key}_s"] = value
        else:
            settings[key] = tuple(value) if isinstance(value, list) else value
    return SourceSpec(
        name=name,
        kind=source.kind,
        every_s=source.every,
        timeout_s=source.timeout,
        settings=settings,
    )


def _rollback_method(section: RollbackSection) -> RollbackMethod:
    return RollbackMethod(
        name=section.name,
        title=section.title or section.name,
        eta_s=section.eta,
        when=section.when,
        run=tuple(tuple(argv) for argv in section.run),
        traffic=section.traffic,
        manual=section.manual,
        verify=section.verify,
        timeout_s=section.timeout,
        shell=section.shell,
    )


def _http_request(section: HttpAction) -> HttpRequest:
    return HttpRequest(
        url=str(section.url),
        method=section.method,
        headers=dict(section.headers),
        json=section.body,
    )


def _notify(section: NotifySection) -> Notify:
    return Notify(
        slack=str(section.slack) if section.slack else None,
        webhook=str(section.webhook) if section.webhook else None,
        summary_every_s=section.summary_every,
    )
