"""The shape of `cockpit.toml`: strict pydantic models, one per table.

Everything here is structural: types, defaults, allowed values, keys that belong together.
What needs the whole file (metric names, rule text, cross-references) is checked in `config`.
Durations are written as strings ("30s", "48h") and held in seconds; unknown keys are refused
with a did-you-mean. `describe` turns pydantic's errors into a key path and a plain message.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator, PlainValidator
from pydantic_core import ErrorDetails, PydanticCustomError

from cockpit.core.catalog import RESERVED_SOURCE_NAMES, SOURCE_KINDS
from cockpit.core.config_locate import KeyPath
from cockpit.core.durations import DurationError, parse_duration
from cockpit.core.keys import KEY_IDS, KEYS

NAME = re.compile(r"[a-z][a-z0-9_-]*")
FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
THEMES = ("dark", "light", "high-contrast", "mono")
ON_UNKNOWN = ("hold", "page", "rollback")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fail(message: str, at: KeyPath = ()) -> PydanticCustomError:
    """An error with our own wording; `at` points below the value being validated."""
    return PydanticCustomError("cockpit", message, {"at": at})


# -- value types -----------------------------------------------------------------------------


def _duration(value: object) -> float:
    if not isinstance(value, str):
        raise fail("expected a duration like 30s, 5m, 48h")
    try:
        return parse_duration(value)
    except DurationError as err:
        raise fail(str(err)) from None


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise fail("must be more than 0s")
    return seconds


def _whole(low: int, high: int, what: str = "a whole number") -> PlainValidator:
    def check(value: object) -> int:
        if type(value) is not int or not low <= value <= high:
            raise fail(f"expected {what} from {low} to {high}")
        return value

    return PlainValidator(check)


def _non_blank(value: str) -> str:
    if not value.strip():
        raise fail("must not be blank")
    return value


def _url(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in schemes or not rest:
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise fail(f"expected a URL starting with {wanted} (got {value!r})")
        return value

    return AfterValidator(check)


def _argv(value: list[str]) -> list[str]:
    if not value or not value[0].strip():
        raise fail('expected a command: a non-empty list like ["vercel", "--prod"]')
    return value


def _choice(*allowed: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            listed = ", ".join(allowed)
            hint = did_you_mean(value, allowed)
            raise fail(f"expected one of {listed}, not {value!r}{hint}")
        return value

    return AfterValidator(check)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as err:
        raise fail(f"bad regular expression {value!r}: {err}") from None
    return value


def _unique_items(items: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    for number, item in enumerate(items):
        if not item.strip():
            raise fail("must not be blank", (number,))
        if item in seen:
            raise fail(f"{item!r} is listed twice (also item {seen[item] + 1})", (number,))
        seen[item] = number
    return items


def _off_when_empty(value: object) -> object:
    return None if value == "" else value  # "${TOKEN:-}" with TOKEN unset: none


Duration = Annotated[float, BeforeValidator(_duration)]
Positive = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]
Percent = Annotated[int, _whole(0, 100)]
Text = Annotated[str, AfterValidator(_non_blank)]
HttpUrl = Annotated[str, _url("http", "https")]
Argv = Annotated[list[str], AfterValidator(_argv)]
Checklist = Annotated[list[str], AfterValidator(_unique_items)]
Regex = Annotated[str, AfterValidator(_regex)]


class Strict(BaseModel):
    """No unknown keys, no silent type coercion ("5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    raise fail(f"unknown key{did_you_mean(key, known)}", (key,))
        return data


# -- [rollout] -------------------------------------------------------------------------------


class RolloutSection(Strict):
    name: Text
    state: Text = ".cockpit/state.toml"  # relative to the config file's folder
    audit: Text = ".cockpit/audit.jsonl"
    theme: Annotated[str, _choice(*THEMES)] = "dark"


# -- [sources.<name>] ------------------------------------------------------------------------


class SourceBase(Strict):
    every: Positive = 2.0
    timeout: Positive = 5.0  # may exceed `every`: polls of one source never overlap
    window: Positive = 60.0


def _method(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]+", value):
        raise fail(f"expected an HTTP method like GET or POST, not {value!r}")
    return value.upper()


Method = Annotated[str, AfterValidator(_method)]


class HttpSource(SourceBase):
    kind: Literal["http"]
    every: Positive = 1.0
    url: HttpUrl
    method: Method = "GET"
    headers: dict[str, str] = {}
    expect: list[Annotated[int, _whole(100, 599, "an HTTP status")]] | None = Field(
        None, min_length=1
    )


class RedisSource(SourceBase):
    kind: Literal["redis"]
    url: Annotated[str, _url("redis", "rediss", "https")]
    token: Annotated[str | None, BeforeValidator(_off_when_empty)] = None  # Upstash REST


class PostgresSource(SourceBase):
    kind: Literal["postgres"]
    dsn: Text
    slow_query: Positive = 2.0
    connect_timeout: Positive = 5.0
    statement_timeout: Positive = 2.0


def _field_names(names: dict[str, str]) -> dict[str, str]:
    for name, expression in names.items():
        if not FIELD_NAME.fullmatch(name):
            raise fail("field names are lowercase letters, digits and _, e.g. req_rate", (name,))
        if name == "up":
            raise fail("'up' is taken: every source reports its own up flag", (name,))
        if not expression.strip():
            raise fail("must not be blank", (name,))
    return names


FieldMap = Annotated[dict[str, str], AfterValidator(_field_names)]


class PrometheusSource(SourceBase):
    kind: Literal["prometheus"]
    scrape: HttpUrl | None = None  # a /metrics endpoint, with `metrics`
    metrics: FieldMap = {}
    server: HttpUrl | None = None  # a Prometheus server, with `queries`
    queries: FieldMap = {}

    @model_validator(mode="after")
    def _one_form(self) -> PrometheusSource:
        if (self.scrape is None) == (self.server is None):
            raise fail("set exactly one of scrape (with metrics) or server (with queries)")
        if self.scrape is not None and self.queries:
            raise fail(
                "queries go with server; with scrape, name the fields in metrics", ("queries",)
            )
        if self.server is not None and self.metrics:
            raise fail(
                "metrics go with scrape; with server, name the fields in queries", ("metrics",)
            )
        if not (self.metrics or self.queries):
            form = "metrics" if self.scrape is not None else "queries"
            raise fail(f'name at least one field: {form} = {{ name = "..." }}', (form,))
        return self


class LogsSource(SourceBase):
    kind: Literal["logs"]
    command: Argv
    error: Regex = "(?i)error"
    warn: Regex = "(?i)warn"


Source = Annotated[
    HttpSource | RedisSource | PostgresSource | PrometheusSource | LogsSource,
    Field(discriminator="kind"),
]

# -- the plan: checklists, phases, actions ---------------------------------------------------


class Preflight(Strict):
    checks: Checklist = []
    rules: list[str] = []


class AfterRollback(Strict):
    checks: Checklist = []


class PhaseSection(Strict):
    name: Text
    traffic: Percent
    bake: Duration = 0.0
    success: list[str] = []
    failure: list[str] = []
    checks: Checklist = []


class HttpAction(Strict):
    method: Method = "POST"
    url: HttpUrl
    headers: dict[str, str] = {}
    body: Any = Field(None, alias="json")  # any TOML value, sent as the JSON body


class TrafficSection(Strict):
    run: Argv | None = None  # placeholders like {percent} are filled when it runs
    http: HttpAction | None = None
    stdin: str | None = None
    then: list[Argv] = []
    verify: HttpUrl | None = None
    verify_for: Duration = 60.0
    timeout: Positive = 300.0
    shell: bool = False
    """DANGEROUS. Run `run` and each `then` through `/bin/sh -c`, each written as one string.

    Placeholders and `${VAR}` values are filled into shell text unquoted, so a value holding
    `;`, `$(...)` or a quote runs as shell code with the operator's privileges. Prefer argv
    lists (the default), which never go through a shell."""

    @model_validator(mode="after")
    def _some_action(self) -> TrafficSection:
        if self.run is None and self.http is None:
            raise fail("say how to set traffic: run = [...] (a command) or http = { url = ... }")
        if self.shell:
            commands: list[tuple[KeyPath, list[str]]] = [
                (("then", n), a) for n, a in enumerate(self.then)
            ]
            if self.run is not None:
                commands.insert(0, (("run",), self.run))
            _shell_commands(commands)
        return self


class RollbackSection(Strict):
    name: Annotated[str, AfterValidator(lambda v: _name(v, "method names"))]
    title: Text | None = None  # defaults to the name
    eta: Duration | None = None
    when: str = ""
    run: list[Argv] = []
    traffic: Percent | None = None
    manual: Text | None = None
    verify: HttpUrl | None = None
    timeout: Positive = 300.0
    shell: bool = False
    """DANGEROUS. Run each `run` command through `/bin/sh -c`, each written as one string.

    Placeholders and `${VAR}` values are filled into shell text unquoted, so a value holding
    `;`, `$(...)` or a quote runs as shell code with the operator's privileges. `traffic = 0`
    uses the [traffic] section's own `shell` setting."""

    @model_validator(mode="after")
    def _some_step(self) -> RollbackSection:
        if not self.run and self.traffic is None and self.manual is None:
            raise fail("a method needs at least one of run, traffic or manual")
        if self.shell:
            _shell_commands([(("run", n), argv) for n, argv in enumerate(self.run)])
        return self


def _shell_commands(commands: list[tuple[KeyPath, list[str]]]) -> None:
    """With `shell = true` every command is exactly one string, and there is one to run."""
    if not commands:
        raise fail("shell = true applies to run commands, and there are none here", ("shell",))
    for at, argv in commands:
        if len(argv) != 1:
            one = json.dumps(shlex.join(argv))
            raise fail(
                f"with shell = true a command is one string for /bin/sh -c, not {len(argv)} "
                f"items: write [{one}]",
                at,
            )


class AutoRollbackSection(Strict):
    when: Annotated[list[str], Field(min_length=1)]
    method: Text
    grace: Duration = 30.0
    on_unknown: Annotated[str, _choice(*ON_UNKNOWN)] = "hold"
    unknown_for: Positive = 300.0
    cooldown: Duration = 600.0


OptionalHook = Annotated[HttpUrl | None, BeforeValidator(_off_when_empty)]


class NotifySection(Strict):
    slack: OptionalHook = None  # an incoming-webhook URL; empty means off
    webhook: OptionalHook = None  # generic JSON POST; empty means off
    summary_every: Positive = 4 * 3600.0


def _name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise fail(f"{what} are lowercase letters, digits, - and _, starting with a letter")
    return value


class CockpitConfig(Strict):
    rollout: RolloutSection
    sources: dict[str, Source] = {}
    baseline: dict[str, Annotated[float | str, PlainValidator(lambda v: _quantity(v))]] = {}
    preflight: Preflight = Preflight()
    phase: list[PhaseSection] = Field([], validate_default=True)
    traffic: TrafficSection | None = None
    rollback: list[RollbackSection] = []
    after_rollback: AfterRollback = AfterRollback()
    auto_rollback: AutoRollbackSection | None = None
    notify: NotifySection | None = None
    keymap: dict[str, Text] = {}

    @field_validator("sources", mode="before")
    @classmethod
    def _source_names(cls, sources: Any) -> Any:
        if isinstance(sources, dict):
            for name in sources:
                if name in RESERVED_SOURCE_NAMES:
                    raise fail(f"{name!r} is reserved for the built-in {name}.* metrics", (name,))
                if not NAME.fullmatch(name):
                    raise fail(
                        "source names are lowercase letters, digits, - and _, "
                        "starting with a letter",
                        (name,),
                    )
        return sources

    @field_validator("keymap")
    @classmethod
    def _known_keys(cls, keymap: dict[str, str]) -> dict[str, str]:
        for binding, keys in keymap.items():
            if binding not in KEY_IDS:
                hint = did_you_mean(binding, KEY_IDS) or f" (one of: {', '.join(KEY_IDS[:12])})"
                raise fail(f"no key binding {binding!r}{hint}", (binding,))
            if not KEYS.fullmatch(keys):
                raise fail(f'{keys!r} is not a key: write e.g. "A", "ctrl+r" or "a,A"', (binding,))
        return keymap

    @field_validator("phase")
    @classmethod
    def _some_phase(cls, phases: list[PhaseSection]) -> list[PhaseSection]:
        if not phases:
            raise fail("a rollout needs at least one [[phase]]")
        return phases


def _quantity(value: object) -> float | str:
    if isinstance(value, dict):
        raise fail('write a metric name with a dot in quotes: "farms.p95" = "800ms"')
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail('expected a number, or a string with a unit like "800ms" or "60%"')
    return value


# -- pydantic's errors, in words a person reads ----------------------------------------------

_TYPE_WORDS = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "missing": "missing required key",
    "extra_forbidden": "unknown key",
}


def describe(error: ErrorDetails) -> tuple[KeyPath, str]:
    """The key path (as in the data: 0-based indices) and a one-line message for one error."""
    loc: KeyPath = tuple(error["loc"])
    if len(loc) >= 3 and loc[0] == "sources" and loc[2] in SOURCE_KINDS:
        loc = loc[:2] + loc[3:]  # drop pydantic's union tag: sources.farms.http.url
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "cockpit":
        return loc + tuple(ctx.get("at", ())), error["msg"]
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        hint = did_you_mean(tag, SOURCE_KINDS) or f" (kinds: {', '.join(SOURCE_KINDS)})"
        return loc + ("kind",), f"unknown kind {tag!r}{hint}"
    if kind == "union_tag_not_found":
        return loc + ("kind",), f"missing required key (one of {', '.join(SOURCE_KINDS)})"
    if kind == "too_short":
        return loc, "must not be empty"
    if kind == "list_type" and loc in (("phase",), ("rollback",)):
        return loc, f"expected an array of tables: write [[{loc[0]}]]"
    if kind == "value_error":
        return loc, str(ctx.get("error", error["msg"]))
    message = _TYPE_WORDS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
    return loc, message
