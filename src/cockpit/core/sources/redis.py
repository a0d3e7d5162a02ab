"""The redis source: INFO and PING over RESP (redis.asyncio) or Upstash's REST API (httpx).

Each poll sends INFO, then PING on the now-warm connection, timed with perf_counter, so
`latency_ms` is a round trip and not a connection setup (over REST it is the HTTPS round trip,
which is what an app using Upstash pays; `planned_at` is not counted in: lateness is the
scheduler's, not the server's). What INFO says becomes fields in
`redis_info`; this module only talks to the server and words its failures in one line.
No retries hide inside the client: a server that is down is reported on the poll that found
it, and the scheduler does the backing off.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, SourceDown, one_line
from cockpit.core.sources.redis_info import (
    CounterWindow,
    Sample,
    not_info,
    parse_info,
    redis_reading,
)


class Worded(Exception):
    """A failure already worded for a person (a REST error answer, a url that cannot work)."""


class _Backend(Protocol):
    where: str  # host[:port], for messages

    async def command(self, *args: str) -> object: ...

    async def close(self) -> None: ...


class _Unusable:
    """A url the client library refuses (say, a port that is not a number): every poll says so."""

    def __init__(self, url: str, problem: str) -> None:
        self.where = re.sub(r"//[^/@]*@", "//…@", url)  # never show a password
        self.problem = f"bad url {self.where!r}: {problem}"

    async def command(self, *args: str) -> object:
        raise Worded(self.problem)

    async def close(self) -> None:
        pass


class _RespBackend:
    """One redis.asyncio client; one connection in practice, since polls never overlap."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.where = f"{parts.hostname}:{parts.port or 6379}"
        extra: dict[str, Any] = {"password": token} if token else {}  # a password in the url wins
        self.client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # one attempt: report a dead server now
            protocol=2,  # RESP2: every server and proxy speaks it
            client_name="cockpit",  # so CLIENT LIST shows who is asking
            decode_responses=True,
            **extra,
        )
        self.client.set_response_callback("INFO", lambda response, **_: response)  # raw text

    async def command(self, *args: str) -> object:
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.client.aclose()


class _RestBackend:
    """Upstash REST: POST the command as a JSON array to the base URL, get {"result": ...}."""

    def __init__(
        self, url: str, token: str | None, timeout_s: float, client: httpx.AsyncClient | None
    ) -> None:
        self.url = httpx.URL(url)  # refuses a url it could never send to, here and now
        self.where = self.url.netloc.decode()
        self.timeout_s = timeout_s
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.owned = client is None
        self.client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)

    async def command(self, *args: str) -> object:
        response = await self.client.post(
            self.url, json=list(args), headers=self.headers, timeout=self.timeout_s
        )
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        said = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 401:
            hint = "check the token" if self.token else "no token configured"
            raise Worded(f"HTTP 401 from Upstash ({hint})")
        if response.status_code >= 400:
            text = said or response.reason_phrase or response.text[:100]
            raise Worded(f"HTTP {response.status_code} from Upstash: {one_line(str(text))}")
        if not isinstance(body, dict) or ("result" not in body and said is None):
            raise Worded(f"unexpected answer from Upstash: {one_line(response.text[:100])}")
        if said is not None:
            raise Worded(f"Upstash: {one_line(str(said))}")
        return body["result"]

    async def close(self) -> None:
        if self.owned:
            await self.client.aclose()


def describe(error: BaseException, where: str, timeout_s: float) -> str:
    """One line for a person: what went wrong talking to the server at `where`."""
    if isinstance(error, Worded):
        return str(error)
    if isinstance(error, TimeoutError | RedisTimeout | httpx.TimeoutException):
        return f"timed out after {timeout_s:g} s ({where})"
    text = one_line(error)
    if isinstance(error, AuthenticationError):
        if "username-password" in text:
            return f"auth failed (WRONGPASS {text})"
        if "required" in text.lower():
            return "auth failed (NOAUTH: the server wants a password and the url has none)"
        return f"auth failed ({text})"
    if isinstance(error, NoPermissionError):
        return f"permission denied ({text})"
    for cause in _chain(error):
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused ({where})"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {where.rsplit(':', 1)[0]} ({cause.strerror})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({where}): {one_line(cause)}"
    return f"{text} ({where})"


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


# What a server, a network or a REST proxy can do to a poll; anything else is a bug, and the
# scheduler catches it.
_EXPECTED = (RedisError, httpx.HTTPError, OSError, TimeoutError, Worded)


class RedisSource:
    """`kind = "redis"`: redis:// and rediss:// over RESP, https:// through Upstash's REST API.

    `http_client` (REST only) is borrowed, not closed: tests pass one with a MockTransport or
    a CA for a local TLS server. An http:// url also takes the REST path (for local stand-ins;
    the config only accepts https).
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        clock: Callable[[], float] = time.time,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        settings = spec.settings
        url = str(settings["url"])
        token = settings.get("token")
        token = str(token) if token else None
        window = settings.get("window_s", 60.0)
        window_s = float(window) if isinstance(window, int | float) else 60.0
        self._window = CounterWindow(window_s, max_span_s=2 * spec.every_s)
        self._backend: _Backend
        try:
            if urlsplit(url).scheme.lower() in ("https", "http"):
                self._backend = _RestBackend(url, token, spec.timeout_s, http_client)
            else:
                self._backend = _RespBackend(url, token, spec.timeout_s)
        except (ValueError, httpx.InvalidURL) as error:
            self._backend = _Unusable(url, one_line(error))
        self._closed = False

    async def poll(self, planned_at: float) -> PollResult:
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                text = await self._backend.command("INFO")
                started = time.perf_counter()
                await self._backend.command("PING")
                latency_ms = (time.perf_counter() - started) * 1000.0
        except _EXPECTED as error:
            return SourceDown(describe(error, self._backend.where, self.spec.timeout_s))
        if not isinstance(text, str):
            return SourceDown(f"INFO answered {type(text).__name__}, not text")
        info = parse_info(text)
        wrong = not_info(text, info)
        if wrong is not None:  # whatever answered, it is not Redis: no reading from it
            return SourceDown(f"{wrong} ({self._backend.where})")
        delta = self._window.add(Sample.from_info(self._clock(), info))
        return redis_reading(info, delta, latency_ms)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._backend.close()
