"""An HTTP/1.1 server on loopback that answers every request after a fixed delay and logs its
own handling time (ground truth for the probe benchmarks). Adapted from
tests/servers/http_server.py: TCP_NODELAY on accepted sockets and each answer in one write, so
Nagle's algorithm and delayed ACKs do not add ~40 ms.

Run as its own process (so the cockpit under test does not share its GIL):
    python bench/delay_server.py --delay-ms 50      # prints "PORT <n>" once listening

`GET /__stats` answers [arrival time, handling ms] of each request logged since the last
`GET /__reset`, as JSON; neither is delayed nor logged. `DelayServer` starts and stops one
from a benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 200 sources open their connections at once

    def __init__(self, port: int, delay_s: float) -> None:
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.handled: list[tuple[float, float]] = []  # (arrived, wall clock; handling ms)
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away (a probe cancelled at the end of a run) is expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        started, arrived = time.perf_counter(), time.time()
        if self.path.startswith("/__"):
            self._control()
            return
        if self.server.delay_s > 0:
            time.sleep(self.server.delay_s)
        body = b"ok\n"
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)  # one write: no Nagle/delayed-ACK stall
        handled = (time.perf_counter() - started) * 1000.0
        with self.server.lock:
            self.server.handled.append((arrived, handled))

    def _control(self) -> None:
        with self.server.lock:
            if self.path == "/__reset":
                self.server.handled.clear()
                body = b"{}"
            else:
                body = json.dumps(self.server.handled).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class DelayServer:
    """The server above in a child process: `with DelayServer(0.05) as s: s.url ...`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/health"

    def __enter__(self) -> DelayServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "delay_server.py"), "--delay-ms", str(self.delay_s * 1000)]
            + ["--parent", str(os.getpid())],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.__exit__()
            raise RuntimeError("the delay server did not start")
        self.port = int(line[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def reset(self) -> None:
        urllib.request.urlopen(f"{self.base}/__reset", timeout=5).read()

    def handled(self) -> list[tuple[float, float]]:
        """(arrival time, handling ms) of each request since the last reset."""
        with urllib.request.urlopen(f"{self.base}/__stats", timeout=5) as answer:
            return [(t, ms) for t, ms in json.loads(answer.read())]


def _orphaned(server: _Server, parent: int) -> None:
    """Never outlive the benchmark that started us, however it ended."""
    while os.getppid() == parent:
        time.sleep(0.5)
    server.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    args = p.parse_args()
    server = _Server(args.port, args.delay_ms / 1000.0)
    if args.parent:
        threading.Thread(target=_orphaned, args=(server, args.parent), daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
