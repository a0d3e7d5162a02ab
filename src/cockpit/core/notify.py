"""Notifications to Slack and/or a generic JSON webhook that never make an action wait.

`Notifier.send` only formats and enqueues. A daemon thread with its own event loop delivers
(httpx, 10 s per try), one queue per target, so a Slack outage does not delay the webhook.
Transport errors, 408, 429 and 5xx are retried with backoff (1, 2, 4 ... s, capped at 60 s) up
to `max_attempts`; other answers are final. Outcomes are data (`Delivery`), kept in bounded
lists for the UI and CLI and passed to `on_result`. Every string that leaves is masked; the
webhook URLs are secrets too (a Slack URL is its own credential), never in a body or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from cockpit.core.actions import mask
from cockpit.core.notify_text import (
    AUTO_ROLLBACK_ARMED,
    AUTO_ROLLBACK_CANCELLED,
    AUTO_ROLLBACK_FIRED,
    EVENTS,
    HOLD,
    PHASE_CHANGE,
    RESUME,
    ROLLBACK_FAILED,
    ROLLBACK_FINISHED,
    ROLLBACK_STARTED,
    SUMMARY,
    SummaryClock,
    event_line,
    gate_verdicts,
    slack_escape,
    summary_text,
)
from cockpit.core.plan import Notify, Plan
from cockpit.core.snapshot import Snapshot

__all__ = [
    "AUTO_ROLLBACK_ARMED",
    "AUTO_ROLLBACK_CANCELLED",
    "AUTO_ROLLBACK_FIRED",
    "BACKOFF_CAP_S",
    "BACKOFF_FIRST_S",
    "EVENTS",
    "HOLD",
    "KEEP",
    "PHASE_CHANGE",
    "RESUME",
    "ROLLBACK_FAILED",
    "ROLLBACK_FINISHED",
    "ROLLBACK_STARTED",
    "SLACK",
    "SUMMARY",
    "WEBHOOK",
    "Delivery",
    "Notifier",
    "Post",
    "Sleep",
    "SummaryClock",
    "backoff_s",
    "gate_verdicts",
    "summary_text",
]

SLACK, WEBHOOK = "slack", "webhook"
BACKOFF_FIRST_S, BACKOFF_CAP_S = 1.0, 60.0
KEEP = 100  # outcomes (and, apart, failures) remembered for the UI
_RETRY_STATUSES = frozenset({408, 429})  # plus every 5xx

# url, JSON body, timeout in seconds -> the HTTP status; raises on a transport failure.
Post = Callable[[str, bytes, float], Awaitable[int]]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class Delivery:
    """What became of one notification to one target."""

    event: str
    target: str  # slack | webhook
    ok: bool
    error: str | None  # one masked line for people, e.g. "HTTP 500 after 5 tries"
    at: float  # UTC epoch seconds when the outcome was known
    attempts: int = 0

    def describe(self) -> str:
        return f"{self.target}: {'delivered' if self.ok else self.error}"


def backoff_s(retry: int) -> float:
    """The wait before retry number `retry` (1-based): 1, 2, 4 ... 60, 60."""
    return min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2.0 ** min(retry - 1, 62))


def _clean(value: object, secrets: Iterable[str]) -> Any:
    """A JSON-ready copy with every string masked (keys too; odd objects become masked text)."""
    if isinstance(value, str):
        return mask(str(value), secrets)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {mask(str(k), secrets): _clean(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, secrets) for v in value]
    return mask(str(value), secrets)


def _poster(client: httpx.AsyncClient) -> Post:
    async def post(url: str, body: bytes, timeout_s: float) -> int:
        headers = {"Content-Type": "application/json"}
        answer = await client.post(url, content=body, headers=headers, timeout=timeout_s)
        return answer.status_code

    return post


class _Job(NamedTuple):
    event: str
    body: bytes


@dataclass
class _Channel:
    """One target's queue and what its consumer is doing now."""

    target: str
    url: str
    queue: deque[_Job] = field(default_factory=deque)
    current: _Job | None = None
    attempt: int = 0
    trying: bool = False  # False between tries, in the backoff
    last_error: str = ""
    wake: asyncio.Event | None = None


class Notifier:
    """Sends rollout events to the `[notify]` targets in the background. See the module doc.

    `post` and `sleep` are coroutine functions (tests inject them); `on_result` is called with
    every `Delivery`, from the notifier's thread (or from `send` for a dropped notification).
    """

    def __init__(
        self,
        notify: Notify | None,
        *,
        secrets: Iterable[str],
        rollout: str,
        phases: Sequence[str] = (),
        post: Post | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        on_result: Callable[[Delivery], object] | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        max_queue: int = 1000,
    ) -> None:
        targets = [(SLACK, notify.slack), (WEBHOOK, notify.webhook)] if notify else []
        self._channels = [_Channel(target, url) for target, url in targets if url]
        urls = {c.url for c in self._channels}
        self._secrets = frozenset(s for s in secrets if s) | urls
        # Errors could quote a URL in pieces; its path carries a Slack webhook's token.
        paths = {urlsplit(u)._replace(scheme="", netloc="").geturl() for u in urls}
        self._error_secrets = self._secrets | {p for p in paths if len(p) > 1}
        self._rollout, self._phases = rollout, tuple(phases)
        self._post, self._clock, self._sleep, self._on_result = post, clock, sleep, on_result
        self._timeout_s, self._max_attempts = timeout_s, max(1, max_attempts)
        self._max_queue = max(1, max_queue)
        self._lock = threading.Lock()
        self._recent: deque[Delivery] = deque(maxlen=KEEP)
        self._failures: deque[Delivery] = deque(maxlen=KEEP)
        self._closed = False
        self._closing = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="cockpit-notify", daemon=True)
        if self._channels:
            self._task = self._loop.create_task(self._main())
            self._thread.start()
        else:
            self._loop.close()  # nothing to send anywhere: no thread

    @classmethod
    def for_plan(cls, plan: Plan, **options: Any) -> Notifier:
        """A notifier for the plan's `[notify]`, secrets, name and phase names."""
        phases = [p.name for p in plan.phases]
        return cls(plan.notify, secrets=plan.secrets, rollout=plan.name, phases=phases, **options)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def send(
        self,
        event: str,
        *,
        phase: int,
        percent: int,
        operator: str,
        reason: str = "",
        gates: Sequence[Mapping[str, object]] = (),
    ) -> None:
        """Queue `event` for every target and return at once; never raises for delivery."""
        if not self._channels:
            return
        names = self._phases
        record = _clean(
            {
                "event": event,
                "rollout": self._rollout,
                "phase": phase,
                "phase_name": names[phase - 1] if 1 <= phase <= len(names) else None,
                "percent": percent,
                "operator": operator,
                "reason": reason,
                "gates": [dict(g) for g in gates],
                "time": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds"),
            },
            self._secrets,
        )
        line = mask(event_line(record, names), self._secrets)  # phase names are masked here
        bodies = {
            SLACK: json.dumps({"text": slack_escape(line)}).encode(),
            WEBHOOK: json.dumps({**record, "text": line}).encode(),
        }
        for channel in self._channels:
            self._enqueue(channel, _Job(event, bodies[channel.target]))

    def send_summary(self, snapshot: Snapshot, *, operator: str = "cockpit") -> None:
        self.send(
            SUMMARY,
            phase=snapshot.state.phase,
            percent=snapshot.traffic,
            operator=operator,
            reason=summary_text(snapshot),
            gates=gate_verdicts(snapshot.gates),
        )

    def deliveries(self) -> list[Delivery]:
        """The most recent outcomes (delivered and failed), oldest first."""
        with self._lock:
            return list(self._recent)

    def failures(self) -> list[Delivery]:
        """The most recent failures, oldest first: "slack: HTTP 500 after 5 tries"."""
        with self._lock:
            return list(self._failures)

    def pending(self) -> int:
        """Notifications queued or being delivered."""
        with self._lock:
            return sum(len(c.queue) + (c.current is not None) for c in self._channels)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what can be delivered within `timeout_s`, then stop the thread; whatever is
        still queued or in flight is recorded as not delivered."""
        with self._lock:
            self._closed = True
        if not self._thread.is_alive():
            return
        self._closing.set()
        self._poke()
        self._thread.join(max(0.0, timeout_s))
        if self._thread.is_alive() and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop finished meanwhile
                self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(5.0)  # cancelling ends a try or a backoff at once

    # -- the notifier's thread ------------------------------------------------------------

    def _enqueue(self, channel: _Channel, job: _Job) -> None:
        dropped = None
        with self._lock:
            closed = self._closed
            if not closed:
                if len(channel.queue) >= self._max_queue:
                    dropped = channel.queue.popleft()
                channel.queue.append(job)
        if closed:
            error = "not sent: notifier closed"
            self._record(Delivery(job.event, channel.target, False, error, self._clock()))
            return
        if dropped is not None:
            error = f"dropped: more than {self._max_queue} waiting"
            self._record(Delivery(dropped.event, channel.target, False, error, self._clock()))
        self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: the thread is gone
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for channel in self._channels:
            if channel.wake is not None:
                channel.wake.set()

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._recent.append(delivery)
            if not delivery.ok:
                self._failures.append(delivery)
        if self._on_result is not None:
            # A faulty callback must not stop the deliveries behind it.
            with contextlib.suppress(Exception):
                self._on_result(delivery)

    def _run(self) -> None:
        assert self._task is not None
        try:
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._task)
        finally:
            self._loop.close()
            for channel in self._channels:
                with self._lock:
                    left, channel.queue = list(channel.queue), deque()
                for job in left:
                    error = "not delivered: closed before it was sent"
                    self._record(Delivery(job.event, channel.target, False, error, self._clock()))

    async def _main(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            post = self._post or _poster(await stack.enter_async_context(httpx.AsyncClient()))
            await asyncio.gather(*(self._consume(c, post) for c in self._channels))

    async def _consume(self, channel: _Channel, post: Post) -> None:
        channel.wake = asyncio.Event()
        while True:
            channel.wake.clear()
            with self._lock:
                job = channel.current = channel.queue.popleft() if channel.queue else None
            if job is None:
                if self._closing.is_set():
                    return
                await channel.wake.wait()
                continue
            try:
                delivery = await self._deliver(channel, job, post)
            except asyncio.CancelledError:
                n, last = channel.attempt, channel.last_error
                error = f"not delivered: closed during try {n}" + (f" ({last})" if last else "")
                if not channel.trying:
                    error = (
                        f"not delivered: closed after {n} {'try' if n == 1 else 'tries'} ({last})"
                    )
                at = self._clock()
                self._record(Delivery(job.event, channel.target, False, error, at, n))
                raise
            finally:
                with self._lock:
                    channel.current = None
            self._record(delivery)

    async def _deliver(self, channel: _Channel, job: _Job, post: Post) -> Delivery:
        channel.last_error = ""
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                await self._sleep(backoff_s(attempt - 1))
            channel.attempt, channel.trying = attempt, True
            retry, error = await self._try(channel.url, job.body, post)
            channel.trying = False
            if error is None:
                return Delivery(job.event, channel.target, True, None, self._clock(), attempt)
            channel.last_error = error
            if not retry:
                error = f"{error} (not retried)"
                return Delivery(job.event, channel.target, False, error, self._clock(), attempt)
        tries = f"{self._max_attempts} {'try' if self._max_attempts == 1 else 'tries'}"
        error = f"{channel.last_error} after {tries}"
        return Delivery(job.event, channel.target, False, error, self._clock(), self._max_attempts)

    async def _try(self, url: str, body: bytes, post: Post) -> tuple[bool, str | None]:
        """One try: (worth retrying, error or None when delivered)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                status = await post(url, body, self._timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            return True, f"no answer within {self._timeout_s:g}s"
        except Exception as exc:  # any transport failure is worth another try
            text = " ".join(str(exc).split())
            error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            return True, mask(error, self._error_secrets)
        if 200 <= status < 300:
            return False, None
        return status >= 500 or status in _RETRY_STATUSES, f"HTTP {status}"
