"""`${VAR}` interpolation and the secrets it collects."""

from __future__ import annotations

from typing import Any

import pytest

from cockpit.core.interpolate import InterpolationError, expand, interpolate, passwords_in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${APP_URL}/api/farms", "http://prod.example/api/farms"),
        ("${MISSING:-http://127.0.0.1:8000}/api", "http://127.0.0.1:8000/api"),
        ("${APP_URL:-http://127.0.0.1:8000}/api", "http://prod.example/api"),
        ("${EMPTY:-fallback}", "fallback"),  # set but empty takes the default, as in a shell
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("$${APP_URL} stays", "${APP_URL} stays"),
        ("$$${APP_URL}", "$${APP_URL}"),  # read left to right: a lone $, then the escape
        ("{percent}", "{percent}"),  # filled at run time by actions, not here
        ("cost $5 and $HOME", "cost $5 and $HOME"),  # only ${...} is ours
        ("${A}${B}-${A}", "1 2-1 "),
        ("${MISSING:-a:-b}", "a:-b"),
        ("no variables", "no variables"),
        ("", ""),
    ],
)
def test_expand(text: str, expected: str) -> None:
    environ = {"APP_URL": "http://prod.example", "EMPTY": "", "A": "1 ", "B": "2"}
    assert expand(text, environ)[0] == expected


def test_unset_variable_without_default_names_it() -> None:
    with pytest.raises(InterpolationError) as caught:
        expand("${APP_URL}/api/farms", {})
    assert str(caught.value) == (
        "environment variable APP_URL is not set (write ${APP_URL:-default} to give a default)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${APP_URL:-http://x/api",
            "unterminated ${ in '${APP_URL:-http://x/api' (close it with }, or write $${ "
            "for a literal ${)",
        ),
        ("${}", "bad variable reference ${}: write ${NAME} or ${NAME:-default}"),
        ("${1X}", "bad variable reference ${1X}: write ${NAME} or ${NAME:-default}"),
        ("${A-b}", "bad variable reference ${A-b}: write ${NAME} or ${NAME:-default}"),
    ],
)
def test_malformed_references(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        expand(text, {"A": "x"})
    assert caught.value.message == message


def test_interpolate_walks_values_not_keys() -> None:
    data: dict[str, Any] = {
        "${KEY_NAME}": "${VALUE}",
        "sources": {"web": {"url": "${VALUE}/x", "expect": [200, 204], "every": "1s"}},
        "phase": [{"name": "${VALUE}", "traffic": 10, "checks": ["${VALUE}", "{percent}"]}],
        "flag": True,
    }
    result, _ = interpolate(data, {"VALUE": "v", "KEY_NAME": "k"})
    assert result == {
        "${KEY_NAME}": "v",
        "sources": {"web": {"url": "v/x", "expect": [200, 204], "every": "1s"}},
        "phase": [{"name": "v", "traffic": 10, "checks": ["v", "{percent}"]}],
        "flag": True,
    }
    assert data["sources"]["web"]["url"] == "${VALUE}/x"  # the input is left as it was


def test_error_carries_the_key_path() -> None:
    data = {"rollback": [{"run": [["git", "revert"]]}, {"run": [["git", "${COMMIT}"]]}]}
    with pytest.raises(InterpolationError) as caught:
        interpolate(data, {})
    assert caught.value.path == ("rollback", 1, "run", 0, 1)
    assert "COMMIT is not set" in caught.value.message


def test_secrets_from_variables_named_like_secrets() -> None:
    environ = {
        "UPSTASH_REDIS_REST_TOKEN": "tok-123",
        "DB_PASSWORD": "hunter2",
        "client_secret": "s3",
        "API_KEY": "k-9",
        "APP_URL": "http://prod.example",
        "EMPTY_TOKEN": "",
    }
    data = {
        "a": "Bearer ${UPSTASH_REDIS_REST_TOKEN}",
        "b": "${DB_PASSWORD}",
        "c": "${client_secret}",
        "d": ["${API_KEY}"],
        "e": "${APP_URL}",
        "f": "${EMPTY_TOKEN:-}",
        "g": "${MISSING_TOKEN:-default-is-not-secret}",
    }
    _, secrets = interpolate(data, environ)
    assert secrets == {"tok-123", "hunter2", "s3", "k-9"}


def test_secrets_from_urls_dsns_and_credential_keys() -> None:
    data = {
        "sources": {
            "db": {"dsn": "${DATABASE_URL}"},
            "pg": {"dsn": "host=db user=app password='p w' dbname=x"},
            "plain": {"dsn": "postgresql://postgres@127.0.0.1:5432/postgres"},
            "cache": {"url": "rediss://:r%40dis@cache:6380/0", "token": "upstash-token"},
            "web": {"url": "http://x", "headers": {"Authorization": "Bearer abc.def"}},
        },
        "notify": {"slack": "https://hooks.slack.com/services/T/B/X", "summary_every": "4h"},
    }
    environ = {"DATABASE_URL": "postgresql://app:s3cret@db:5432/app"}
    _, secrets = interpolate(data, environ)
    assert secrets == {
        "s3cret",
        "p w",
        "r%40dis",
        "r@dis",
        "upstash-token",
        "Bearer abc.def",
        "abc.def",
        "https://hooks.slack.com/services/T/B/X",
    }


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("postgresql://user:pass@host:5432/db", {"pass"}),
        ("see https://a:b@x and redis://:c@y", {"b", "c"}),
        ("postgresql://user@host/db", set()),
        ("http://host:8080/path", set()),
        ("dbname=x password=abc host=h", {"abc"}),
        ("PASSWORD = 'a b'", {"a b"}),
    ],
)
def test_passwords_in(text: str, found: set[str]) -> None:
    assert passwords_in(text) == found
