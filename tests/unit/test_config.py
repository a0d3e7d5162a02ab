"""Loading `cockpit.toml`: the issue's example and the bundled plan mean what they say."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.core.catalog import Unit
from cockpit.core.config import (
    ConfigError,
    ConfigNotFound,
    find_config,
    key_text,
    load_config,
    load_plan,
)
from cockpit.core.plan import Plan
from cockpit.core.rule_types import Op, Rule

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "tests" / "data" / "issue_example.toml"
BUNDLED = REPO / "cockpit.toml"


def rule_parts(rule: Rule) -> tuple[object, ...]:
    return (rule.metric, rule.op, rule.threshold, rule.for_s, rule.improvement)


def test_issue_example_means_what_it_says() -> None:
    plan = load_plan(EXAMPLE, environ={})
    assert plan.name == "Phase 3: multi-layer caching"
    assert plan.config_path == EXAMPLE
    assert plan.state_path == EXAMPLE.parent / ".cockpit" / "state.toml"
    assert plan.audit_path == EXAMPLE.parent / ".cockpit" / "audit.jsonl"
    assert plan.theme == "dark"

    assert [(p.name, p.traffic, p.bake_s) for p in plan.phases] == [
        ("Shadow", 10, 48 * 3600.0),
        ("Partial", 50, 72 * 3600.0),
        ("Full", 100, 72 * 3600.0),
    ]
    shadow, partial, full = plan.phases
    assert [rule_parts(r) for r in shadow.success] == [
        ("http.error_rate", Op.LE, pytest.approx(0.001), None, False),
        ("cache.hit_rate", Op.GE, pytest.approx(0.3), None, False),
        ("farms.p95", Op.GE, pytest.approx(0.4), None, True),
    ]
    assert [rule_parts(r) for r in shadow.failure] == [
        ("http.error_rate", Op.GT, pytest.approx(0.01), None, False),
        ("cache.hit_rate", Op.EQ, 0.0, 600.0, False),
        ("cache.up", Op.EQ, 0.0, None, False),
        ("db.up", Op.EQ, 0.0, None, False),
    ]
    assert shadow.checks == ("No critical errors in logs", "Database queries optimized (no N+1)")
    assert rule_parts(partial.success[3]) == ("farms.p95", Op.LE, 200.0, None, False)
    assert rule_parts(partial.failure[2]) == (
        "db.pool_used",
        Op.GT,
        pytest.approx(0.8),
        600.0,
        False,
    )
    assert rule_parts(full.success[2]) == ("db.queries_per_min", Op.GE, 0.5, None, True)
    assert full.failure == ()
    assert full.checks[-1] == "Post-mortem completed"

    assert plan.preflight_checks[0] == "Staging verification completed"
    assert len(plan.preflight_checks) == 5
    assert plan.preflight_rules == ()
    assert plan.after_rollback_checks == (
        "Application stable",
        "Error rates back to baseline",
        "Root cause analysed",
        "Incident documented",
    )
    assert plan.baseline == {
        "farms.p95": 800.0,
        "farm.p95": 650.0,
        "search.p95": 900.0,
        "db.queries_per_min": 500.0,
    }


def test_issue_example_actions() -> None:
    plan = load_plan(EXAMPLE, environ={"APP_URL": "https://farms.example"})
    traffic = plan.traffic
    assert traffic is not None
    assert traffic.run == (
        "vercel",
        "env",
        "add",
        "PHASE_3_ROLLOUT_PERCENTAGE",
        "production",
        "--force",
    )
    assert traffic.stdin == "{percent}"
    assert traffic.then == (("vercel", "--prod"),)
    assert (traffic.verify, traffic.verify_for_s, traffic.timeout_s) == (None, 60.0, 300.0)

    instant, flag, revert, disable = plan.rollbacks
    assert (instant.name, instant.title, instant.eta_s) == (
        "instant",
        "Vercel instant rollback",
        30.0,
    )
    assert instant.when == "Immediate critical issues, production down"
    assert instant.run == (("vercel", "rollback", "--yes"),)
    assert instant.verify == "https://farms.example/api/health"
    assert (flag.traffic, flag.run, flag.eta_s) == (0, (), 120.0)
    assert revert.run == (
        ("git", "revert", "--no-edit", "HEAD"),
        ("git", "push", "origin", "master"),
    )
    assert revert.eta_s == 600.0
    assert revert.verify is None
    assert disable.manual is not None
    assert disable.manual.startswith("In src/lib/services")
    assert (disable.run, disable.traffic, disable.eta_s) == ((), None, 900.0)
    assert plan.rollback("flag") is flag

    auto = plan.auto_rollback
    assert auto is not None
    assert [rule_parts(r) for r in auto.when] == [
        ("http.error_rate", Op.GT, pytest.approx(0.02), 300.0, False),
        ("http.p95", Op.GT, 2000.0, 600.0, False),
        ("db.up", Op.EQ, 0.0, 60.0, False),
        ("cache.up", Op.EQ, 0.0, 60.0, False),
    ]
    assert (auto.method, auto.grace_s, auto.on_unknown) == ("flag", 30.0, "hold")
    assert (auto.unknown_for_s, auto.cooldown_s) == (300.0, 600.0)


def test_issue_example_sources_and_catalog() -> None:
    plan = load_plan(EXAMPLE, environ={"PHASE3_COMMIT": "abc123"})
    assert list(plan.sources) == ["farms", "farm", "search", "cache", "db"]
    farms, farm, cache, db = (plan.sources[n] for n in ("farms", "farm", "cache", "db"))
    assert (farms.kind, farms.every_s, farms.timeout_s) == ("http", 1.0, 5.0)
    assert farms.settings == {
        "url": "http://127.0.0.1:8000/api/farms",
        "method": "GET",
        "headers": {},
        "expect": None,
        "window_s": 60.0,
    }
    assert (farm.every_s, farm.timeout_s) == (1.0, 5.0)  # http polls every second by default
    assert (cache.kind, cache.every_s, cache.settings["url"]) == (
        "redis",
        2.0,
        "redis://127.0.0.1:6379/0",
    )
    assert cache.settings["token"] is None
    assert db.settings["slow_query_s"] == 2.0
    assert db.settings["statement_timeout_s"] == 2.0
    assert db.settings["connect_timeout_s"] == 5.0
    assert plan.catalog.unit("farms.p95") is Unit.MS
    assert plan.catalog.unit("db.queries_per_min") is Unit.PER_MINUTE
    assert plan.catalog.unit("http.error_rate") is Unit.RATIO
    assert plan.rollbacks[2].run[0][-1] == "abc123"
    assert plan.secrets == frozenset()


def test_bundled_plan_is_the_seed_in_full() -> None:
    loaded = load_config(BUNDLED, environ={})
    plan = loaded.plan
    assert [(p.name, p.traffic, p.bake_s) for p in plan.phases] == [
        ("Shadow", 10, 48 * 3600.0),
        ("Partial", 50, 72 * 3600.0),
        ("Full", 100, 72 * 3600.0),
    ]
    assert [m.name for m in plan.rollbacks] == ["instant", "flag", "revert", "disable"]
    assert [m.eta_s for m in plan.rollbacks] == [30.0, 120.0, 600.0, 900.0]
    disable = plan.rollback("disable")
    assert disable is not None
    assert disable.manual is not None
    assert plan.auto_rollback is not None
    assert plan.auto_rollback.method == "flag"
    assert [r.text for r in plan.auto_rollback.when][:2] == [
        "http.error_rate > 2% for 5m",
        "http.p95 > 2s for 10m",
    ]
    assert plan.state_path == REPO / ".cockpit" / "state.toml"
    assert plan.audit_path == REPO / ".cockpit" / "audit.jsonl"
    for item in (
        "All unit tests passing (72/72)",  # Code & Tests
        "Backups configured and tested",  # Infrastructure
        "On-call schedule established",  # Deployment
        "Error tracking (Sentry) configured",  # Monitoring
        "Cache working in staging (50%+ improvement)",  # Go/No-Go
        "Rollback procedures tested",
    ):
        assert item in plan.preflight_checks
    assert len(plan.preflight_checks) >= 30
    for item in (
        "Verify application is stable",  # Immediate
        "Document incident",  # Short-term
        "Schedule retry",  # Medium-term
        "Share learnings with team",  # Long-term
    ):
        assert item in plan.after_rollback_checks
    assert len(plan.after_rollback_checks) == 16
    assert "No critical errors in logs" in plan.phases[0].checks
    assert "No user complaints" in plan.phases[1].checks
    last = plan.phases[-1]
    for item in (
        "Positive user feedback (faster experience)",
        "All metrics stable for 72 hours",
        "Team trained on cache management",
        "Post-mortem completed (if issues encountered)",
    ):
        assert item in last.checks
    assert "farms.p95 <= 200ms" in [r.text for r in plan.phases[1].success]
    assert "improvement(db.queries_per_min) >= 50%" in [r.text for r in last.success]
    assert plan.baseline["farms.p99"] == 1200.0
    assert plan.baseline["search.mean"] == 520.0
    assert loaded.config.notify is not None
    assert loaded.config.notify.slack is None
    assert loaded.config.notify.summary_every == 4 * 3600.0


def test_bundled_plan_takes_production_from_the_environment() -> None:
    environ = {
        "APP_URL": "https://farms.example",
        "DATABASE_URL": "postgresql://app:pg-s3cret@db.example:5432/farms",
        "REDIS_URL": "https://eu1.upstash.io",
        "UPSTASH_REDIS_REST_TOKEN": "AXtoken",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/xyz",
    }
    loaded = load_config(BUNDLED, environ=environ)
    plan = loaded.plan
    assert plan.sources["farms"].settings["url"] == "https://farms.example/api/farms"
    assert plan.sources["cache"].settings["token"] == "AXtoken"
    assert loaded.config.notify is not None
    assert loaded.config.notify.slack == environ["SLACK_WEBHOOK_URL"]
    assert {"pg-s3cret", "AXtoken", environ["SLACK_WEBHOOK_URL"]} <= plan.secrets


def test_state_and_audit_paths_follow_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ops"
    folder.mkdir()
    text = EXAMPLE.read_text().replace('audit = ".cockpit/audit.jsonl"', 'audit = "/var/x.jsonl"')
    (folder / "cockpit.toml").write_text(text + '\n[keymap]\nadvance = "ctrl+a"\n')
    plan = load_plan(folder / "cockpit.toml", environ={})
    assert plan.state_path == folder / ".cockpit" / "state.toml"
    assert plan.audit_path == Path("/var/x.jsonl")
    assert plan.keymap == {"advance": "ctrl+a"}


def test_optional_forms_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    path.write_text(
        '[rollout]\nname = "r"\ntheme = "high-contrast"\n'
        '[sources.prom]\nkind = "prometheus"\nserver = "http://prom:9090"\n'
        'queries = { req_rate = "sum(rate(http_requests_total[1m]))" }\n'
        '[sources.app]\nkind = "logs"\ncommand = ["tail", "-F", "app.log"]\n'
        '[sources.web]\nkind = "http"\nurl = "https://x/"\nmethod = "head"\nexpect = [200, 204]\n'
        '[preflight]\nrules = ["prom.req_rate > 0", "app.errors_per_min < 5"]\n'
        '[[phase]]\nname = "all"\ntraffic = 100\nsuccess = ["prom.req_rate > 10 for 5m"]\n'
        '[traffic]\nhttp = { url = "https://flags/x", json = { percent = "{percent}" } }\n'
        '[[rollback]]\nname = "off"\ntraffic = 0\n'
        '[notify]\nwebhook = "http://hooks/x"\nsummary_every = "1h"\n'
    )
    loaded = load_config(path, environ={})
    plan = loaded.plan
    assert plan.theme == "high-contrast"
    assert plan.catalog.unit("prom.req_rate") is Unit.NUMBER
    assert plan.sources["prom"].settings["queries"] == {
        "req_rate": "sum(rate(http_requests_total[1m]))"
    }
    assert plan.sources["app"].every_s == 2.0
    assert plan.sources["app"].settings["error"] == "(?i)error"
    assert plan.sources["web"].settings["method"] == "HEAD"
    assert plan.sources["web"].settings["expect"] == (200, 204)
    assert [r.metric for r in plan.preflight_rules] == ["prom.req_rate", "app.errors_per_min"]
    assert plan.phases[0].success[0].for_s == 300.0
    assert plan.traffic is not None
    assert plan.traffic.run is None
    assert loaded.config.traffic is not None
    http = loaded.config.traffic.http
    assert http is not None
    assert (http.method, http.body) == ("POST", {"percent": "{percent}"})
    assert plan.rollbacks[0].title == "off"  # the title defaults to the name
    assert plan.auto_rollback is None


def test_find_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("cockpit.toml", "from-env.toml", "explicit.toml"):
        Path(name).write_text("")
    env = {"COCKPIT_CONFIG": "from-env.toml"}
    assert find_config("explicit.toml", env) == Path("explicit.toml")
    assert find_config(None, env) == Path("from-env.toml")
    assert find_config(None, {}) == Path("cockpit.toml")
    assert find_config(None, {"COCKPIT_CONFIG": ""}) == Path("cockpit.toml")


def test_find_config_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("cockpit.toml").write_text("")  # present, but a named file wins and is missing
    with pytest.raises(ConfigNotFound) as caught:
        find_config("ops/plan.toml", {})
    assert str(caught.value) == "ops/plan.toml: no such file (named by -c)"
    with pytest.raises(ConfigNotFound) as caught:
        find_config(None, {"COCKPIT_CONFIG": "gone.toml"})
    assert str(caught.value) == "gone.toml: no such file (named by $COCKPIT_CONFIG)"


def test_no_config_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFound) as caught:
        find_config(None, {})
    assert str(caught.value) == (
        "no cockpit.toml found (looked at -c, $COCKPIT_CONFIG, ./cockpit.toml): "
        "run `cockpit init` to write one, or `cockpit demo` to try it"
    )
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("phase", 1, "success", 0), "phase[2].success[1]"),
        (("rollback", 2, "run", 0, 1), "rollback[3].run[1][2]"),
        (("sources", "farms", "url"), "sources.farms.url"),
        (("baseline", "farms.p95"), 'baseline."farms.p95"'),
        (("auto_rollback", "method"), "auto_rollback.method"),
        ((), ""),
    ],
)
def test_key_text(path: tuple[str | int, ...], text: str) -> None:
    assert key_text(path) == text


_EXAMPLE_TEXT = EXAMPLE.read_text()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_EXAMPLE_TEXT) - 1), st.integers(0, 12), st.text(max_size=6))
def test_any_damage_gives_a_config_error_or_a_plan(cut: int, length: int, insert: str) -> None:
    """Whatever the file says, the answer is a Plan or one ConfigError line, never a crash."""
    text = _EXAMPLE_TEXT[:cut] + insert + _EXAMPLE_TEXT[cut + length :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cockpit.toml"
        path.write_text(text, encoding="utf-8")
        try:
            outcome: Plan | str = load_plan(path, environ={})
        except ConfigError as err:
            outcome = str(err)
    if isinstance(outcome, str):
        assert "\n" not in outcome
        assert outcome.startswith(f"{path}:")
    else:
        assert outcome.phases
