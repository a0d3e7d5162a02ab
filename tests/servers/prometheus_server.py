"""A real /metrics exporter the test controls, and a real Prometheus server scraping it.

`prom_exporter` serves `/metrics` over HTTP from a prometheus_client registry the test fills
(counters, gauges, histograms); it can be stopped and started again on the same port, and
told to answer slowly, with a raw body or with an HTTP error instead.

`prometheus` runs Debian's `prometheus` binary on a free port with its storage in the test's
tmp folder, scraping the exporter every second, and waits until `/-/ready`. The test can kill
it, pause it (SIGSTOP: a hung server) and start it again on the same port; it is always
killed at the end, SIGCONT first if paused. A missing binary fails the test with the command
that installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.servers.ports import free_port

INSTALL = "apt-get install -y prometheus"
START_TIMEOUT_S = 15.0


class Exporter:
    """A /metrics endpoint on a fixed port; `start()` after `stop()` reuses the port."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.body: str | None = None  # served instead of the registry when set
        self.status = 200
        self.delay_s = 0.0  # a slow (or, long enough, hung) exporter
        self.port = free_port()
        self.scrapes = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go in two sends

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                exporter.scrapes += 1
                time.sleep(exporter.delay_s)
                body = (
                    exporter.body.encode()
                    if exporter.body is not None
                    else generate_latest(exporter.registry)
                )
                with contextlib.suppress(OSError):  # the client gave up waiting
                    self.send_response(exporter.status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


@pytest.fixture
def prom_exporter() -> Iterator[Exporter]:
    exporter = Exporter()
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None
    )
    if binary is None:
        pytest.fail(f"prometheus is not installed: run `{INSTALL}` (make test does)", False)
    return binary


class PrometheusServer:
    """One Prometheus process on a fixed port, scraping `targets` every second."""

    def __init__(self, folder: Path, targets: list[str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        folder.mkdir(parents=True, exist_ok=True)
        listed = ", ".join(f"'{t}'" for t in targets)
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: test\n"
            "    static_configs:\n"
            f"      - targets: [{listed}]\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def log(self) -> Path:
        return self.folder / "prometheus.log"

    def start(self) -> None:
        argv = [
            prometheus_binary(),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.ready():
                return
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.kill()
        pytest.fail(f"prometheus did not become ready on port {self.port}:\n{tail}", False)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL, as a crash would; `start()` brings it back on the same port and data."""
        process, self.process = self.process, None
        if process is None:
            return
        if self.paused:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
            self.paused = False
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def prometheus(tmp_path: Path, prom_exporter: Exporter) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path / "prometheus", [prom_exporter.target])
    try:
        server.start()
        yield server
    finally:
        server.kill()
