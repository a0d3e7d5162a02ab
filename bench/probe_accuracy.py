"""Probe accuracy: what the cockpit's HTTP probe measures against a server that answers after a
fixed 50 ms, beside `hey` and beside the server's own handling time (the truth).

Per run, one after the other against the same server (bench/delay_server.py, its own process):
1. headless: the Engine (as `cockpit status`/`run --headless` drive it) polls one HTTP source
   every 100 ms; every latency it puts in its window is kept (raw p50/p95/p99), and the
   source's own reading gives the figures the cockpit shows (from its DDSketch);
2. the clients alone, in a bare loop, timed from each request's own start (how much of the
   bias is the Python client): the cockpit's h11 client (`http_wire.WireClient`, what probes
   plain http:// URLs) and httpx (what probes https:// ones);
3. hey: the same number of requests, one at a time at 10/s (`hey -c 1 -q 10 -o csv`);
4. busy UI: the real `cockpit run` in tmux at 80x24 with the same plan, the whole screen forced
   to re-layout and repaint every 100 ms (bench/tui_probe.py), its probe's latencies kept.
Each is compared with the server's handling times of the requests it sent, leaving out the
first second (the first probe builds the client and connects; the next ones start late).
Target: the cockpit's p50 within 2 ms of the server's.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import engine_run
import peers
import plans
from delay_server import DelayServer
from tmuxing import Tmux

from cockpit.core.config import load_plan
from cockpit.core.engine import Engine, store_for

DELAY_S = 0.050
EVERY_S = 0.1
TARGET_MS = 2.0
WARMUP_S = 1.0  # left out at the start of each measurement
Timed = list[tuple[float, float]]  # (wall clock, ms)


async def _headless(plan_path: Path, seconds: float) -> tuple[Timed, dict[str, Any], Timed]:
    plan = load_plan(plan_path, {})
    engine = Engine(plan, store_for(plan))
    source: Any = engine.sources["api"]
    seen: Timed = []
    late: Timed = []  # how long after its planned time each poll began (ms)
    poll, add = source.poll, source.window.add

    async def timed_poll(planned_at: float) -> Any:
        late.append((time.time(), (time.perf_counter() - planned_at) * 1000.0))
        return await poll(planned_at)

    def add_and_keep(t: float, value_ms: float, **kw: Any) -> None:
        seen.append((t, value_ms))
        add(t, value_ms, **kw)

    source.poll, source.window.add = timed_poll, add_and_keep
    await engine_run.watch(engine, seconds)
    values = source.reading(time.time()).values
    return seen, {k: values.get(k) for k in ("p50", "p95", "p99")}, late


async def _client_alone(url: str, count: int, which: str) -> Timed:
    from cockpit.core.sources.http import USER_AGENT, new_client
    from cockpit.core.sources.http_wire import WireClient, request_headers, wire_url

    seen: Timed = []
    parsed = wire_url(url)
    assert parsed is not None
    wire = WireClient("GET", parsed, request_headers(parsed, {}, user_agent=USER_AGENT))
    async with new_client() as client:
        for _ in range(count):
            began, at = time.perf_counter(), time.time()
            if which == "h11":
                await wire.request()
            else:
                await client.get(url)
            seen.append((at, (time.perf_counter() - began) * 1000.0))
            await asyncio.sleep(max(0.0, EVERY_S - (time.perf_counter() - began)))
    await wire.aclose()
    return seen


def _hey(binary: str, url: str, count: int) -> Timed:
    began = time.time()
    done = subprocess.run(
        [binary, "-n", str(count), "-c", "1", "-q", str(round(1 / EVERY_S)), "-o", "csv", url],
        capture_output=True,
        text=True,
        timeout=count * EVERY_S * 3 + 30,
    )
    rows = csv.DictReader(io.StringIO(done.stdout))
    return [
        (began + float(r["offset"]), float(r["response-time"]) * 1000.0)
        for r in rows
        if r.get("status-code") == "200"
    ]


def _busy_tui(tmux: Tmux, folder: Path, plan_path: Path, seconds: float) -> tuple[Timed, float]:
    """The probe's latencies from a busy full-screen cockpit, and when its screen was up."""
    out = folder / "tui-samples.json"
    out.unlink(missing_ok=True)
    argv = [str(common.PYTHON), str(common.BENCH / "tui_probe.py"), "--out", str(out)]
    argv += ["--repaint-ms", "100", "--", "run", "-c", str(plan_path)]
    tmux.new("busy", argv, cwd=folder, env=common.clean_env(TERM="screen-256color"))
    up = tmux.wait_for("busy", lambda s: "a Advance" in s, 60.0, 0.1)
    shown_at = time.time()
    if up is None:
        tmux.kill("busy")
        return [], shown_at
    time.sleep(seconds)
    tmux.keys("busy", "q")
    deadline = time.monotonic() + 20
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    tmux.kill("busy")
    seen = [(t, ms) for t, ms in json.loads(out.read_text())] if out.exists() else []
    return seen, shown_at


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _compare(label: str, measured: Timed, truth: Timed, since: float) -> dict[str, Any]:
    cold = [ms for _, ms in measured[:1]]
    m = common.pcts([ms for t, ms in measured if t >= since])
    t = common.pcts([ms for at, ms in truth if at >= since])
    n = sum(1 for at, _ in measured if at >= since)
    bias = {k: _minus(m[k], t[k]) for k in m}
    common.say(
        f"  {label:<9} n={n:<4} p50 {common.fmt(m['p50'])} p95 {common.fmt(m['p95'])}"
        f" p99 {common.fmt(m['p99'])} ms | server p50 {common.fmt(t['p50'])}"
        f" p95 {common.fmt(t['p95'])} p99 {common.fmt(t['p99'])} ms"
    )
    return {"n": n, "measured": m, "truth": t, "bias": bias, "first_ms": cold}


def _one_run(
    server: DelayServer, plan_path: Path, seconds: float, hey: str | None, tmux: Tmux | None
) -> dict[str, Any]:
    run: dict[str, Any] = {}
    count = round(seconds / EVERY_S)
    server.reset()
    since = time.time() + WARMUP_S
    seen, shown, late = asyncio.run(_headless(plan_path, seconds))
    run["headless"] = _compare("headless", seen, server.handled(), since)
    run["headless"]["shown"] = shown
    run["headless"]["start_late"] = common.pcts([ms for t, ms in late if t >= since])
    for which in ("h11", "httpx"):
        server.reset()
        since = time.time() + WARMUP_S
        alone = asyncio.run(_client_alone(server.url, count, which))
        run[which] = _compare(which, alone, server.handled(), since)
    if hey:
        server.reset()
        since = time.time() + WARMUP_S
        run["hey"] = _compare("hey", _hey(hey, server.url, count), server.handled(), since)
    if tmux:
        server.reset()
        busy, shown_at = _busy_tui(tmux, plan_path.parent, plan_path, seconds)
        run["busy_tui"] = _compare("busy TUI", busy, server.handled(), shown_at + WARMUP_S)
    return run


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=5).parse_args()
    began = time.monotonic()
    result = common.start("probe_accuracy", "Probe accuracy (50 ms server)", args)
    seconds = 4.0 if args.quick else 30.0
    hey, tmux_bin = peers.tool("hey"), peers.tool("tmux")
    if hey is None:
        result.notes.append("hey missing: install it with `apt-get install -y hey`; skipped")
    if tmux_bin is None:
        result.notes.append("tmux missing: busy-UI column skipped")
    tmux = Tmux(tmux_bin) if tmux_bin else None
    runs: list[dict[str, Any]] = []
    try:
        with common.scratch("probe") as folder, DelayServer(DELAY_S) as server:
            every = f"{EVERY_S * 1000:g}ms"
            plan_path = plans.write(folder, plans.http_source("api", server.url, every=every))
            for i in range(result.runs):
                common.say(f"run {i + 1}/{result.runs}")
                runs.append(_one_run(server, plan_path, seconds, hey, tmux))
    finally:
        if tmux:
            tmux.close()
    result.figures = {"delay_ms": DELAY_S * 1000, "every_ms": EVERY_S * 1000, "runs": runs}
    result.notes.append(
        f"{seconds:g} s per measurement, 1 probe per {EVERY_S * 1000:g} ms, first"
        f" {WARMUP_S:g} s left out; figures are medians over runs"
    )
    _rows(result, runs)
    common.finish(result, began)
    return 0


def _med(runs: list[dict[str, Any]], who: str, kind: str, q: str) -> float | None:
    return common.median([r[who][kind][q] for r in runs if who in r])


def _bias_row(what: str, value: float | None, peer: str, peer_value: float | None) -> common.Row:
    judged = what.startswith("cockpit") and "p50" in what
    return common.Row(
        what,
        value,
        "ms",
        peer,
        peer_value,
        f"|bias| <= {TARGET_MS:g} ms" if judged else "",
        None if value is None or not judged else abs(value) <= TARGET_MS,
    )


def _rows(result: common.Result, runs: list[dict[str, Any]]) -> None:
    rows = result.rows
    truth50 = _med(runs, "headless", "truth", "p50")
    rows.append(common.Row("server's own handling time p50 (truth)", truth50, "ms"))
    shown = common.median([r["headless"]["shown"]["p50"] for r in runs])
    shown_bias = None if shown is None or truth50 is None else shown - truth50
    hey50 = _med(runs, "hey", "bias", "p50")
    rows.append(_bias_row("cockpit p50 as shown (sketch) - truth", shown_bias, "hey", hey50))
    for q in ("p50", "p95", "p99"):
        rows.append(
            _bias_row(
                f"cockpit {q} - truth {q} (headless)",
                _med(runs, "headless", "bias", q),
                "hey",
                _med(runs, "hey", "bias", q),
            )
        )
    late = common.median([r["headless"]["start_late"]["p50"] for r in runs])
    rows.append(common.Row("  of which: poll began late by (p50)", late, "ms"))
    alone = _med(runs, "h11", "bias", "p50")
    rows.append(common.Row("  of which: h11 client alone (http://) p50 - truth", alone, "ms"))
    alone = _med(runs, "httpx", "bias", "p50")
    rows.append(common.Row("  httpx alone (probes https://) p50 - truth", alone, "ms"))
    if any("busy_tui" in r for r in runs):
        for q in ("p50", "p99"):
            rows.append(
                _bias_row(
                    f"cockpit {q} - truth {q} (busy TUI)",
                    _med(runs, "busy_tui", "bias", q),
                    "headless",
                    _med(runs, "headless", "bias", q),
                )
            )


if __name__ == "__main__":
    sys.exit(main())
