"""The state file and the audit log must not overwrite the plan or each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.core.config import ConfigError, load_plan

PLAN = """[rollout]
name = "t"
state = "{state}"
audit = "{audit}"

[[phase]]
name = "one"
traffic = 10
"""


@pytest.mark.parametrize(
    ("state", "audit", "message"),
    [
        ("cockpit.toml", "a.jsonl", "c/cockpit.toml:3: rollout.state: the state file cannot be"),
        (
            "s.toml",
            "./cockpit.toml",
            "c/cockpit.toml:4: rollout.audit: the audit log cannot be this",
        ),
        ("same", "same", "c/cockpit.toml:4: rollout.audit: the audit log cannot be the state file"),
    ],
)
def test_colliding_paths_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, audit: str, message: str
) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cockpit.toml").write_text(PLAN.format(state=state, audit=audit))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_plan(Path("c/cockpit.toml"), {})
    assert str(caught.value).startswith(message)
