"""A step of an action (a command, an HTTP request, a manual instruction or a verify URL), what
became of it, and `mask`, which hides every secret in what people see of either.

Its own module so that the process runner (cockpit.core.process) and the step lists and HTTP
actions (cockpit.core.actions) share these types without importing each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cockpit.core.plan import HttpRequest

OUTPUT_LIMIT = 64 * 1024  # keep the last 64 KiB of an action's output


@dataclass(frozen=True)
class Step:
    """One thing to do: a command, a manual instruction, or a URL that must answer 2xx."""

    argv: tuple[str, ...] = ()  # with shell, exactly one string: the /bin/sh -c script
    http: HttpRequest | None = None  # placeholders already filled
    stdin: str | None = None
    manual: str | None = None
    verify_url: str | None = None
    timeout_s: float = 300.0
    verify_for_s: float = 60.0
    shell: bool = False

    def describe(self, secrets: Iterable[str] = ()) -> str:
        """What will run, as a person would type it, with every secret masked.

        Each value is masked before it is quoted, so quoting cannot split a secret apart.
        """
        secrets = tuple(secrets)
        if self.manual is not None:
            text = f"manual: {mask(self.manual, secrets)}"
        elif self.verify_url is not None:
            text = f"verify: GET {mask(self.verify_url, secrets)} answers 2xx"
        elif self.http is not None:
            text = f"http: {self.http.method} {mask(self.http.url, secrets)}"
            if self.http.json is not None:
                text += f" {json.dumps(_mask_value(self.http.json, secrets))}"
        elif self.shell:
            text = "run: sh -c " + _sh_quote(mask(self.argv[0], secrets))
        else:
            text = "run: " + " ".join(_quote(mask(a, secrets)) for a in self.argv)
        if self.stdin is not None and self.manual is None:
            text += f"  (stdin: {mask(self.stdin, secrets)!r})"
        return mask(text, secrets)


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    output: str = ""
    returncode: int | None = None
    duration_s: float = 0.0
    error: str | None = None  # one line: why it failed

    def summary(self) -> str:
        if self.ok:
            return f"ok in {self.duration_s:.1f}s"
        return self.error or "failed"


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value with ****; longest first so overlapping ones all go."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w@%+=:,./{}-]+", arg) else repr(arg)


def _sh_quote(script: str) -> str:
    """Single quotes, as sh reads them: the script exactly as /bin/sh -c gets it."""
    return "'" + script.replace("'", "'\"'\"'") + "'"


def _mask_value(value: object, secrets: tuple[str, ...]) -> object:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [_mask_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v, secrets) for k, v in value.items()}
    return value
