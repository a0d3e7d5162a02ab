"""`${VAR}` and `${VAR:-default}` in config values, and which resulting values are secrets.

Runs on the parsed TOML before validation: every string value is expanded (keys never are).
`$${` writes a literal `${`. Single-brace placeholders such as `{percent}` are not ours; the
actions fill them at run time. Secrets (to be masked in every output) are the values taken
from variables whose name says so (TOKEN, SECRET, PASSWORD, KEY), passwords inside URLs and
DSNs, and values of keys that name a credential (token, password, authorization ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cockpit.core.config_locate import KeyPath

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_NAME = re.compile(r"token|secret|password|key", re.IGNORECASE)
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api[-_]?key|authorization", re.I)
_HOOKS = frozenset({"slack", "webhook"})  # a webhook URL is its own credential
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:([^\s/@]+)@")
_NUL = "contains a NUL character (\\u0000): no file name, command or URL can hold one"
_DSN_PASSWORD = re.compile(r"\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']+))", re.IGNORECASE)


class InterpolationError(ValueError):
    """A value that cannot be expanded; `path` says where, the message says why (one line)."""

    def __init__(self, message: str, path: KeyPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def expand(text: str, environ: Mapping[str, str]) -> tuple[str, set[str]]:
    """`text` with every `${...}` filled from `environ`, and the secret values it took in."""
    out: list[str] = []
    secrets: set[str] = set()
    pos = 0
    while True:
        start = text.find("$", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out), secrets
        out.append(text[pos:start])
        if text.startswith("$${", start):
            out.append("${")
            pos = start + 3
        elif text.startswith("${", start):
            end = text.find("}", start + 2)
            if end < 0:
                raise InterpolationError(
                    f"unterminated ${{ in {text!r} (close it with }}, or write $${{ for a "
                    "literal ${)"
                )
            value, secret = _fill(text[start + 2 : end], environ)
            out.append(value)
            if secret and value:
                secrets.add(value)
            pos = end + 1
        else:  # a lone $ is just a character
            out.append("$")
            pos = start + 1


def _fill(inner: str, environ: Mapping[str, str]) -> tuple[str, bool]:
    name, has_default, default = inner.partition(":-")
    if not _NAME.fullmatch(name):
        raise InterpolationError(
            f"bad variable reference ${{{inner}}}: write ${{NAME}} or ${{NAME:-default}}"
        )
    secret = bool(_SECRET_NAME.search(name))
    value = environ.get(name, "")
    if value:
        return value, secret
    if has_default:
        return default, False
    if name in environ:  # set but empty, and no default: empty it is, as in a shell
        return value, secret
    raise InterpolationError(
        f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
    )


def interpolate(data: Any, environ: Mapping[str, str]) -> tuple[Any, frozenset[str]]:
    """Expand every string value in a parsed TOML tree; return it with the secrets found."""
    secrets: set[str] = set()
    result = _walk(data, environ, (), secrets)
    return result, frozenset(s for s in secrets if s)


def _walk(node: Any, environ: Mapping[str, str], path: KeyPath, secrets: set[str]) -> Any:
    if isinstance(node, str):
        try:
            value, taken = expand(node, environ)
        except InterpolationError as err:
            raise InterpolationError(err.message, path) from None
        if "\x00" in value:  # no file name, argv or URL can carry one: the OS would refuse
            raise InterpolationError(_NUL, path)
        secrets |= taken | passwords_in(value)
        if _names_a_secret(path):
            secrets.add(value)
            secrets.add(value.rsplit(" ", 1)[-1])  # "Bearer abc": the credential itself
        return value
    if isinstance(node, dict):
        for key in node:
            if "\x00" in key:
                raise InterpolationError(_NUL, path + (key,))
        return {key: _walk(item, environ, path + (key,), secrets) for key, item in node.items()}
    if isinstance(node, list):
        return [_walk(item, environ, path + (n,), secrets) for n, item in enumerate(node)]
    return node


def _names_a_secret(path: KeyPath) -> bool:
    """A credential by its key (`token`, an `Authorization` header) or a webhook URL."""
    keys = [key for key in path if isinstance(key, str)]
    if not keys:
        return False
    return bool(_SECRET_KEY.search(keys[-1])) or (keys[0] == "notify" and keys[-1] in _HOOKS)


def passwords_in(text: str) -> set[str]:
    """Passwords written in URLs (`scheme://user:pass@host`) or conninfo (`password=...`)."""
    found: set[str] = set()
    for match in _URL_PASSWORD.finditer(text):
        found.update({match.group(1), unquote(match.group(1))})
    for match in _DSN_PASSWORD.finditer(text):
        found.add(match.group(1) if match.group(1) is not None else match.group(2))
    return {value for value in found if value}
