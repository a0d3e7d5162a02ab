"""Broken configs: each gives exactly one line naming the file, the line and the key path.

The corpus itself (one broken file each, its expected line in its header) is in
tests/corpus/configs and runs through the command line in test_config_corpus.py; here are
the properties of the error a single case does not show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cockpit.core.config import MAX_BYTES, ConfigError, ConfigNotFound, load_plan

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


def test_a_byte_order_mark_is_no_error(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())  # as Windows editors save
    assert load_plan(path, environ={}).name == "r"


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.toml"
    with path.open("wb") as f:
        f.write(MINIMAL.encode())
        f.truncate(MAX_BYTES + 1)  # sparse: NULs after the plan
    with pytest.raises(ConfigError) as caught:
        load_plan(path, environ={})
    assert str(caught.value) == (
        f"{path}: cannot read: larger than 1 MiB: not a plan (a log or a dump?)"
    )
    path.write_bytes(MINIMAL.encode().ljust(MAX_BYTES, b"\n"))  # at the limit: read
    assert load_plan(path, environ={}).name == "r"


def test_a_state_path_through_a_link_loop_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    path = tmp_path / "cockpit.toml"
    path.write_text(mini(old='name = "r"', new='name = "r"\nstate = "a/state.toml"'))
    if sys.version_info >= (3, 13):  # resolves a loop as it stands: nothing to refuse
        load_plan(path, environ={})
        return
    with pytest.raises(ConfigError) as caught:  # 3.11 and 3.12 refuse to resolve a loop
        load_plan(path, environ={})
    assert (caught.value.line, caught.value.key) == (3, "rollout.state"), str(caught.value)
