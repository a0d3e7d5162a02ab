"""The whole demo platform in one context manager: backing servers (real or in-process), the
seeded farms table, the API on a free loopback port, user traffic and faults.

    with DemoPlatform() as demo:
        print(demo.urls["APP_URL"])

`python -m cockpit.demo.platform` runs it until Ctrl-C and prints the URLs."""

from __future__ import annotations

import argparse
import atexit
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from cockpit.demo.api import Backend, build_app
from cockpit.demo.cache import MemorySharedCache, RedisCache, SharedCache
from cockpit.demo.faults import (
    FaultError,
    FaultSchedule,
    FaultState,
    FaultSwitch,
    ScheduledFault,
    parse_fault,
)
from cockpit.demo.flags import Rollout
from cockpit.demo.latency import RemoteLatency
from cockpit.demo.load import LoadGenerator, LoadShape
from cockpit.demo.seed import FARM_COUNT, generate, load_postgres
from cockpit.demo.serve import ApiServer
from cockpit.demo.servers import Servers, detect, fallback_message, free_port
from cockpit.demo.store import FarmStore, MemoryStore, PostgresStore

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_Handler = Callable[[int, FrameType | None], Any] | int | None


@dataclass(frozen=True)
class DemoOptions:
    load: bool = True
    load_shape: LoadShape = field(default_factory=LoadShape)
    rollout_percent: float = 0
    farm_count: int = FARM_COUNT
    db_delay_s: float = 0.02  # a remote database doing real work, per query
    remote_latency: float = 1.0  # scale of the standard path's round trips (0: none)
    faults: tuple[ScheduledFault, ...] = ()
    in_process: bool = False  # force the fallback even where the servers exist
    handle_signals: bool = True  # stop on SIGTERM/SIGHUP (only from the main thread)


class DemoPlatform:
    def __init__(self, options: DemoOptions | None = None) -> None:
        self.options = options or DemoOptions()
        detection = detect()
        self.in_process = self.options.in_process or not detection.real
        self.notice: str | None = None  # shown to the user when the demo is not using real parts
        if self.options.in_process:
            self.notice = "demo: in-process store requested; no Redis or PostgreSQL started"
        elif not detection.real:
            self.notice = fallback_message(detection)
        self.servers = None if self.in_process else Servers(detection)
        self.fault_state = FaultState()
        self.rollout = Rollout(self.options.rollout_percent)
        self.api: ApiServer | None = None
        self.load: LoadGenerator | None = None
        self.backend: Backend | None = None
        self._l2: SharedCache | None = None
        self._schedule: FaultSchedule | None = None
        self._saved_handlers: dict[int, _Handler] = {}
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.faults = FaultSwitch(self.fault_state, self._stop_redis, self._start_redis)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> DemoPlatform:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        atexit.register(self.stop)
        self._install_signal_handlers()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        farms = generate(self.options.farm_count)
        store: FarmStore
        if self.servers is not None:
            self.servers.start()
            load_postgres(self.servers.postgres.dsn(), farms)
            store = PostgresStore(self.servers.postgres.dsn(), self._db_delay)
            self._l2 = RedisCache(self.servers.redis.url)
        else:
            store = MemoryStore(farms, self._db_delay)
            self._l2 = MemorySharedCache()
        latency = RemoteLatency(self.options.remote_latency)
        self.backend = Backend(store, self._l2, self.rollout, self.fault_state, latency=latency)
        self.api = ApiServer(build_app(self.backend), free_port())
        self.api.start()
        if self.options.load:
            self.load = LoadGenerator(self.api.url, self.options.load_shape)
            self.load.start()
        self._schedule = FaultSchedule(self.faults, list(self.options.faults))
        self._schedule.start()

    def stop(self) -> None:
        """Idempotent: load, faults, API, then the servers and their folder."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if self._schedule is not None:
                self._schedule.stop()
            if self.load is not None:
                self.load.stop()
            if self.api is not None:
                self.api.stop()
        finally:
            if self.servers is not None:
                self.servers.stop()
            self._restore_signal_handlers()
            atexit.unregister(self.stop)

    # -- what the cockpit needs --------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        """APP_URL always; REDIS_URL and DATABASE_URL only when real servers run."""
        if self.api is None:
            raise RuntimeError("the demo platform is not started")
        urls = {"APP_URL": self.api.url}
        if self.servers is not None:
            urls["REDIS_URL"] = self.servers.redis.url
            urls["DATABASE_URL"] = self.servers.postgres.url
        return urls

    def set_rollout(self, percent: float) -> None:
        self.rollout.set(percent)

    # -- internals ---------------------------------------------------------------------------

    def _db_delay(self) -> float:
        return self.options.db_delay_s + self.fault_state.extra_db_delay_s

    def _stop_redis(self) -> None:
        if self.servers is not None:
            self.servers.redis.stop()
        elif isinstance(self._l2, MemorySharedCache):
            self._l2.down = True

    def _start_redis(self) -> None:
        if self.servers is not None:
            self.servers.redis.start()
        elif isinstance(self._l2, MemorySharedCache):
            self._l2.down = False

    def _install_signal_handlers(self) -> None:
        if not self.options.handle_signals:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            self._saved_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._saved_handlers.items():
            signal.signal(sig, handler)
        self._saved_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self._saved_handlers.get(signum)
        self.stop()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cockpit.demo.platform", description="Run the demo platform until Ctrl-C."
    )
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rollout", type=float, default=0, help="starting Phase 3 percent")
    parser.add_argument("--no-load", action="store_true", help="no built-in traffic")
    parser.add_argument("--in-process", action="store_true", help="no Redis/PostgreSQL")
    parser.add_argument("--fault", action="append", default=[], help="e.g. errors-at=90s")
    args = parser.parse_args(argv)
    try:
        faults = tuple(parse_fault(spec) for spec in args.fault)
    except FaultError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    options = DemoOptions(
        load=not args.no_load,
        load_shape=LoadShape(users=args.users, rate=args.rate),
        rollout_percent=args.rollout,
        faults=faults,
        in_process=args.in_process,
    )
    with DemoPlatform(options) as demo:
        if demo.notice:
            print(demo.notice, flush=True)
        for name, url in demo.urls.items():
            print(f"{name}={url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping the demo platform", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
