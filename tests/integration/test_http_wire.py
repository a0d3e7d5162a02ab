"""HttpSource's h11 path (plain http://) against real servers on loopback.

`RawServer` answers byte for byte what each test scripts, in the test's own event loop, and
logs every connection and request, so reuse, closes and framing are checked against what the
server saw. Failures are compared with what httpx makes of the same server: they must read the
same to the rest of the cockpit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from cockpit import __version__
from cockpit.core.plan import SourceSpec
from cockpit.core.sources.base import PollResult, Reading, SourceDown
from cockpit.core.sources.http import HttpSource, new_client
from cockpit.core.sources.http_wire import WireClient
from tests.servers.bad_servers import BadServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
CHUNK = b"x" * 65536


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


# A script answers one request; it returns whether to keep the connection open.
Script = Callable[[Seen, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def keep_alive(seen: Seen, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    w.write(OK.replace(b"ok\n", b"") if seen.method == "HEAD" else OK)
    return True


@dataclass
class RawServer:
    script: Script = keep_alive
    connections: int = 0  # accepted
    ended: int = 0  # closed, by either side
    requests: list[Seen] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")[:-2]
                method, target, _ = line.split(" ")
                headers = [(k, v.strip()) for k, v in (f.split(":", 1) for f in fields)]
                seen = Seen(method, target, headers)
                self.requests.append(seen)
                keep = await self.script(seen, reader, writer)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._writers.discard(writer)
            self.ended += 1


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    raw = RawServer()
    await raw.start()
    try:
        yield raw
    finally:
        await raw.stop()


MakeSource = Callable[..., HttpSource]


@pytest.fixture
async def make_source() -> AsyncIterator[MakeSource]:
    made: list[HttpSource] = []
    clients: list[httpx.AsyncClient] = []

    def make(
        url: str, timeout_s: float = 1.0, via_httpx: bool = False, **settings: object
    ) -> HttpSource:
        base: dict[str, object] = {"url": url, "window_s": 60.0, "headers": {}, "expect": None}
        client = new_client() if via_httpx else None
        if client is not None:
            clients.append(client)
        source = HttpSource(
            SourceSpec("api", "http", 1.0, timeout_s, base | settings), client=client
        )
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()
    for client in clients:
        await client.aclose()


async def poll(source: HttpSource) -> PollResult:
    """As the scheduler polls: wrapped in a wait_for the source's own deadline beats."""
    return await asyncio.wait_for(source.poll(time.perf_counter()), source.spec.timeout_s + 1)


async def ok(source: HttpSource) -> Reading:
    result = await poll(source)
    assert isinstance(result, Reading), result
    assert result.details.get("last_status") == 200, result.details
    return result


def wire(source: HttpSource) -> WireClient:
    assert isinstance(source.client, WireClient)
    return source.client


async def until(what: str, check: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s}s: {what}")
        await asyncio.sleep(0.005)


async def test_one_kept_alive_connection_serves_every_probe(
    server: RawServer, make_source: MakeSource
) -> None:
    source = make_source(server.url)
    for _ in range(5):
        result = await ok(source)
    assert server.connections == 1
    assert len(server.requests) == 5
    assert result.details["protocol"] == "HTTP/1.1"
    assert result.values["error_rate"] == 0.0
    client = wire(source)
    assert client.kept
    await source.close()
    assert client.is_closed
    assert not client.kept
    await until("the server saw the close", lambda: server.ended == 1)


async def test_the_request_is_what_httpx_would_send(
    server: RawServer, make_source: MakeSource
) -> None:
    url = server.url.replace("/health", "/a/b?x=1&y=%20")
    await ok(make_source(url, headers={"X-Probe": "yes"}))
    await ok(make_source(server.url, method="head", headers={"user-agent": "mine/1"}))
    await ok(make_source(f"http://127.0.0.1:{server.port}"))
    first, second, third = server.requests
    assert (first.method, first.target) == ("GET", "/a/b?x=1&y=%20")
    assert first.header("Host") == f"127.0.0.1:{server.port}"
    assert first.header("User-Agent") == f"cockpit/{__version__}"
    assert first.header("X-Probe") == "yes"
    assert first.header("Content-Length") is None  # no body
    assert (second.method, second.header("User-Agent")) == ("HEAD", "mine/1")
    assert [k for k, _ in second.headers].count("user-agent") == 1
    assert third.target == "/"


async def test_head_answers_have_no_body_and_keep_the_connection(
    server: RawServer, make_source: MakeSource
) -> None:
    async def head(seen: Seen, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")  # the GET's length
        return True

    server.script = head
    source = make_source(server.url, method="HEAD")
    for _ in range(3):
        await ok(source)
    assert server.connections == 1
    assert [seen.method for seen in server.requests] == ["HEAD"] * 3


@pytest.mark.parametrize("how", ["connection_close", "http_1_0", "close_delimited"])
async def test_a_server_that_closes_after_each_answer_is_reconnected(
    server: RawServer, make_source: MakeSource, how: str
) -> None:
    answers = {
        "connection_close": OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
        "http_1_0": OK.replace(b"HTTP/1.1", b"HTTP/1.0"),
        "close_delimited": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + CHUNK,
    }

    async def close(seen: Seen, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(answers[how])
        return False

    server.script = close
    source = make_source(server.url)
    for _ in range(3):
        result = await ok(source)
        assert not wire(source).kept  # dropped at once, not found dead by the next probe
    assert server.connections == 3
    assert result.values["error_rate"] == 0.0


async def test_an_idle_connection_the_server_closed_is_not_reused(
    server: RawServer, make_source: MakeSource
) -> None:
    async def then_close(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(OK)  # keep-alive, as far as the answer says
        return False  # then an idle timeout closes it

    server.script = then_close
    source = make_source(server.url)
    for count in (1, 2, 3):
        await ok(source)
        await until("the close seen by the client", lambda: not wire(source).kept)
        assert server.connections == count
    assert source.failures_in_a_row == 0


async def test_chunked_bodies_are_read_to_the_end_and_the_connection_reused(
    server: RawServer, make_source: MakeSource
) -> None:
    async def chunked(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for size in (1, 5000, 70000):
            w.write(b"%x\r\n%s\r\n" % (size, b"y" * size))
            await w.drain()
        w.write(b"0\r\nX-Trailer: t\r\n\r\n")
        return True

    server.script = chunked
    source = make_source(server.url)
    for _ in range(3):
        await ok(source)
    assert server.connections == 1
    assert wire(source).kept


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_large_body_is_discarded_as_it_arrives(
    server: RawServer, make_source: MakeSource, framing: str
) -> None:
    size = 32 * 1024 * 1024

    async def large(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if framing == "length":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        else:
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        frame = CHUNK if framing == "length" else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
        for _ in range(size // len(CHUNK)):
            w.write(frame)
            await w.drain()
        if framing == "chunked":
            w.write(b"0\r\n\r\n")
        return True

    server.script = large
    source = make_source(server.url, timeout_s=30.0)
    await ok(source)  # connected, warm
    tracemalloc.start()
    try:
        await ok(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, peak  # a few read buffers, not 32 MiB
    assert server.connections == 1


async def test_a_refused_port_is_down_after_three_probes_as_with_httpx(
    make_source: MakeSource,
) -> None:
    with BadServer(mode="refuse") as bad:
        source = make_source(bad.url(path="/health"))
        results = [await poll(source) for _ in range(3)]
    assert results[2] == SourceDown("connection refused (3 probes in a row)")
    assert isinstance(results[0], Reading)
    assert results[0].details["last_error"] == "connection refused"


async def both_read(make_source: MakeSource, url: str, timeout_s: float = 1.0) -> str:
    """What the h11 path and httpx each make of one server's answer; they must agree."""
    errors = []
    for via_httpx, client in ((False, WireClient), (True, httpx.AsyncClient)):
        source = make_source(url, timeout_s=timeout_s, via_httpx=via_httpx)
        result = await poll(source)
        assert isinstance(source.client, client)
        assert isinstance(result, Reading), result
        assert result.values["error_rate"] == 1.0
        errors.append(str(result.details["last_error"]))
    assert errors[0] == errors[1], errors
    return errors[0]


@pytest.mark.parametrize("mode", ["garbage", "truncated", "silent"])
async def test_a_bad_server_reads_the_same_as_with_httpx(
    make_source: MakeSource, mode: str
) -> None:
    with BadServer(mode=mode) as bad:
        error = await both_read(make_source, bad.url(path="/health"), timeout_s=0.3)
    assert (
        error
        == {
            "garbage": "bad answer: illegal request line",  # h11's words for a bad status line
            "truncated": "bad answer: peer closed connection without sending complete message "
            "body (received 47 bytes, expected 4096)",
            "silent": "timed out after 0.3s",
        }[mode]
    )


async def test_no_answer_and_a_reset_read_the_same_as_with_httpx(
    server: RawServer, make_source: MakeSource
) -> None:
    async def hang_up(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        return False

    server.script = hang_up
    error = await both_read(make_source, server.url)
    assert error == "bad answer: Server disconnected without sending a response."

    async def reset(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # closed with a linger of 0: an RST
        return False

    server.script = reset
    error = await both_read(make_source, server.url)
    assert error == "connection reset by the server"


async def test_a_timeout_mid_body_drops_the_connection(
    server: RawServer, make_source: MakeSource
) -> None:
    stall = asyncio.Event()

    async def stalls(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if not stall.is_set():
            w.write(OK)
            return True
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
        await w.drain()
        await r.read()  # until the client hangs up
        return False

    server.script = stalls
    source = make_source(server.url, timeout_s=0.3)
    await ok(source)
    stall.set()
    result = await poll(source)
    assert isinstance(result, Reading)
    assert result.details["last_error"] == "timed out after 0.3s"
    assert not wire(source).kept
    await until("the server saw the hang-up", lambda: server.ended == 1)
    stall.clear()
    await ok(source)
    assert server.connections == 2


async def test_a_probe_cancelled_by_a_shutdown_closes_its_connection(
    server: RawServer, make_source: MakeSource
) -> None:
    asked = asyncio.Event()

    async def hangs(seen: Seen, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        asked.set()
        await r.read()  # never answers; ends when the client hangs up
        return False

    server.script = hangs
    source = make_source(server.url, timeout_s=30.0)
    task = asyncio.create_task(source.poll(time.perf_counter()))
    await asked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.view(time.time()).count == 0  # a shutdown, not an attempt
    assert not wire(source).kept
    await until("the server saw the hang-up", lambda: server.ended == 1)


async def test_a_proxy_from_the_environment_leaves_the_probe_to_httpx(
    server: RawServer, make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    target = "http://upstream.test:8080/health"  # only the proxy knows where that is
    proxied = make_source(target)
    await ok(proxied)
    assert isinstance(proxied.client, httpx.AsyncClient)
    assert server.requests[-1].target == target  # absolute form: it went through the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = make_source(server.url)
    await ok(direct)
    assert isinstance(direct.client, WireClient)
    assert server.requests[-1].target == "/health"
