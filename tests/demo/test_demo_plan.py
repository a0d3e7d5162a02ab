"""The demo plan: the whole bundled plan, its durations shortened, pointed at the demo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cockpit.core.config import load_config, load_plan
from cockpit.core.plan import Plan
from cockpit.demo.flags import bucket
from cockpit.demo.plan import CANARY_USER, DemoTarget, bundled_plan, write_demo_plan
from cockpit.demo.timescale import NOTICE, calendar, duration_text, reaction

APP = "http://127.0.0.1:5001"
URLS = {
    "APP_URL": APP,
    "REDIS_URL": "redis://127.0.0.1:5002/0",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5003/market",
}
REAL = DemoTarget(URLS, load_per_s=40.0)
IN_PROCESS = DemoTarget({"APP_URL": APP}, load_per_s=40.0)


@pytest.fixture(scope="module")
def bundled() -> Plan:
    return load_plan(bundled_plan(), URLS)


@pytest.fixture
def demo(tmp_path: Path) -> Plan:
    return write_demo_plan(tmp_path, REAL)


def test_time_scale() -> None:
    assert calendar(48 * 3600) == 60
    assert calendar(72 * 3600) == 90
    assert (reaction(30), reaction(60), reaction(300), reaction(600), reaction(1800)) == (
        10,
        12,
        20,
        25,
        34,
    )
    lengths = [0.5, 2, 7, 30, 60, 300, 3600, 86400]
    shrunk = [reaction(s) for s in lengths]
    assert shrunk == sorted(shrunk)  # a longer window stays at least as long
    assert all(0 < after <= before for before, after in zip(lengths, shrunk, strict=True))
    assert duration_text(1.25) == "1.25s"
    assert duration_text(60) == "60s"
    assert len(NOTICE) <= 30


def test_the_whole_plan_is_there(demo: Plan, bundled: Plan) -> None:
    assert demo.name == f"{bundled.name} (demo)"
    assert [(p.name, p.traffic, p.checks) for p in demo.phases] == [
        (p.name, p.traffic, p.checks) for p in bundled.phases
    ]
    for ours, theirs in zip(demo.phases, bundled.phases, strict=True):
        assert [_without_for(r.text) for r in ours.success + ours.failure] == [
            _without_for(r.text) for r in theirs.success + theirs.failure
        ]
    assert demo.preflight_checks == bundled.preflight_checks
    assert demo.after_rollback_checks == bundled.after_rollback_checks
    assert [m.name for m in demo.rollbacks] == [m.name for m in bundled.rollbacks]
    assert demo.auto_rollback is not None
    assert bundled.auto_rollback is not None
    assert demo.auto_rollback.method == bundled.auto_rollback.method == "flag"


def test_every_duration_is_shortened(demo: Plan, bundled: Plan) -> None:
    assert [p.bake_s for p in demo.phases] == [calendar(p.bake_s) for p in bundled.phases]
    assert [p.bake_s for p in demo.phases] == [60, 90, 90]

    def windows(plan: Plan) -> list[float | None]:
        assert plan.auto_rollback is not None
        rules = [*plan.preflight_rules, *plan.auto_rollback.when]
        for phase in plan.phases:
            rules += [*phase.success, *phase.failure]
        return [r.for_s for r in rules]

    assert windows(demo) == [s if s is None else reaction(s) for s in windows(bundled)]
    auto, theirs = demo.auto_rollback, bundled.auto_rollback
    assert auto is not None
    assert theirs is not None
    assert "http.error_rate > 2% for 20s" in [r.text for r in auto.when]
    assert (auto.grace_s, auto.unknown_for_s, auto.cooldown_s) == (10, 20, 25)
    assert auto.on_unknown == theirs.on_unknown
    etas = [(m.eta_s, t.eta_s) for m, t in zip(demo.rollbacks, bundled.rollbacks, strict=True)]
    assert all(ours == reaction(eta) for ours, eta in etas if eta is not None)
    for name, spec in demo.sources.items():
        original = bundled.sources[name]
        assert spec.every_s == original.every_s  # instruments keep real time
        assert spec.timeout_s == original.timeout_s
        window, was = spec.settings["window_s"], original.settings["window_s"]
        assert isinstance(window, float)
        assert isinstance(was, float)
        assert window < was
        if spec.kind == "http":
            assert window >= 20 * spec.every_s  # p95 needs 20 probes in the window


def test_everything_points_at_the_demo(demo: Plan) -> None:
    assert demo.sources["cache"].settings["url"] == URLS["REDIS_URL"]
    assert demo.sources["db"].settings["dsn"] == URLS["DATABASE_URL"]
    for name in ("farms", "farm", "search"):
        settings = demo.sources[name].settings
        assert str(settings["url"]).startswith(f"{APP}/api/farms")
        assert settings["headers"] == {"X-User": CANARY_USER}
    assert demo.traffic is not None
    assert demo.traffic.http is not None
    assert demo.traffic.http.url == f"{APP}/admin/rollout"
    assert demo.traffic.http.json == {"percent": "{percent}"}
    for method in demo.rollbacks:
        assert method.verify in (None, f"{APP}/api/health")
    text = demo.config_path.read_text()
    assert not re.search(r"127\.0\.0\.1:(8000|6379|5432)\b", text)
    assert demo.notify is None  # never posts to a real channel


def test_production_commands_become_stand_ins(demo: Plan) -> None:
    assert demo.traffic is not None
    commands = [demo.traffic.run, *demo.traffic.then]
    commands += [argv for method in demo.rollbacks for argv in method.run]
    assert commands
    for argv in commands:
        assert argv is not None
        assert argv[:2] == ("echo", "demo stand-in for:")
    assert demo.traffic.run is not None
    assert "vercel" in demo.traffic.run
    flag = demo.rollback("flag")
    assert flag is not None
    assert flag.traffic == 0
    assert not flag.run
    disable = demo.rollback("disable")
    assert disable is not None
    assert disable.manual


def test_the_probes_are_a_first_cohort_user(demo: Plan) -> None:
    assert bucket(CANARY_USER) < demo.phases[0].traffic


def test_database_baseline_is_the_demos_own_rate(demo: Plan, bundled: Plan) -> None:
    assert demo.baseline["db.queries_per_min"] == (40 + 3) * 60  # load + three 1 s probes
    latencies = {k: v for k, v in demo.baseline.items() if k != "db.queries_per_min"}
    assert latencies == {k: v for k, v in bundled.baseline.items() if k != "db.queries_per_min"}


def test_the_users_environment_does_not_leak_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/T000/B000/secret")
    monkeypatch.setenv("APP_URL", "https://production.example")
    monkeypatch.setenv("PHASE3_COMMIT", "abc123")
    plan = write_demo_plan(tmp_path, REAL)
    text = plan.config_path.read_text()
    assert "production.example" not in text
    assert "hooks.slack.example" not in text
    assert "abc123" not in text


def test_in_process_reads_the_exporter_pages(tmp_path: Path) -> None:
    plan = write_demo_plan(tmp_path, IN_PROCESS)
    cache, db = plan.sources["cache"], plan.sources["db"]
    assert (cache.kind, cache.settings["scrape"]) == ("prometheus", f"{APP}/metrics/cache")
    assert (db.kind, db.settings["scrape"]) == ("prometheus", f"{APP}/metrics/db")
    rules = [r.text for r in plan.phases[0].success + plan.phases[0].failure]
    assert "cache.hit_rate >= 0.3" in rules
    assert "db.mean_query_ms > 100 for 25s" in rules
    assert "cache.up == 0" in rules


def test_the_written_file_explains_itself_and_loads_alone(demo: Plan) -> None:
    text = demo.config_path.read_text()
    assert text.startswith("# The demo plan, written by `cockpit demo`")
    assert "1h = 1.25s" in text
    again = load_config(demo.config_path, {})  # no environment needed
    assert again.plan.phases == demo.phases


def _without_for(text: str) -> str:
    return re.sub(r"\s+for\s+\S+$", "", text)


def test_an_installed_cockpit_demos_its_starter_plan(tmp_path: Path) -> None:
    """A wheel has no repository cockpit.toml; its starter is the same plan, so it works too."""
    import cockpit

    starter = Path(cockpit.__file__).parent / "templates" / "starter.toml"
    plan = write_demo_plan(tmp_path, REAL, starter)
    assert [p.bake_s for p in plan.phases] == [60, 90, 90]
    assert plan.traffic is not None
    assert plan.traffic.run is not None
    assert plan.traffic.run[0] == "echo"
