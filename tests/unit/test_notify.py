"""Notifier: backoff, masking, the bounded queue, close(), and what it sends (the Slack line,
the webhook body, the summary). The labels and the summary text itself: test_notify_text.py.

The transport and the backoff sleep are injected coroutines, so nothing here waits on a network
or a timer; the notifier's own thread and event loop are real.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cockpit.core.notify import (
    AUTO_ROLLBACK_FIRED,
    HOLD,
    PHASE_CHANGE,
    ROLLBACK_FAILED,
    SUMMARY,
    Delivery,
    Notifier,
    backoff_s,
    gate_verdicts,
)
from cockpit.core.plan import Notify
from cockpit.core.verdict import Verdict
from tests.unit.test_notify_text import NOW, PHASES, ROLLOUT, gate, make_snapshot

SLACK_URL = "https://hooks.slack.example/services/T0/B0/sl4ck-t0ken"
HOOK_URL = "https://ops.example/hooks/rollout?key=h00k-key"


class FakePost:
    """Answers from a script (status codes or exceptions), then 200; records every call."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, url: str, body: bytes, timeout_s: float) -> int:
        self.calls.append((url, body))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def make() -> Iterator[Callable[..., Notifier]]:
    """Builds notifiers (Slack only unless told) and closes every one of them afterwards."""
    made: list[Notifier] = []

    def build(post: Any, notify: Notify | None = None, **options: Any) -> Notifier:
        options = {"secrets": (), "sleep": FakeSleep(), "phases": PHASES, **options}
        options.update(rollout=ROLLOUT, post=post, clock=lambda: NOW)
        made.append(Notifier(notify or Notify(slack=SLACK_URL), **options))
        return made[-1]

    yield build
    for notifier in made:
        notifier.close(1.0)
    assert not any(n.running for n in made)


def advance(notifier: Notifier, event: str = PHASE_CHANGE, **overrides: Any) -> None:
    """Sends `event` (an advance to phase 2 by alice unless told otherwise)."""
    args: dict[str, Any] = dict(phase=2, percent=50, operator="alice", reason="bake done")
    notifier.send(event, **{**args, **overrides})


# -- retries and backoff ---------------------------------------------------------------------


def test_backoff_doubles_from_one_second_and_is_capped_at_a_minute() -> None:
    assert [backoff_s(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_s(10_000) == 60


@pytest.mark.parametrize(
    ("options", "delays"),
    [({}, [1, 2, 4, 8]), ({"max_attempts": 9}, [1, 2, 4, 8, 16, 32, 60, 60])],
)
def test_a_failing_target_is_retried_with_backoff_then_recorded(
    make: Any, options: dict[str, int], delays: list[float]
) -> None:
    post, sleep = FakePost(*[500] * 20), FakeSleep()
    notifier = make(post, sleep=sleep, **options)
    advance(notifier)
    notifier.close(5.0)
    tries = len(delays) + 1
    assert (len(post.calls), sleep.delays) == (tries, delays)
    error = f"HTTP 500 after {tries} tries"
    assert notifier.failures() == [Delivery(PHASE_CHANGE, "slack", False, error, NOW, tries)]
    assert notifier.failures()[0].describe() == f"slack: {error}"


def test_recovers_after_errors_and_counts_the_tries(make: Any) -> None:
    post, sleep = FakePost(503, ConnectionError("refused"), 429), FakeSleep()
    notifier = make(post, sleep=sleep)
    advance(notifier)
    notifier.close(5.0)
    assert sleep.delays == [1, 2, 4]
    assert notifier.deliveries() == [Delivery(PHASE_CHANGE, "slack", True, None, NOW, 4)]
    assert notifier.failures() == []
    assert len({body for _, body in post.calls}) == 1  # every try sends the same body


def test_a_client_error_is_final(make: Any) -> None:
    post, sleep = FakePost(404), FakeSleep()
    notifier = make(post, sleep=sleep)
    advance(notifier)
    notifier.close(5.0)
    assert (len(post.calls), sleep.delays) == (1, [])
    assert notifier.failures()[0].error == "HTTP 404 (not retried)"


def test_a_try_that_outlives_its_timeout_is_a_failed_try(make: Any) -> None:
    async def slow(url: str, body: bytes, timeout_s: float) -> int:
        await asyncio.Event().wait()  # never answers
        return 200

    notifier = make(slow, timeout_s=0.01, max_attempts=2)
    advance(notifier)
    notifier.close(5.0)
    assert notifier.failures()[0].error == "no answer within 0.01s after 2 tries"


# -- secrets ---------------------------------------------------------------------------------


def test_every_string_sent_is_masked_and_the_urls_are_secrets(make: Any) -> None:
    post = FakePost()
    notifier = make(post, Notify(slack=SLACK_URL, webhook=HOOK_URL), secrets={"hunter2"})
    gates = [{"rule": "http.error_rate > 2%", "verdict": "fail", "reason": "seen hunter2"}]
    reason = f"password hunter2 and hook {SLACK_URL} and {HOOK_URL}"
    advance(notifier, HOLD, operator="hunter2-bot", reason=reason, gates=gates)
    notifier.close(5.0)
    assert [url for url, _ in post.calls] == [SLACK_URL, HOOK_URL]
    for _, body in post.calls:
        for secret in (b"hunter2", b"sl4ck-t0ken", b"h00k-key", b"hooks.slack.example"):
            assert secret not in body
        assert b"****" in body
    webhook = post.bodies()[1]
    assert webhook["reason"] == "password **** and hook **** and ****"
    assert webhook["operator"] == "****-bot"
    assert webhook["gates"][0]["reason"] == "seen ****"


def test_phase_names_and_secrets_json_would_escape_are_masked_too(make: Any) -> None:
    post, odd = FakePost(), 'p"ä\\ss'
    phases = ("Shadow", "Partial hunter2")
    notify = Notify(slack=SLACK_URL, webhook=HOOK_URL)
    notifier = make(post, notify, secrets={"hunter2", odd}, phases=phases)
    advance(notifier, reason=f"x {odd} y")
    notifier.close(5.0)
    slack, hook = post.bodies()
    assert slack["text"] == f"[{ROLLOUT}] phase 2/2 Partial **** 50%: advance by alice — x **** y"
    assert (hook["phase_name"], hook["reason"], hook["text"]) == (
        "Partial ****",
        "x **** y",
        slack["text"],
    )
    for _, body in post.calls:
        assert odd not in body.decode()
        assert odd not in json.dumps(json.loads(body))


def test_errors_never_quote_the_webhook_url(make: Any) -> None:
    path = "/services/T0/B0/sl4ck-t0ken"
    post = FakePost(OSError(f"cannot reach {SLACK_URL}"), OSError(f"bad path {path}"), 500, 500)
    notifier = make(post, max_attempts=2)
    advance(notifier)
    advance(notifier)
    notifier.close(5.0)
    errors = [d.error or "" for d in notifier.failures()]
    assert errors == ["OSError: bad path **** after 2 tries", "HTTP 500 after 2 tries"]
    notifier2 = make(FakePost(OSError(f"cannot reach {SLACK_URL}")), max_attempts=1)
    advance(notifier2)
    notifier2.close(5.0)
    assert notifier2.failures()[0].error == "OSError: cannot reach **** after 1 try"


# -- never blocking, the queue bound and close -----------------------------------------------


class Gate:
    """A transport whose first call waits until `release()` (later calls answer at once)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.calls: list[bytes] = []
        self._opened: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def __call__(self, url: str, body: bytes, timeout_s: float) -> int:
        self.calls.append(body)
        if self._opened is None:
            self._opened = (asyncio.get_running_loop(), asyncio.Event())
            self.entered.set()
            await self._opened[1].wait()
        return 200

    def release(self) -> None:
        assert self._opened is not None
        loop, opened = self._opened
        loop.call_soon_threadsafe(opened.set)


def test_send_returns_at_once_while_the_target_hangs(make: Any) -> None:
    gate = Gate()
    notifier = make(gate)
    started = time.perf_counter()
    for _ in range(100):
        advance(notifier)
    assert time.perf_counter() - started < 0.5
    assert gate.entered.wait(5)
    assert notifier.pending() == 100
    gate.release()
    notifier.close(5.0)
    assert notifier.pending() == 0
    assert len(notifier.deliveries()) == 100


def test_a_full_queue_drops_the_oldest_and_says_so(make: Any) -> None:
    gate = Gate()
    notifier = make(gate, max_queue=3)
    notifier.send("e1", phase=1, percent=10, operator="a")
    assert gate.entered.wait(5)  # e1 is in flight; the next ones queue behind it
    for n in range(2, 7):
        notifier.send(f"e{n}", phase=1, percent=10, operator="a")
    dropped = notifier.failures()
    assert [(d.event, d.error) for d in dropped] == [
        ("e2", "dropped: more than 3 waiting"),
        ("e3", "dropped: more than 3 waiting"),
    ]
    gate.release()
    notifier.close(5.0)
    sent = [json.loads(body)["text"] for body in gate.calls]
    assert sent == [f"[{ROLLOUT}] phase 1/3 Shadow 10%: e{n} by a" for n in (1, 4, 5, 6)]


def test_close_gives_up_on_a_hanging_try_and_what_waits_behind_it(make: Any) -> None:
    gate = Gate()
    results: list[Delivery] = []
    notifier = make(gate, on_result=results.append)
    advance(notifier)
    assert gate.entered.wait(5)
    advance(notifier, HOLD, operator="bob", reason="look")
    started = time.monotonic()
    notifier.close(0.05)
    assert time.monotonic() - started < 2.0
    assert not notifier.running
    assert not [t for t in threading.enumerate() if t.name == "cockpit-notify"]
    assert [(d.event, d.error) for d in notifier.failures()] == [
        (PHASE_CHANGE, "not delivered: closed during try 1"),
        (HOLD, "not delivered: closed before it was sent"),
    ]
    assert results == notifier.failures()


def test_close_names_the_last_error_of_a_delivery_it_cut_short(make: Any) -> None:
    waiting = threading.Event()

    async def forever(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    notifier = make(FakePost(500), sleep=forever)
    advance(notifier)
    assert waiting.wait(5)  # in the backoff after try 1
    notifier.close(0.05)
    assert notifier.failures()[0].error == "not delivered: closed after 1 try (HTTP 500)"


def test_close_names_the_try_it_cut_short_and_the_error_before(make: Any) -> None:
    tries: list[float] = []
    second = threading.Event()

    async def fail_then_hang(url: str, body: bytes, timeout_s: float) -> int:
        tries.append(timeout_s)
        if len(tries) == 1:
            return 503
        second.set()
        await asyncio.Event().wait()
        return 200

    notifier = make(fail_then_hang)
    advance(notifier)
    assert second.wait(5)
    notifier.close(0.05)
    (failure,) = notifier.failures()
    assert failure.attempts == 2
    assert failure.error == "not delivered: closed during try 2 (HTTP 503)"


def test_send_after_close_is_recorded_not_raised(make: Any) -> None:
    notifier = make(FakePost())
    notifier.close(1.0)
    advance(notifier)
    assert [d.error for d in notifier.failures()] == ["not sent: notifier closed"]


def test_without_targets_there_is_no_thread_and_nothing_to_send() -> None:
    for notify in (None, Notify(), Notify(slack="", webhook=None)):
        notifier = Notifier(notify, secrets=(), rollout=ROLLOUT)
        assert not notifier.running
        advance(notifier)
        notifier.close(1.0)
        assert notifier.deliveries() == []
        assert notifier.pending() == 0


def test_a_failing_callback_does_not_stop_deliveries(make: Any) -> None:
    seen: list[str] = []

    def callback(delivery: Delivery) -> None:
        seen.append(delivery.event)
        raise RuntimeError("callback bug")

    notifier = make(FakePost(), on_result=callback)
    advance(notifier)
    advance(notifier, HOLD, operator="bob", reason="x")
    notifier.close(5.0)
    assert seen == [PHASE_CHANGE, HOLD]
    assert all(d.ok for d in notifier.deliveries())


# -- what is sent ----------------------------------------------------------------------------


def test_slack_gets_one_readable_line(make: Any) -> None:
    post = FakePost()
    notifier = make(post)
    advance(notifier, reason="bake done,\n  gates green")
    notifier.close(5.0)
    assert post.bodies() == [
        {"text": f"[{ROLLOUT}] phase 2/3 Partial 50%: advance by alice — bake done, gates green"}
    ]


def test_slack_line_lists_failing_gates_with_markup_escaped(make: Any) -> None:
    post = FakePost()
    notifier = make(post)
    gates = [
        {"rule": "http.error_rate > 2% for 5m", "verdict": "fail", "reason": "2.4% breaching"},
        {"rule": "cache.up == 1", "verdict": "pass", "reason": "1 held"},
        {"rule": "db.up == 1", "verdict": Verdict.FAIL, "reason": ""},
    ]
    notifier.send(AUTO_ROLLBACK_FIRED, phase=1, percent=10, operator="cockpit", gates=gates)
    notifier.close(5.0)
    assert post.bodies()[0]["text"] == (
        f"[{ROLLOUT}] phase 1/3 Shadow 10%: AUTO-ROLLBACK FIRED by cockpit"
        " | failing: http.error_rate &gt; 2% for 5m (2.4% breaching); db.up == 1"
    )


def test_webhook_gets_the_event_as_json(make: Any) -> None:
    post = FakePost()
    notifier = make(post, Notify(webhook=HOOK_URL))
    gates = [{"rule": "cache.up == 1", "verdict": "pass", "reason": "1 held", "value": 1.0}]
    notifier.send(ROLLBACK_FAILED, phase=3, percent=100, operator="bob", reason="x", gates=gates)
    notifier.close(5.0)
    assert post.bodies() == [
        {
            "event": "rollback_failed",
            "rollout": ROLLOUT,
            "phase": 3,
            "phase_name": "Full",
            "percent": 100,
            "operator": "bob",
            "reason": "x",
            "gates": gates,
            "time": "2027-01-15T08:00:00+00:00",
            "text": f"[{ROLLOUT}] phase 3/3 Full 100%: ROLLBACK FAILED by bob — x",
        }
    ]


# -- the periodic summary --------------------------------------------------------------------


def test_send_summary_carries_the_text_and_the_gates(make: Any) -> None:
    post = FakePost()
    notifier = make(post, Notify(slack=SLACK_URL, webhook=HOOK_URL))
    snapshot = make_snapshot((gate(Verdict.PASS), gate(Verdict.FAIL, "cache.up == 1")), ())
    notifier.send_summary(snapshot)
    notifier.close(5.0)
    slack, hook = post.bodies()
    assert slack["text"] == (
        f"[{ROLLOUT}] summary: phase 2/2 Partial at 50% traffic, running; 20h in phase of 72h"
        " bake; gates 1 pass, 1 fail, 0 unknown; no blockers | failing: cache.up == 1 (why)"
    )
    assert (hook["event"], hook["operator"], hook["percent"]) == (SUMMARY, "cockpit", 50)
    assert hook["gates"] == gate_verdicts(snapshot.gates)
    failing = hook["gates"][1]
    assert (failing["phase"], failing["kind"], failing["rule"]) == (2, "success", "cache.up == 1")
    assert (failing["verdict"], failing["value"], failing["value_text"]) == ("fail", 0.004, "0.4%")
    assert failing["reason"] == "why"
