"""Throwaway redis-server instances, and an Upstash-like REST server in front of one.

`redis_server` starts a real `redis-server` on a free port in the test's tmp folder (no RDB,
no AOF) and hands back a controller that can stop, restart (same port), pause (SIGSTOP: a hung
server, not a refused connection) and resume it; the process is always killed at the end,
SIGCONT first if it was paused.

`upstash` is a stand-in for Upstash's REST API: HTTPS with a self-signed certificate, a Bearer
token, commands POSTed as JSON arrays to `/`, answers `{"result": ...}` or `{"error": ...}`,
each command forwarded to the real redis-server above.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from tests.servers.ports import free_port

INSTALL = "apt-get install -y redis-server"
START_TIMEOUT_S = 10.0


def answers_ping(port: int, timeout_s: float = 0.5) -> bool:
    """Does something on `port` answer a RESP PING (PONG, or NOAUTH when it wants a password)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


class RedisServer:
    """One redis-server process on a fixed port; `start()` after `stop()` reuses the port."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(f"redis-server is not installed: run `{INSTALL}` (make test does)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.folder)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL if it lingers); the port is then closed."""
        process = self.process
        if process is None:
            return
        self.resume()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing ever answers."""
        if self.process is not None and not self.paused:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.paused = False

    def close(self) -> None:
        """Always safe: SIGCONT if paused, kill, reap."""
        process = self.process
        if process is None:
            return
        self.resume()
        if process.poll() is None:
            process.kill()
        process.wait()
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", free_port())
    try:
        server.start()
        yield server
    finally:
        server.close()


# -- Upstash-like REST stand-in ---------------------------------------------------------------


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True
    token: str
    backend: redis.Redis
    commands: list[list[str]]


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Upstash
    timeout = 5  # an idle kept-alive connection ends its thread
    server: _RestServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate sends: without this, Nagle plus delayed ACKs
        # add ~40 ms to every answer and the latency under test would be the stand-in's.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._answer(401, {"error": "Unauthorized"})
            return
        try:
            command = json.loads(body)
            if not isinstance(command, list) or not command:
                raise ValueError(command)
        except ValueError:
            self._answer(400, {"error": "ERR failed to parse command"})
            return
        self.server.commands.append([str(part) for part in command])
        try:
            result = self.server.backend.execute_command(*command)  # type: ignore[no-untyped-call]
        except redis.ResponseError as error:
            self._answer(400, {"error": str(error)})
        except redis.RedisError as error:
            self._answer(500, {"error": str(error)})
        else:
            self._answer(200, {"result": result})

    def _answer(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class UpstashStandIn:
    """HTTPS on 127.0.0.1 with a self-signed certificate; `client_ssl` trusts it."""

    def __init__(self, backend_port: int, folder: Path, token: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = self_signed_cert(folder)
        server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ssl.load_cert_chain(cert, key)
        self.client_ssl = ssl.create_default_context(cafile=str(cert))
        self.token = token
        self.server = _RestServer(("127.0.0.1", 0), _RestHandler)
        self.server.socket = server_ssl.wrap_socket(self.server.socket, server_side=True)
        self.server.token = token
        self.server.commands = []
        backend = redis.Redis(
            port=backend_port, decode_responses=True, protocol=2, socket_timeout=5
        )
        backend.response_callbacks.clear()  # forward replies as the server sent them
        self.server.backend = backend
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    @property
    def commands(self) -> list[list[str]]:
        """Every command forwarded so far, in order."""
        return self.server.commands

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.server.backend.close()


@pytest.fixture
def upstash(redis_server: RedisServer, tmp_path: Path) -> Iterator[UpstashStandIn]:
    stand_in = UpstashStandIn(redis_server.port, tmp_path / "upstash", token="s3cret-token")
    try:
        yield stand_in
    finally:
        stand_in.close()
