"""A server that misbehaves on purpose: one loopback TCP port whose behaviour the test switches
while a client talks to it, optionally in front of a real server.

Modes:
- `pass`: forward both ways to the real server on `upstream` (the healthy state);
- `slow`: forward, but hold every chunk from the real server for `delay_s` (slow beyond a
  timeout, yet answering in the end);
- `refuse`: nothing listens on the port (a killed server);
- `silent`: accept and read, never answer (a hung server, a black-holing firewall);
- `garbage`: answer every chunk with bytes that no protocol accepts (or with `garbage`, which
  a test may set: say `b"+OK\\r\\n"`, which is well-formed RESP yet no INFO);
- `truncated`: answer HTTP 200 promising a longer body than it sends, then close;
- `wrong_type`: answer HTTP 200 with an HTML page (a proxy's sign-in page, say), then close.

Switching mode drops every open connection, as a restarted server would, so the next
connection sees the new behaviour. Threads only (no event loop), so a busy test loop never
slows the server down; `close()` (or leaving `with BadServer(...) as bad:`) joins every
thread it started.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

MODES = ("pass", "slow", "refuse", "silent", "garbage", "truncated", "wrong_type")

GARBAGE = b"\x00\xff\x13\x37 not any protocol \xfe\xfd\r\n\x00\x00\r\n" * 4

TRUNCATED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
    b"Content-Length: 4096\r\n\r\n"
    b"# TYPE queue_depth gauge\nqueue_depth 5\nqueue_de"
)

_PAGE = (
    b"<!doctype html>\n<html><head><title>Sign in</title></head>\n"
    b'<body><form action="/login" method="post"><input name="user"></form></body></html>\n'
)
WRONG_TYPE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_PAGE)
) + _PAGE

_CHUNK = 65536
_POLL_S = 0.02  # how often the accept loop looks for a stop


class BadServer:
    """One misbehaving port; see the module docstring for the modes."""

    def __init__(
        self, upstream: int | None = None, *, mode: str = "silent", delay_s: float = 2.0
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.upstream = upstream
        self.mode = mode
        self.delay_s = delay_s
        self.port = 0
        self.accepted = 0  # connections accepted so far, in any mode
        self.garbage = GARBAGE  # what the garbage mode answers
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._dropped = threading.Event()  # set when the connections of this mode must end
        self._listener: socket.socket | None = None
        self._stop_accepting = threading.Event()

    def url(self, scheme: str = "http", path: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> BadServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.mode != "refuse":
            self._listen()
        elif not self.port:
            self._listen()  # take a port now, so the test knows it, then stop listening
            self._unlisten()

    def set_mode(self, mode: str, *, delay_s: float | None = None) -> None:
        """Behave as `mode` from now on; every open connection is dropped."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self.mode = mode
            if delay_s is not None:
                self.delay_s = delay_s
            dropped, self._dropped = self._dropped, threading.Event()
            connections = list(self._open)
        dropped.set()
        for conn in connections:
            with contextlib.suppress(OSError):  # its handler may have closed it already
                conn.shutdown(socket.SHUT_RDWR)
        if mode == "refuse":
            self._unlisten()
        elif self._listener is None:
            self._listen()

    def close(self) -> None:
        self.set_mode("refuse")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)

    # -- listening ------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop_accepting = stop = threading.Event()
        self._spawn("bad-accept", self._accept, listener, stop)

    def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            self._stop_accepting.set()
            with self._lock:
                accepting = [t for t in self._threads if t.name == "bad-accept"]
            for thread in accepting:
                thread.join(timeout=10)
            listener.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.accepted += 1
                mode, dropped = self.mode, self._dropped
                self._open.add(conn)
            self._spawn("bad-conn", self._serve, conn, mode, dropped)

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    # -- one connection -------------------------------------------------------------------

    def _serve(self, conn: socket.socket, mode: str, dropped: threading.Event) -> None:
        try:
            if mode in ("pass", "slow"):
                self._forward(conn, dropped, self.delay_s if mode == "slow" else 0.0)
            elif mode == "silent":
                while conn.recv(_CHUNK):
                    pass
            else:
                self._answer(conn, mode)
        except OSError:
            pass  # the client gave up, or the mode changed under it
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, mode: str) -> None:
        while conn.recv(_CHUNK):
            if mode == "garbage":
                conn.sendall(self.garbage)
                continue
            conn.sendall(TRUNCATED if mode == "truncated" else WRONG_TYPE)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(_CHUNK):  # let the client close first: no RST eats the answer
                pass
            return

    def _forward(self, conn: socket.socket, dropped: threading.Event, delay_s: float) -> None:
        if self.upstream is None:
            raise RuntimeError("pass and slow need an upstream port")
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            return  # the real server is down: so are we
        upstream.settimeout(None)
        with self._lock:
            self._open.add(upstream)
        try:
            self._spawn("bad-conn", self._pump, conn, upstream, dropped, 0.0)
            self._pump(upstream, conn, dropped, delay_s)
        finally:
            with self._lock:
                self._open.discard(upstream)
            upstream.close()

    @staticmethod
    def _pump(
        source: socket.socket, sink: socket.socket, dropped: threading.Event, delay_s: float
    ) -> None:
        try:
            while data := source.recv(_CHUNK):
                if delay_s and dropped.wait(delay_s):
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):  # one side is done: so is the other
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
