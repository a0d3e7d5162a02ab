"""Hypothesis fuzzing of everything that reads text someone else wrote: rules, durations, the
config loader (random TOML documents made of the real schema's keys), the Prometheus text
format and Redis INFO. No input crashes them: each answers, or raises only its documented
error (RuleError, DurationError, ConfigError, ValueError/SelectorError) with one line."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cockpit.core import config_models as models
from cockpit.core.catalog import Catalog, source_fields
from cockpit.core.config import ConfigError, load_plan
from cockpit.core.durations import DurationError, format_duration, parse_duration
from cockpit.core.rule_types import RuleError
from cockpit.core.rules import check_rule, parse_rule
from cockpit.core.sources.prom_text import (
    CounterRate,
    Exposition,
    HistogramQuantile,
    Missing,
    Selector,
    SelectorError,
    parse_selector,
    select_buckets,
    select_value,
)
from cockpit.core.sources.redis_info import (
    COUNTERS,
    CounterWindow,
    NoDelta,
    Sample,
    not_info,
    parse_info,
    redis_reading,
)

FUZZ = settings(
    # COCKPIT_FUZZ_EXAMPLES=5000 for a deeper run than make test's
    max_examples=int(os.environ.get("COCKPIT_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def one_line(error: BaseException, starts: str = "") -> None:
    """The error's text: one line for a person, starting with `starts` (the file, say)."""
    text = str(error)
    assert text, type(error).__name__
    assert "\n" not in text, repr(text)
    assert "\r" not in text, repr(text)
    assert text.startswith(starts), repr(text)


# Characters that mean something to one parser or another, and some that mean nothing.
NASTY = "\x00\x07\t\r\n\u00a0\u2028\u200b\ufeff\ud7ff\U0001f600é≥≠%{}[]()\"'\\$#=<>!:,.-+*/~ "
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.text(NASTY, max_size=40)


# -- rules and durations ------------------------------------------------------------------

CATALOG = Catalog(
    {
        "web": source_fields("http"),
        "cache": source_fields("redis"),
        "db": source_fields("postgres"),
        "prom": source_fields("prometheus", ["queue", "jobs_per_min"]),
        "http": {name: unit for name, unit in source_fields("http").items()},
    }
)
RULE_WORDS = [
    *CATALOG.names(),
    "web.p59", "nope.x", "improvement(", ")", "<", "<=", ">", ">=", "==", "!=", "=>", "=",
    "0", "-1", "2.5", "1e9", "nan", "inf", "9" * 40, "%", "ms", "s", "m", "h", "d", "for",
    "5m", "0s", "1h30m", "100000d", "x", "", " ", "\t",
]  # fmt: skip
rule_texts = texts | st.lists(st.sampled_from(RULE_WORDS), max_size=8).map(" ".join)


@FUZZ
@given(rule_texts)
def test_rule_parser_answers_or_refuses_in_one_line(text: str) -> None:
    try:
        rule = parse_rule(text)
        check_rule(rule, CATALOG)  # units, known metrics: the config loader's second step
    except RuleError as error:
        one_line(error)
    else:
        assert math.isfinite(rule.threshold)
        assert rule.for_s is None or 0 < rule.for_s < math.inf


duration_texts = texts | st.text("0123456789.msdh- ", max_size=24)


@FUZZ
@given(duration_texts)
def test_duration_parser_answers_or_refuses_in_one_line(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except DurationError as error:
        one_line(error)
    else:
        assert 0 <= seconds <= 10 * 365 * 86400


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True))
@example(math.inf)  # found by this test: OverflowError
def test_format_duration_never_raises(seconds: float) -> None:
    shown = format_duration(seconds)
    assert shown
    assert "-" not in shown


# -- the config loader: random documents built from the real schema's keys ----------------


def keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


SOURCE_MODELS = {
    "http": models.HttpSource,
    "redis": models.RedisSource,
    "postgres": models.PostgresSource,
    "prometheus": models.PrometheusSource,
    "logs": models.LogsSource,
}
TABLES: Mapping[str, type[BaseModel]] = {
    "rollout": models.RolloutSection,
    "preflight": models.Preflight,
    "after_rollback": models.AfterRollback,
    "traffic": models.TrafficSection,
    "auto_rollback": models.AutoRollbackSection,
    "notify": models.NotifySection,
}
ARRAYS: Mapping[str, type[BaseModel]] = {
    "phase": models.PhaseSection,
    "rollback": models.RollbackSection,
}
assert set(keys_of(models.CockpitConfig)) == {*TABLES, *ARRAYS, "sources", "baseline", "keymap"}, (
    "the schema grew: teach the fuzzer its new keys"
)

DURATIONS = ["250ms", "1s", "5m", "48h", "0s", "-1s", "1y", "", "5", "1h30m", "99999999h"]
URLS = [
    "http://127.0.0.1:8000/", "https://x.example/metrics", "redis://127.0.0.1:6379/0",
    "postgresql://u@h/db", "ftp://x", "localhost:80", "http://", "${APP_URL}",
    "${APP_URL:-http://127.0.0.1:1}", "${", "$${x}", "http://[::1", "http://h:99999/",
]  # fmt: skip
RULES = ["web.p95 < 200ms", "cache.hit_rate >= 50% for 5m", "improvement(web.p95) >= 40%",
         "db.up == 0", "web.p95 > for", "x", ""]  # fmt: skip
NAMES = ["web", "cache", "db", "prom", "http", "Web", "a b", "", "flag", "revert"]
SCALARS = (
    st.sampled_from(DURATIONS + URLS + RULES + NAMES)
    | texts
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
)
# Two levels deep at most (st.recursive's own check misfires on long runs).
SHALLOW = SCALARS | st.lists(SCALARS, max_size=3)
VALUES = (
    SHALLOW
    | st.lists(SHALLOW, max_size=3)
    | st.dictionaries(st.sampled_from(NAMES) | texts, SHALLOW, max_size=3)
)
# Values a field of this name is likely to hold, so most documents get past the types.
LIKELY: Mapping[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(
        ["every", "timeout", "window", "bake", "eta", "grace", "unknown_for", "cooldown",
         "slow_query", "connect_timeout", "statement_timeout", "verify_for", "summary_every"],
        st.sampled_from(DURATIONS),
    ),
    **dict.fromkeys(
        ["url", "scrape", "server", "verify", "slack", "webhook", "dsn"], st.sampled_from(URLS)
    ),
    **dict.fromkeys(
        ["success", "failure", "when", "rules"], st.lists(st.sampled_from(RULES), max_size=3)
    ),
    **dict.fromkeys(
        ["state", "audit"],
        st.sampled_from(["s.toml", "cockpit.toml", "~no-such-user/s", "~", "\x00", "", "."]),
    ),
    "checks": st.lists(st.sampled_from(["Logs clean", "Logs clean", " ", "x"]), max_size=3),
    "traffic": st.integers(-5, 110),
    "kind": st.sampled_from([*SOURCE_MODELS, "htp"]),
    "name": st.sampled_from(NAMES),
    "method": st.sampled_from(["flag", "revert", "GET", "POST", "x"]),
    "run": st.lists(st.lists(st.sampled_from(["true", "{percent}", "${X}"]), max_size=3)),
    "command": st.lists(st.sampled_from(["tail", "-F", "app.log"]), max_size=3),
    "metrics": st.dictionaries(st.sampled_from(["queue", "Bad-Name"]), st.sampled_from(["q", "{"])),
    "queries": st.dictionaries(st.sampled_from(["queue", "rps"]), st.sampled_from(["sum(x)"])),
    "on_unknown": st.sampled_from(["hold", "page", "rollback", "pager"]),
    "theme": st.sampled_from(["dark", "mono", "drak"]),
}  # fmt: skip


def value_for(key: str) -> st.SearchStrategy[Any]:
    likely = LIKELY.get(key)
    return VALUES if likely is None else st.one_of(likely, likely, likely, VALUES)  # 3 to 1


@st.composite
def table_of(draw: st.DrawFn, model: type[BaseModel], skip: str = "") -> dict[str, Any]:
    """A table of some of `model`'s keys: its required ones nine times in ten, and one that
    is not in the schema one time in ten."""
    keys = [key for key in keys_of(model) if key != skip]
    chosen = set(draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))))
    if draw(st.integers(0, 9)):
        chosen |= {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    if not draw(st.integers(0, 9)):
        chosen.add("colour")
    return {key: draw(value_for(key)) for key in sorted(chosen - {skip})}


@st.composite
def source_tables(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([*SOURCE_MODELS, "htp"]))
    model = SOURCE_MODELS.get(kind, models.HttpSource)
    return {"kind": kind, **draw(table_of(model, skip="kind"))}


def mostly(shape: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`shape` nine times in ten, any value otherwise."""
    return st.integers(0, 9).flatmap(lambda n: shape if n else VALUES)


SECTIONS: dict[str, st.SearchStrategy[Any]] = {
    **{name: mostly(table_of(model)) for name, model in TABLES.items()},
    **{name: mostly(st.lists(table_of(model), max_size=3)) for name, model in ARRAYS.items()},
    "sources": st.dictionaries(st.sampled_from(NAMES), source_tables(), max_size=3),
    "baseline": st.dictionaries(
        st.sampled_from(["web.p95", "db.queries_per_min", "web", "x.y"]), SCALARS, max_size=2
    ),
    "keymap": st.dictionaries(st.sampled_from(["advance", "hold"]), SCALARS, max_size=2),
}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(list(SECTIONS)), unique=True, max_size=len(SECTIONS)))
    document = {name: draw(SECTIONS[name]) for name in chosen}
    if draw(st.integers(0, 3)):  # most real files have [rollout] and a phase
        document["rollout"] = {"name": "r", **draw(table_of(models.RolloutSection))}
        document.setdefault("phase", [{"name": "one", "traffic": 100}])
    return document


def toml_text(document: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):
        return None  # not expressible in TOML (tomli_w says so): nothing to feed the loader


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


ENVIRONS = st.dictionaries(
    st.sampled_from(["APP_URL", "X", "COCKPIT_CONFIG"]),
    st.sampled_from(["http://127.0.0.1:9", "", "${X}", "ftp://x", "\n"]),
    max_size=2,
)


def loads_or_refuses(path: Path, environ: Mapping[str, str]) -> None:
    try:
        plan = load_plan(path, environ)
    except ConfigError as error:  # ConfigNotFound is one too
        one_line(error, starts=str(path))
    else:
        assert plan.phases


ONE_PHASE = [{"name": "one", "traffic": 100}]


@FUZZ
@given(documents(), ENVIRONS)
@example({"rollout": {"name": "r", "state": "\x00"}, "phase": ONE_PHASE}, {})  # found: crash
@example({"rollout": {"name": "r", "audit": "~no-such-user/a"}, "phase": ONE_PHASE}, {})
def test_config_loader_on_documents_of_the_schema(
    folder: Path, document: dict[str, Any], environ: dict[str, str]
) -> None:
    text = toml_text(document)
    if text is None:
        return
    path = folder / "cockpit.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    loads_or_refuses(path, environ)


@FUZZ
@given(st.binary(max_size=200) | texts.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_config_loader_on_any_bytes(folder: Path, data: bytes) -> None:
    path = folder / "bytes.toml"
    path.write_bytes(data)
    loads_or_refuses(path, {})


# -- the Prometheus text format -----------------------------------------------------------

METRIC_NAMES = ["jobs_total", "jobs", "queue_depth", "lat_bucket", "lat_count", "lat", "1bad"]
LABELS = st.dictionaries(
    st.sampled_from(["le", "code", "route", "quantile", "0x", ""]),
    st.sampled_from(["0.1", "+Inf", "5..", "", 'a\\"b', "NaN", "x", "1e400", "-1"]),
    max_size=3,
)
NUMBERS = st.sampled_from(["1", "0", "-3", "2.5e3", "NaN", "+Inf", "-Inf", "1e400", "7", "x", ""])


@st.composite
def exposition_lines(draw: st.DrawFn) -> str:
    """Mostly well-formed lines with odd names, labels and values; now and then anything."""
    name = draw(st.sampled_from(METRIC_NAMES) | texts) if draw(st.booleans()) else "lat_bucket"
    kind = draw(st.sampled_from(["counter", "gauge", "histogram", "summary", "untyped", "x"]))
    labels = ",".join(f'{k}="{v}"' for k, v in draw(LABELS).items())
    sample = f"{name}{{{labels}}}" if labels or draw(st.booleans()) else name
    return draw(
        st.sampled_from(
            [
                f"# TYPE {name} {kind}",
                f"# HELP {name} {draw(texts)}",
                f"{sample} {draw(NUMBERS)}",
                f"{sample} {draw(NUMBERS)}",
                f"{sample} {draw(NUMBERS)}",
                f"{sample} {draw(NUMBERS)} {draw(NUMBERS)}",
                draw(texts),
            ]
        )
    )


pages = st.lists(exposition_lines(), max_size=12).map("\n".join) | texts
SELECTORS = [
    "jobs_total", "jobs", "queue_depth", 'jobs_total{code=~"5.."}', 'lat{route="/"} p95',
    "lat p99.9", "lat p50", 'jobs{code!~"("}', "queue_depth{", "1bad", "lat p100", "",
]  # fmt: skip


@FUZZ
@given(texts | st.sampled_from(SELECTORS))
def test_selector_parser_answers_or_refuses_in_one_line(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as error:
        one_line(error)
    else:
        assert selector.quantile is None or 0 < selector.quantile < 1


@FUZZ
@given(pages, st.booleans(), st.lists(st.floats(allow_nan=True), min_size=1, max_size=4))
@example('lat_bucket{le="5.."} 1', False, [1.0])  # found: a bad `le` took the whole source down
@example("# TYPE  counter", False, [1.0])  # found: the parser's ValueError said nothing
@example("0\r0", False, [1.0])  # found: its message quoted a carriage return
def test_prometheus_text_reads_or_refuses_and_selecting_never_raises(
    page: str, filtered: bool, counts: list[float]
) -> None:
    selectors = []
    for text in SELECTORS:
        with contextlib.suppress(SelectorError):
            selectors.append(parse_selector(text))
    wanted = {s.name for s in selectors} if filtered else None
    try:
        exposition = Exposition(page, wanted)
    except ValueError as error:  # documented: "not the Prometheus text format"
        one_line(error)
        return
    for selector in selectors:
        select_from(exposition, selector, counts)


def select_from(exposition: Exposition, selector: Selector, counts: list[float]) -> None:
    if selector.quantile is not None:
        buckets = select_buckets(exposition, selector)
        if isinstance(buckets, Missing):
            return
        window = HistogramQuantile(60.0, selector.quantile)
        for t, scale in enumerate(counts):  # successive scrapes of the same page, rescaled
            shifted = tuple((bound, count * scale) for bound, count in buckets)
            window.add_buckets(float(t), shifted)
        return
    found = select_value(exposition, selector)
    if isinstance(found, Missing):
        return
    total, _ = found
    rate = CounterRate(60.0)
    for t, scale in enumerate(counts):
        rate.add_value(float(t), total * scale)


# -- Redis INFO ---------------------------------------------------------------------------

INFO_KEYS = [*COUNTERS, "run_id", "uptime_in_seconds", "used_memory", "maxmemory",
             "connected_clients", "redis_version", "# Server", ""]  # fmt: skip
INFO_VALUES = st.sampled_from(["0", "12", "-1", "1e400", "nan", "inf", "x", "", "3.5", "9" * 30])


@st.composite
def info_texts(draw: st.DrawFn) -> str:
    lines = draw(
        st.lists(
            st.tuples(st.sampled_from(INFO_KEYS) | texts, INFO_VALUES | texts).map(
                lambda kv: f"{kv[0]}:{kv[1]}"
            )
            | texts,
            max_size=14,
        )
    )
    return draw(st.sampled_from(["\r\n", "\n"])).join(lines)


@FUZZ
@given(st.lists(info_texts() | texts, min_size=1, max_size=4), st.floats(0, 1e4))
@example(["keyspace_hits:nan\r\ntotal_commands_processed:1e400"], 0.0)  # found: int(nan)
@example(["OK"], 0.0)  # not INFO at all: refused, never read as zeros
def test_redis_info_never_raises(answers: list[str], latency_ms: float) -> None:
    window = CounterWindow(60.0, max_span_s=10.0)
    for t, text in enumerate(answers):
        info = parse_info(text)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in info.items())
        wrong = not_info(text, info)
        if wrong is not None:
            assert "\n" not in wrong
            continue
        sample = Sample.from_info(float(t), info)
        delta = window.add(sample)
        reading = redis_reading(info, delta, latency_ms)
        for name, value in reading.values.items():
            assert value is None or math.isfinite(value), (name, value)
            assert value is not None or reading.reasons.get(name), name
        if isinstance(delta, NoDelta):
            assert delta.reason


@pytest.mark.parametrize(
    "page", ["OK\n", "Hello world\n", "jobs_total 1\nOK\n", 'x{a="b"} nope\n', "<html>\n"]
)
def test_a_page_in_another_format_is_refused_even_when_only_some_lines_are_read(
    page: str,
) -> None:
    with pytest.raises(ValueError, match="not a metric line"):
        Exposition(page, {"jobs"})  # found: "OK" read as a page without our metrics
