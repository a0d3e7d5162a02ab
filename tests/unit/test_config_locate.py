"""Line numbers of key paths in TOML source: every construct a config may use."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.core.config_locate import KeyPath, line_index, locate

REPO = Path(__file__).resolve().parents[2]


def paths_of(data: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key path in parsed TOML data: tables, keys and array elements."""
    found: list[KeyPath] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list):
        items = list(enumerate(data))
    for key, value in items:
        found.append(prefix + (key,))
        found.extend(paths_of(value, prefix + (key,)))
    return found


def test_tables_and_keys() -> None:
    text = '[rollout]\nname = "x"\n\n[sources.farms]\nkind = "http"\nurl = "u"\n'
    assert locate(text, ["rollout"]) == 1
    assert locate(text, ["rollout", "name"]) == 2
    assert locate(text, ["sources"]) == 4
    assert locate(text, ["sources", "farms"]) == 4
    assert locate(text, ["sources", "farms", "url"]) == 6


def test_missing_key_falls_back_to_closest_parent() -> None:
    text = '[rollout]\nname = "x"\n\n[sources.farms]\nkind = "http"\n'
    assert locate(text, ["sources", "farms", "url"]) == 4
    assert locate(text, ["sources", "farms", "headers", "X-Token"]) == 4
    assert locate(text, ["rollout", "theme"]) == 1


def test_absent_top_level_key_has_no_line() -> None:
    assert locate('[rollout]\nname = "x"\n', ["phase", 0, "name"]) is None
    assert locate("", ["rollout"]) is None
    assert locate('name = "x"\n', []) is None


def test_array_of_tables_is_counted() -> None:
    text = (
        '[[phase]]\nname = "a"\ntraffic = 10\n\n'
        '[[rollback]]\nname = "r"\n\n'
        '[[phase]]\nname = "b"\n\n'
        "[[phase]]\n# a comment\ntraffic = 100\n"
    )
    assert locate(text, ["phase", 0]) == 1
    assert locate(text, ["phase", 0, "traffic"]) == 3
    assert locate(text, ["phase", 1, "name"]) == 9
    assert locate(text, ["phase", 2]) == 11
    assert locate(text, ["phase", 2, "traffic"]) == 13
    assert locate(text, ["phase", 2, "name"]) == 11  # missing: the header of that phase
    assert locate(text, ["rollback", 0, "name"]) == 6


def test_subtable_of_an_array_element() -> None:
    text = "[[phase]]\nname = 'a'\n[[phase]]\nname = 'b'\n[phase.notes]\nwho = 'me'\n"
    assert locate(text, ["phase", 1, "notes"]) == 5
    assert locate(text, ["phase", 1, "notes", "who"]) == 6
    assert locate(text, ["phase", 0, "notes"]) == 1


def test_nested_array_of_tables_counts_per_parent() -> None:
    text = "[[a]]\n[[a.b]]\nx = 1\n[[a.b]]\nx = 2\n[[a]]\n[[a.b]]\nx = 3\n"
    assert locate(text, ["a", 0, "b", 1, "x"]) == 5
    assert locate(text, ["a", 1, "b", 0, "x"]) == 8


def test_dotted_keys() -> None:
    text = 'sources.farms.kind = "http"\n[rollout]\nfarms.url = "u"\nname . first = "n"\n'
    assert locate(text, ["sources", "farms", "kind"]) == 1
    assert locate(text, ["sources"]) == 1
    assert locate(text, ["rollout", "farms", "url"]) == 3
    assert locate(text, ["rollout", "name", "first"]) == 4


def test_quoted_keys() -> None:
    text = (
        "[baseline]\n"
        '"farms.p95" = "800ms"\n'
        "'db.queries_per_min' = 500\n"
        '"esc\\u0061ped\\"key" = 1\n'
        '[sources."my farms"]\n'
        "url = 'u'\n"
    )
    assert locate(text, ["baseline", "farms.p95"]) == 2
    assert locate(text, ["baseline", "db.queries_per_min"]) == 3
    assert locate(text, ["baseline", 'escaped"key']) == 4
    assert locate(text, ["sources", "my farms", "url"]) == 6
    assert locate(text, ["baseline", "farms"]) == 1  # not a key here: the table


def test_multi_line_array_elements() -> None:
    text = (
        "[[phase]]\n"
        "success = [\n"
        '    "a > 1",  # first\n'
        "\n"
        '    "b > 2",\n'
        '    "c > 3"]\n'
        "checks = ['x', 'y']\n"
    )
    assert locate(text, ["phase", 0, "success"]) == 2
    assert locate(text, ["phase", 0, "success", 0]) == 3
    assert locate(text, ["phase", 0, "success", 1]) == 5
    assert locate(text, ["phase", 0, "success", 2]) == 6
    assert locate(text, ["phase", 0, "success", 3]) == 2  # no such element: the key
    assert locate(text, ["phase", 0, "checks", 1]) == 7


def test_nested_arrays() -> None:
    text = "[[rollback]]\nrun = [\n  ['git', 'revert'],\n  [\n    'git',\n    'push',\n  ],\n]\n"
    assert locate(text, ["rollback", 0, "run", 0, 1]) == 3
    assert locate(text, ["rollback", 0, "run", 1]) == 4
    assert locate(text, ["rollback", 0, "run", 1, 1]) == 6


def test_inline_tables() -> None:
    text = (
        "[traffic]\n"
        'http = { method = "POST", url = "u", headers = { "X-Key" = "k" } }\n'
        "[sources.p]\n"
        "metrics = {\n"
        '  reqs = "r",\n'
        '  errs = "e" }\n'
        "items = [{ a = 1 },\n  { b = 2 }]\n"
    )
    assert locate(text, ["traffic", "http", "url"]) == 2
    assert locate(text, ["traffic", "http", "headers", "X-Key"]) == 2
    assert locate(text, ["sources", "p", "metrics", "errs"]) == 6
    assert locate(text, ["sources", "p", "items", 1, "b"]) == 8


def test_strings_that_look_like_syntax_are_skipped() -> None:
    text = (
        "[rollback]\n"
        'manual = """\n'
        "[phase]\n"
        'name = "fake" # not a key\n'
        '"""\n'
        "literal = '''\n"
        "[[phase]]\n"
        "'''\n"
        'hash = "a # b [c] = {d}"\n'
        'esc = "quote \\" ] , }" # ] trailing\n'
        'quotes = """ends with quotes"""""\n'
        "after = 1\n"
    )
    assert tomllib.loads(text)  # the text is valid TOML
    assert locate(text, ["phase"]) is None
    assert locate(text, ["rollback", "literal"]) == 6
    assert locate(text, ["rollback", "hash"]) == 9
    assert locate(text, ["rollback", "esc"]) == 10
    assert locate(text, ["rollback", "after"]) == 12


def test_line_continuation_in_multi_line_string() -> None:
    text = 'manual = """one \\\n  two \\""" three"""\nnext = 1\n'
    assert tomllib.loads(text)["next"] == 1
    assert locate(text, ["next"]) == 3


def test_scalars_of_every_kind() -> None:
    text = (
        "a = 1_000\nb = -3.5e2\nc = true\nd = 1979-05-27 07:32:00Z\ne = inf\n"
        "f = [1979-05-27, 0x1F, nan]\ng = 'last'\n"
    )
    assert locate(text, ["d"]) == 4
    assert locate(text, ["f", 2]) == 6
    assert locate(text, ["g"]) == 7


def test_crlf_line_endings() -> None:
    text = '[rollout]\r\nname = "x"\r\n\r\n[[phase]]\r\ntraffic = 1\r\n'
    assert locate(text, ["phase", 0, "traffic"]) == 5


def test_text_it_cannot_follow_keeps_what_was_found() -> None:
    text = '[rollout]\nname = "x"\n???\n[later]\nkey = 1\n'
    assert locate(text, ["rollout", "name"]) == 2
    assert locate(text, ["later", "key"]) is None
    assert locate("a = [1, 2", ["a", 1]) == 1
    assert locate('a = "unterminated', ["a"]) == 1
    assert locate("[", ["a"]) is None


@pytest.mark.parametrize("name", ["cockpit.toml", "tests/data/issue_example.toml"])
def test_every_path_of_a_real_config_is_found_exactly(name: str) -> None:
    text = (REPO / name).read_text()
    index = line_index(text)
    paths = paths_of(tomllib.loads(text))
    assert len(paths) > 100
    assert [p for p in paths if p not in index] == []


_keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8)
_scalars = st.one_of(st.integers(), st.booleans(), st.text(max_size=20), st.floats(allow_nan=False))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_keys, inner, min_size=1, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5), st.booleans())
def test_every_path_of_any_document_is_found(data: dict[str, Any], multiline: bool) -> None:
    text = tomli_w.dumps(data, multiline_strings=multiline)
    index = line_index(text)
    for path in paths_of(tomllib.loads(text)):
        assert path in index, (path, text)
        line = text.split("\n")[index[path] - 1]
        if isinstance(path[-1], str) and path[-1].isidentifier():
            assert path[-1] in line, (path, line)
