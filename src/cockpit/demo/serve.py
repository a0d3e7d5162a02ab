"""Uvicorn in a background thread with its own event loop, so whatever runs in the foreground
(the cockpit's TUI) keeps the main thread and its signals."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

START_TIMEOUT_S = 15.0


class ApiServer:
    def __init__(self, app: Starlette, port: int) -> None:
        self.port = port
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=3,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the demo API did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
