"""A real HTTP/1.1 server on loopback whose delay, errors and failures the test controls.

Not `http.server`'s naive defaults: accepted sockets get TCP_NODELAY and each response goes
out in one write (headers and body together), so Nagle's algorithm and delayed ACKs do not
add ~40 ms to every answer. The server logs, per request, what it answered and how long it
took to handle it (ground truth for the tests).

Controls (set attributes or call `configure`): `delay_s`, `error_fraction` (500s from a seeded
RNG, so a run is repeatable), `status` (answer this status to everything, e.g. 429), `hang`
(accept and read the request, never answer), `stop()` / `start()` on the same port.

`h2_server` is a second, minimal server: HTTPS with HTTP/2 only, to show probes use HTTP/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest


@dataclass(frozen=True)
class Answer:
    """One request as the server saw it."""

    arrived: float  # wall clock when the handler started on it
    status: int | None  # None: hung, never answered
    handling_s: float  # handler start to last byte written (0 when unanswered)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close joins every handler thread

    def __init__(self, port: int, control: HttpServerControl) -> None:
        self.control = control
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout, cancelled probe) is expected here; anything else is not.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is exercised
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._answer()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _answer(self) -> None:
        started = time.perf_counter()
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        control, stopping = self.server.control, self.server.stopping
        status = control.decide()
        if status is None:
            control.record(Answer(arrived, None, 0.0))
            while control.hang and not stopping.wait(0.02):
                pass
            self.close_connection = True
            return
        if control.delay_s > 0 and stopping.wait(control.delay_s):
            self.close_connection = True
            return
        body = b"" if self.command == "HEAD" else f"{status}\n".encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)  # one write: no Nagle/delayed-ACK stall
        control.record(Answer(arrived, status, time.perf_counter() - started))

    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpServerControl:
    """Starts, stops and steers the server; `answers()` is its own log of what it did."""

    def __init__(self, *, seed: int = 1234) -> None:
        self.delay_s = 0.0
        self.error_fraction = 0.0
        self.status: int | None = None
        self.hang = False
        self.port = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    @property
    def running(self) -> bool:
        return self._server is not None

    def configure(
        self,
        *,
        delay_s: float = 0.0,
        error_fraction: float = 0.0,
        status: int | None = None,
        hang: bool = False,
    ) -> None:
        self.delay_s, self.error_fraction, self.status, self.hang = (
            delay_s,
            error_fraction,
            status,
            hang,
        )

    def decide(self) -> int | None:
        """The status for the next request (None: hang)."""
        if self.hang:
            return None
        if self.status is not None:
            return self.status
        with self._lock:
            return 500 if self._rng.random() < self.error_fraction else 200

    def record(self, answer: Answer) -> None:
        with self._lock:
            self._answers.append(answer)

    def answers(self, since: float = 0.0) -> list[Answer]:
        with self._lock:
            return [a for a in self._answers if a.arrived >= since]

    def wait_answers(self, count: int, timeout_s: float = 2.0) -> list[Answer]:
        """The log once it holds `count` answers (a handler logs just after its last write,
        so the client can read the answer before the server has logged it)."""
        deadline = time.monotonic() + timeout_s
        while len(answers := self.answers()) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return answers

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()

    def start(self) -> None:
        """Listen (again) on the same port as before, or on a free one the first time."""
        if self._server is not None:
            return
        server = _Server(self.port, self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every open connection (kept-alive ones too)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.stopping.set()
        server.shutdown()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join()


def self_signed(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client TLS contexts for 127.0.0.1, from a throwaway openssl certificate."""
    cert, key = folder / "h2-cert.pem", folder / "h2-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=h2"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    server.set_alpn_protocols(["h2"])
    return server, ssl.create_default_context(cafile=str(cert))


async def _serve_h2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A minimal HTTP/2 server (the h2 library's state machine): 200 "ok" to every request.
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    writer.write(connection.data_to_send())
    try:
        while data := await reader.read(65536):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = [(":status", "200"), ("content-length", "3")]
                    connection.send_headers(event.stream_id, headers)
                    connection.send_data(event.stream_id, b"ok\n", end_stream=True)
            writer.write(connection.data_to_send())
            await writer.drain()
    except (OSError, h2.exceptions.ProtocolError):
        pass  # the client went away
    finally:
        writer.close()


@dataclass(frozen=True)
class H2Server:
    url: str
    client_ssl: ssl.SSLContext  # trusts the server's certificate


@pytest.fixture
async def h2_server(tmp_path: Path) -> AsyncIterator[H2Server]:
    """HTTPS with HTTP/2 only (ALPN h2) on 127.0.0.1, in the test's event loop."""
    server_ssl, client_ssl = self_signed(tmp_path)
    server = await asyncio.start_server(_serve_h2, "127.0.0.1", 0, ssl=server_ssl)
    port = server.sockets[0].getsockname()[1]
    try:
        yield H2Server(f"https://127.0.0.1:{port}/health", client_ssl)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def http_server() -> Iterator[HttpServerControl]:
    control = HttpServerControl()
    control.start()
    try:
        yield control
    finally:
        control.configure()
        control.stop()
