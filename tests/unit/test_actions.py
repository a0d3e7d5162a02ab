"""Actions: placeholders, masking, step lists from the plan, shell = true in the config, and
verify URLs. Running commands is tested in test_process.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cockpit.core.actions import (
    Step,
    fill,
    mask,
    rollback_steps,
    traffic_steps,
    verify,
)
from cockpit.core.catalog import Catalog
from cockpit.core.config import ConfigError, load_plan
from cockpit.core.plan import Phase, Plan, RollbackMethod, TrafficAction


def make_plan(traffic: TrafficAction | None) -> Plan:
    return Plan(
        name="t",
        config_path=Path("c.toml"),
        state_path=Path("s.toml"),
        audit_path=Path("a.jsonl"),
        sources={},
        catalog=Catalog({}),
        phases=(Phase("one", 10, 0.0), Phase("two", 50, 0.0)),
        rollbacks=(
            RollbackMethod("instant", "Instant", 30.0, "now", run=(("vercel", "rollback"),)),
            RollbackMethod("flag", "Flag", 120.0, "app ok", traffic=0, verify="http://x/h"),
            RollbackMethod("disable", "Manual", None, "last", manual="edit the file"),
        ),
        traffic=traffic,
    )


TRAFFIC = TrafficAction(
    run=("vercel", "env", "add", "PCT", "production"),
    stdin="{percent}",
    then=(("vercel", "--prod", "--phase={phase}"),),
    verify="http://127.0.0.1:1/health",
)


def test_fill_only_known_placeholders() -> None:
    assert fill("{percent}% {phase} {method} {other}", {"percent": "50", "phase": "2"}) == (
        "50% 2 {method} {other}"
    )


def test_mask_hides_every_secret_longest_first() -> None:
    assert mask("token=abc123 and abc", ["abc", "abc123"]) == "token=**** and ****"
    assert mask("nothing", [""]) == "nothing"


def test_traffic_steps_fill_percent_and_phase() -> None:
    steps = traffic_steps(make_plan(TRAFFIC), 50, 2)
    assert steps[0].argv == ("vercel", "env", "add", "PCT", "production")
    assert steps[0].stdin == "50"
    assert steps[1].argv == ("vercel", "--prod", "--phase=2")
    assert steps[2].verify_url == "http://127.0.0.1:1/health"
    assert traffic_steps(make_plan(None), 50, 2) == []


def test_rollback_steps_per_method() -> None:
    plan = make_plan(TRAFFIC)
    assert [s.argv for s in rollback_steps(plan, "instant", 1)] == [("vercel", "rollback")]
    flag = rollback_steps(plan, "flag", 1)
    assert flag[0].stdin == "0"  # traffic = 0 reuses [traffic] at 0%
    assert flag[-1].verify_url == "http://x/h"
    assert [s.manual for s in rollback_steps(plan, "disable", 1)] == ["edit the file"]
    assert rollback_steps(plan, "nope", 1) == []


def test_describe_masks_secrets() -> None:
    step = Step(argv=("curl", "-H", "Authorization: Bearer s3cr3t"))
    assert "s3cr3t" not in step.describe(["s3cr3t"])
    assert "****" in step.describe(["s3cr3t"])


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/health", handler
    finally:
        server.shutdown()
        server.server_close()


def test_verify_passes_on_2xx(health_server: tuple[str, type[_Health]]) -> None:
    url, _ = health_server
    assert verify(Step(verify_url=url)).ok


def test_verify_retries_then_fails_on_5xx(health_server: tuple[str, type[_Health]]) -> None:
    url, handler = health_server
    handler.status = 503
    sleeps: list[float] = []
    result = verify(Step(verify_url=url, verify_for_s=0.0), sleep=sleeps.append)
    assert not result.ok
    assert result.error == f"verify failed: {url}: HTTP 503"


# -- shell = true ----------------------------------------------------------------------------

SHELL_CONFIG = """\
[rollout]
name = "r"

[[phase]]
name = "one"
traffic = 100

[traffic]
shell = true
run = ["vercel env add PCT production <<< {percent}"]
then = [["vercel --prod"]]

[[rollback]]
name = "instant"
shell = true
run = [["vercel rollback --yes && echo {method}"]]
"""


def test_describe_shows_the_shell_form_and_stdin_masked() -> None:
    step = Step(argv=("curl -H 'X-Token: s3cr3t' x",), shell=True, stdin="pw s3cr3t")
    assert step.describe(["s3cr3t"]) == (
        "run: sh -c 'curl -H '\"'\"'X-Token: ****'\"'\"' x'  (stdin: 'pw ****')"
    )
    # A secret that quoting would escape (quotes, backslashes) is masked before quoting.
    tricky = "a'b\\c"
    described = Step(argv=("tool", f"--pw={tricky}"), stdin=tricky).describe([tricky])
    assert described == "run: tool '--pw=****'  (stdin: '****')"


def test_shell_is_carried_from_the_config_into_the_steps(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    path.write_text(SHELL_CONFIG)
    plan = load_plan(path, environ={})
    traffic = traffic_steps(plan, 100, 1)
    assert [(s.argv, s.shell) for s in traffic] == [
        (("vercel env add PCT production <<< 100",), True),
        (("vercel --prod",), True),
    ]
    (rollback,) = rollback_steps(plan, "instant", 1)
    assert (rollback.argv, rollback.shell) == (("vercel rollback --yes && echo instant",), True)
    assert rollback.describe() == "run: sh -c 'vercel rollback --yes && echo instant'"
    plain = load_plan(write(tmp_path, SHELL_CONFIG.replace("shell = true\n", "")), environ={})
    assert plain.traffic is not None
    assert not plain.traffic.shell
    assert not rollback_steps(plain, "instant", 1)[0].shell


def write(folder: Path, text: str) -> Path:
    path = folder / "cockpit.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            'run = ["vercel env add PCT production <<< {percent}"]',
            'run = ["vercel", "env", "add"]',
            ":10: traffic.run: with shell = true a command is one string for /bin/sh -c, not 3 "
            'items: write ["vercel env add"]',
        ),
        (
            'then = [["vercel --prod"]]',
            'then = [["a"], ["vercel", "--prod"]]',
            ":11: traffic.then[2]: with shell = true a command is one string for /bin/sh -c, "
            'not 2 items: write ["vercel --prod"]',
        ),
        (
            'run = [["vercel rollback --yes && echo {method}"]]',
            'run = [["ok"], ["git", "revert", "it\'s"]]',
            ":16: rollback[1].run[2]: with shell = true a command is one string for /bin/sh -c, "
            "not 3 items: write [\"git revert 'it'\\\"'\\\"'s'\"]",
        ),
        (
            'run = [["vercel rollback --yes && echo {method}"]]',
            "traffic = 0",
            ":15: rollback[1].shell: shell = true applies to run commands, and there are none here",
        ),
    ],
)
def test_shell_config_errors(tmp_path: Path, old: str, new: str, error: str) -> None:
    assert old in SHELL_CONFIG
    path = write(tmp_path, SHELL_CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == f"{path}{error}"
