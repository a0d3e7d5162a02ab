"""Broken configs: each gives exactly one line naming the file, the line and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.core.config import ConfigError, ConfigNotFound, load_plan

EXAMPLE = (Path(__file__).resolve().parents[1] / "data" / "issue_example.toml").read_text()

# Just enough to be valid, for snippets whose line numbers are easy to count.
MINIMAL = """\
[rollout]
name = "r"

[sources.web]
kind = "http"
url = "http://127.0.0.1:8000/"

[[phase]]
name = "one"
traffic = 100
"""


def ex(old: str, new: str) -> str:
    """The issue's example with the first `old` replaced (line numbers stay the example's)."""
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


def mini(extra: str = "", old: str = "", new: str = "") -> str:
    text = MINIMAL.replace(old, new, 1) if old else MINIMAL
    return text + extra


ROLLBACK_TRAFFIC = '\n[[rollback]]\nname = "flag"\ntraffic = 0\n'
PROM = '\n[sources.prom]\nkind = "prometheus"\nscrape = "http://x/metrics"\n'

CASES: list[tuple[str, str, str]] = [
    # -- syntax and types --
    (
        "syntax",
        ex("traffic = 10", "traffic = = 10"),
        "cockpit.toml:43: syntax error: Invalid value",
    ),
    (
        "syntax at end",
        mini('[[rollback]]\nname = "x'),
        "cockpit.toml:12: syntax error: Unterminated string",
    ),
    (
        "string instead of number",
        ex("traffic = 10", 'traffic = "10"'),
        "cockpit.toml:43: phase[1].traffic: expected a whole number from 0 to 100",
    ),
    (
        "traffic out of range",
        ex("traffic = 100", "traffic = 101"),
        "cockpit.toml:59: phase[3].traffic: expected a whole number from 0 to 100",
    ),
    (
        "number instead of string",
        ex('name = "Phase 3: multi-layer caching"', "name = 3"),
        "cockpit.toml:2: rollout.name: expected a string",
    ),
    (
        "string instead of list",
        ex('checks = ["No critical errors in logs"', 'checks = "No critical errors in logs"#'),
        "cockpit.toml:47: phase[1].checks: expected an array",
    ),
    (
        "wrong type deep in an argv",
        ex('["git", "push", "origin", "master"]', '["git", 5, "origin", "master"]'),
        "cockpit.toml:90: rollback[3].run[2][2]: expected a string",
    ),
    (
        "a table where an array of tables belongs",
        mini(old="[[phase]]", new="[phase]"),
        "cockpit.toml:8: phase: expected an array of tables: write [[phase]]",
    ),
    # -- unknown keys, at every level --
    (
        "unknown top-level table",
        ex("[after_rollback]", "[after_rolback]"),
        "cockpit.toml:99: after_rolback: unknown key (did you mean 'after_rollback'?)",
    ),
    (
        "unknown key in [rollout]",
        ex('audit = ".cockpit/audit.jsonl"', 'adit = ".cockpit/audit.jsonl"'),
        "cockpit.toml:4: rollout.adit: unknown key (did you mean 'audit'?)",
    ),
    (
        "unknown key in a source",
        ex('url = "${APP_URL:-http://127.0.0.1:8000}/api/farms/1"', 'urll = "x"'),
        "cockpit.toml:15: sources.farm.urll: unknown key (did you mean 'url'?)",
    ),
    (
        "unknown key in a phase",
        ex('bake = "72h"', 'bak = "72h"'),
        "cockpit.toml:52: phase[2].bak: unknown key (did you mean 'bake'?)",
    ),
    (
        "unknown key in a rollback method",
        ex('eta = "2m"', 'etaa = "2m"'),
        "cockpit.toml:80: rollback[2].etaa: unknown key (did you mean 'eta'?)",
    ),
    (
        "unknown key in [auto_rollback]",
        ex('grace = "30s"', 'gracetime = "30s"'),
        "cockpit.toml:105: auto_rollback.gracetime: unknown key (did you mean 'grace'?)",
    ),
    (
        "unknown key with nothing close",
        ex('stdin = "{percent}"', "colour = 1"),
        "cockpit.toml:66: traffic.colour: unknown key",
    ),
    # -- sources --
    (
        "unknown kind",
        ex('kind = "http"', 'kind = "htp"'),
        "cockpit.toml:7: sources.farms.kind: unknown kind 'htp' (did you mean 'http'?)",
    ),
    (
        "missing kind",
        mini(old='kind = "http"\n', new=""),
        "cockpit.toml:4: sources.web.kind: missing required key "
        "(one of http, redis, postgres, prometheus, logs)",
    ),
    (
        "missing required key",
        ex('url = "${APP_URL:-http://127.0.0.1:8000}/api/farms/1"', ""),
        "cockpit.toml:13: sources.farm.url: missing required key",
    ),
    (
        "URL scheme",
        mini(old="http://127.0.0.1:8000/", new="ftp://127.0.0.1/"),
        "cockpit.toml:6: sources.web.url: expected a URL starting with http:// or https:// "
        "(got 'ftp://127.0.0.1/')",
    ),
    (
        "reserved source name",
        mini(old="[sources.web]", new="[sources.http]"),
        "cockpit.toml:4: sources.http: 'http' is reserved for the built-in http.* metrics",
    ),
    (
        "bad source name",
        mini(old="[sources.web]", new="[sources.Web]"),
        "cockpit.toml:4: sources.Web: source names are lowercase letters, digits, - and _, "
        "starting with a letter",
    ),
    (
        "bad regex",
        mini(
            '\n[sources.logs]\nkind = "logs"\ncommand = ["tail", "-F", "app.log"]\n'
            'error = "(ERROR"\n'
        ),
        "cockpit.toml:15: sources.logs.error: bad regular expression '(ERROR': "
        "missing ), unterminated subpattern at position 0",
    ),
    (
        "empty command",
        mini('\n[sources.logs]\nkind = "logs"\ncommand = []\n'),
        "cockpit.toml:14: sources.logs.command: expected a command: a non-empty list like "
        '["vercel", "--prod"]',
    ),
    (
        "prometheus with both forms",
        mini(PROM + 'server = "http://prom:9090"\nqueries = { rps = "sum(rate(x[1m]))" }\n'),
        "cockpit.toml:12: sources.prom: set exactly one of scrape (with metrics) or server "
        "(with queries)",
    ),
    (
        "prometheus field name",
        mini(PROM + 'metrics = { "Req-Rate" = "http_requests_total" }\n'),
        "cockpit.toml:15: sources.prom.metrics.Req-Rate: field names are lowercase letters, "
        "digits and _, e.g. req_rate",
    ),
    (
        "header value not a string",
        mini(old='kind = "http"', new='kind = "http"\nheaders = { "X-Retries" = 3 }'),
        "cockpit.toml:6: sources.web.headers.X-Retries: expected a string",
    ),
    # -- durations --
    (
        "bad duration",
        ex('bake = "48h"', 'bake = "48 hours"'),
        "cockpit.toml:44: phase[1].bake: bad duration '48 hours': use a number with a unit, "
        "e.g. 250ms, 30s, 5m, 48h",
    ),
    (
        "duration as a number",
        ex('every = "1s"', "every = 1"),
        "cockpit.toml:9: sources.farms.every: expected a duration like 30s, 5m, 48h",
    ),
    (
        "zero timeout",
        ex('timeout = "5s"', 'timeout = "0s"'),
        "cockpit.toml:10: sources.farms.timeout: must be more than 0s",
    ),
    # -- rules --
    (
        "unknown metric with did-you-mean",
        ex('"http.error_rate <= 0.1%", "cache.hit_rate >= 50%"', '"http.p59 <= 0.1%", "x"'),
        "cockpit.toml:53: phase[2].success[1]: unknown metric 'http.p59' "
        "(did you mean 'http.p95'?)",
    ),
    (
        "bad rule",
        ex('"http.p95 > 2s for 10m"', '"http.p95 > for 10m"'),
        "cockpit.toml:103: auto_rollback.when[2]: expected a number after 'http.p95 >', "
        "got 'for 10m'",
    ),
    (
        "unit mismatch",
        ex('"farms.p95 <= 200ms"', '"farms.p95 <= 20%"'),
        "cockpit.toml:53: phase[2].success[4]: farms.p95 is a time, not '%': write 20ms or 2s",
    ),
    (
        "bad preflight rule",
        mini('[preflight]\nrules = ["web.up == 1", "web.upp == 1"]\n'),
        "cockpit.toml:12: preflight.rules[2]: unknown metric 'web.upp' (did you mean 'web.up'?)",
    ),
    (
        "a rule that is not a string",
        ex('failure = ["http.error_rate > 1%"', "failure = [1"),
        "cockpit.toml:46: phase[1].failure[1]: expected a string",
    ),
    # -- phases --
    (
        "traffic not increasing",
        ex("traffic = 100", "traffic = 50"),
        "cockpit.toml:59: phase[3].traffic: traffic must increase from phase to phase: "
        "50% is not more than phase[2]'s 50%",
    ),
    (
        "duplicate phase names",
        ex('name = "Full"', 'name = "Partial"'),
        "cockpit.toml:58: phase[3].name: duplicate phase name 'Partial' (also phase[2])",
    ),
    (
        "duplicate check items",
        ex(
            '"Redis memory usage stable", "No user complaints"',
            '"No user complaints", "No user complaints"',
        ),
        "cockpit.toml:55: phase[2].checks[2]: 'No user complaints' is listed twice (also item 1)",
    ),
    (
        "blank check item",
        ex('"Documentation updated"', '"  "'),
        "cockpit.toml:62: phase[3].checks[2]: must not be blank",
    ),
    (
        "no phases",
        mini(old='[[phase]]\nname = "one"\ntraffic = 100\n', new=""),
        "cockpit.toml: phase: a rollout needs at least one [[phase]]",
    ),
    (
        "missing [rollout]",
        mini(old='[rollout]\nname = "r"\n', new=""),
        "cockpit.toml: rollout: missing required key",
    ),
    # -- rollback methods, traffic, automatic rollback --
    (
        "duplicate rollback names",
        ex('name = "revert"', 'name = "flag"'),
        "cockpit.toml:86: rollback[3].name: duplicate rollback name 'flag' (also rollback[2])",
    ),
    (
        "rollback with traffic but no [traffic]",
        mini(ROLLBACK_TRAFFIC),
        "cockpit.toml:14: rollback[1].traffic: setting traffic needs a [traffic] section that "
        "says how to set it",
    ),
    (
        "rollback that does nothing",
        ex('manual = "In src/lib', 'when_ = "In src/lib').replace("when_ =", "# ="),
        "cockpit.toml:92: rollback[4]: a method needs at least one of run, traffic or manual",
    ),
    (
        "rollback method name",
        mini('\n[[rollback]]\nname = "Flag Off"\nmanual = "do it"\n'),
        "cockpit.toml:13: rollback[1].name: method names are lowercase letters, digits, - and _, "
        "starting with a letter",
    ),
    (
        "empty step in a run list",
        ex('run = [["vercel", "rollback", "--yes"]]', 'run = [["vercel", "rollback"], []]'),
        "cockpit.toml:74: rollback[1].run[2]: expected a command: a non-empty list like "
        '["vercel", "--prod"]',
    ),
    (
        "[traffic] that sets nothing",
        mini('\n[traffic]\nstdin = "{percent}"\n'),
        "cockpit.toml:12: traffic: say how to set traffic: run = [...] (a command) or "
        "http = { url = ... }",
    ),
    (
        "auto_rollback method missing",
        ex('method = "flag"', 'method = "flg"'),
        "cockpit.toml:104: auto_rollback.method: no [[rollback]] named 'flg' "
        "(did you mean 'flag'?)",
    ),
    (
        "auto_rollback method with nothing close",
        ex('method = "flag"', 'method = "zzz"'),
        "cockpit.toml:104: auto_rollback.method: no [[rollback]] named 'zzz' "
        "(methods: instant, flag, revert, disable)",
    ),
    (
        "on_unknown choice",
        ex('on_unknown = "hold"', 'on_unknown = "pager"'),
        "cockpit.toml:106: auto_rollback.on_unknown: expected one of hold, page, rollback, "
        "not 'pager' (did you mean 'page'?)",
    ),
    (
        "theme choice",
        mini(old='name = "r"\n', new='name = "r"\ntheme = "drak"\n'),
        "cockpit.toml:3: rollout.theme: expected one of dark, light, high-contrast, mono, "
        "not 'drak' (did you mean 'dark'?)",
    ),
    # -- baseline --
    (
        "baseline unknown metric",
        ex('"farms.p95" = "800ms"', '"farms.pp95" = "800ms"'),
        "cockpit.toml:33: baseline.\"farms.pp95\": unknown metric 'farms.pp95' "
        "(did you mean 'farms.p95'?)",
    ),
    (
        "baseline without a unit",
        ex('"farm.p95" = "650ms"', '"farm.p95" = 650'),
        'cockpit.toml:34: baseline."farm.p95": farm.p95 is a time: write 650ms or 2s',
    ),
    (
        "baseline key not quoted",
        ex('"search.p95" = "900ms"', 'search.p95 = "900ms"'),
        "cockpit.toml:35: baseline.search: write a metric name with a dot in quotes: "
        '"farms.p95" = "800ms"',
    ),
    # -- interpolation --
    (
        "missing env var",
        ex("${APP_URL:-http://127.0.0.1:8000}/api/farms", "${APP_URL}/api/farms"),
        "cockpit.toml:8: sources.farms.url: environment variable APP_URL is not set "
        "(write ${APP_URL:-default} to give a default)",
    ),
    (
        "missing env var in an argv",
        ex("${PHASE3_COMMIT:-HEAD}", "${PHASE3_COMMIT}"),
        "cockpit.toml:90: rollback[3].run[1][4]: environment variable PHASE3_COMMIT is not set "
        "(write ${PHASE3_COMMIT:-default} to give a default)",
    ),
    (
        "unterminated ${",
        ex('"${REDIS_URL:-redis://127.0.0.1:6379/0}"', '"${REDIS_URL:-redis://127.0.0.1:6379/0"'),
        "cockpit.toml:23: sources.cache.url: unterminated ${ in "
        "'${REDIS_URL:-redis://127.0.0.1:6379/0' (close it with }, or write $${ for a literal ${)",
    ),
    (
        "interpolated value then validated",
        mini(old='url = "http://127.0.0.1:8000/"', new='url = "${WEB:-localhost:8000}"'),
        "cockpit.toml:6: sources.web.url: expected a URL starting with http:// or https:// "
        "(got 'localhost:8000')",
    ),
    # -- keymap, notify --
    (
        "keymap value not a string",
        mini("\n[keymap]\nadvance = 1\n"),
        "cockpit.toml:13: keymap.advance: expected a string",
    ),
    (
        "notify URL",
        mini('\n[notify]\nslack = "hooks.slack.com/x"\n'),
        "cockpit.toml:13: notify.slack: expected a URL starting with http:// or https:// "
        "(got 'hooks.slack.com/x')",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_config_gives_one_exact_line(
    text: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cockpit.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_plan(Path("cockpit.toml"), environ={})
    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)


def test_the_corpus_is_large_and_every_mutation_took() -> None:
    assert len(CASES) >= 30
    assert len({case[1] for case in CASES}) == len(CASES)
    assert all(case[1] != EXAMPLE for case in CASES)


def test_error_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cockpit.toml").write_text(ex('kind = "http"', 'kind = "htp"'))
    with pytest.raises(ConfigError) as caught:
        load_plan(Path("cockpit.toml"), environ={})
    error = caught.value
    assert (error.file, error.line, error.key) == ("cockpit.toml", 7, "sources.farms.kind")
    assert error.message == "unknown kind 'htp' (did you mean 'http'?)"


def test_file_name_is_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "plan.toml"
    path.parent.mkdir()
    path.write_text(ex("traffic = 10", "traffic = 1000"))
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert str(caught.value).startswith(f"{path}:43: phase[1].traffic: ")


def test_first_error_in_the_file_is_reported(tmp_path: Path) -> None:
    text = ex('audit = ".cockpit/audit.jsonl"', "audit = 1")
    text = text.replace('on_unknown = "hold"', 'on_unknown = "x"')
    text = text.replace('kind = "redis"', 'kind = "redi"')
    path = tmp_path / "cockpit.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert caught.value.line == 4
    assert caught.value.key == "rollout.audit"


def test_directory_instead_of_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cockpit.toml").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_plan(Path("cockpit.toml"), environ={})
    assert str(caught.value) == "cockpit.toml: cannot read: a directory, not a config file"


def test_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cockpit.toml").write_bytes(b'[rollout]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_plan(Path("cockpit.toml"), environ={})
    assert str(caught.value) == "cockpit.toml:2: not UTF-8 text (byte 0xe9)"


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFound) as caught:
        load_plan(Path("nowhere.toml"), environ={})
    assert str(caught.value) == "nowhere.toml: no such file"


def test_message_stays_one_line_whatever_the_value(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    path.write_text(mini(old='url = "http://127.0.0.1:8000/"', new='url = """ftp://a\nb"""'))
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == (
        f"{path}:6: sources.web.url: expected a URL starting with http:// or https:// "
        "(got 'ftp://a\\nb')"
    )
    assert ConfigError("f", "two\nlines", key="k").__str__() == "f: k: two\\nlines"
