"""Quantile accuracy and memory of the cockpit's latency window (DDSketch, 1% relative accuracy).

Accuracy: 10^6 samples of two heavy-tailed distributions (lognormal, median 50 ms, sigma 1; and
Pareto, alpha 1.5, from 20 ms) go into one `QuantileWindow` (spread over its 12 sub-windows, so
the read merges sketches as the cockpit does); its p50/p95/p99 (and p99.9) are compared with
numpy's exact percentiles of the same samples. Target: relative error <= 1%.

Memory: one `HttpSource` takes 10^7 probe results, one per second of a fake clock (115 days of
1 s probes), through the same path a real probe's answer takes (`_record`), with a reading
every 100 samples; its deep size (every object reachable from it, code and modules aside) and
the process's RSS are read at 10^4, 10^5, 10^6 and 10^7 samples. Target: flat.

numpy comes from bench/.venv-peers/numpy (installed when missing), never from the project venv.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from typing import Any

import common
import peers

from cockpit.core.metrics.sketch import QuantileWindow
from cockpit.core.plan import SourceSpec
from cockpit.core.sources.http import HttpSource

QS = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
JUDGED = ("p50", "p95", "p99")
TARGET = 0.01
SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _samples(np: Any, kind: str, n: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(mean=np.log(50.0), sigma=1.0, size=n)
    return 20.0 * (1.0 + rng.pareto(1.5, size=n))


def accuracy(np: Any, kind: str, n: int, seed: int) -> dict[str, Any]:
    values = _samples(np, kind, n, seed)
    window = QuantileWindow(60.0, slots=12)
    span = 55.0  # inside one window: every sub-window gets a share
    for i, value in enumerate(values.tolist()):
        window.add(i * span / n, value)
    now = span + 4.9
    assert window.count(now) == n, "every sample must be in the window read"
    merged = window.merged(now)
    errors: dict[str, float] = {}
    found: dict[str, dict[str, float]] = {}
    for name, q in QS.items():
        exact = float(np.quantile(values, q))
        sketch = float(merged.get_quantile_value(q) or 0.0)
        errors[name] = abs(sketch - exact) / exact
        found[name] = {"exact": exact, "sketch": sketch}
    return {"errors": errors, "values": found}


def deep_size(root: object) -> int:
    """Bytes of every object reachable from `root`, leaving out code, classes and modules."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def memory(np: Any, total: int) -> list[dict[str, float]]:
    clock = [1.7e9]
    spec = SourceSpec("api", "http", 1.0, 5.0, {"window_s": 60.0, "url": "http://127.0.0.1/"})
    source = HttpSource(spec, clock=lambda: clock[0], timer=lambda: clock[0])
    checkpoints = [c for c in (10**4, 10**5, 10**6, 10**7) if c <= total]
    chunk = 100_000
    points: list[dict[str, float]] = []
    done = 0
    rng_seed = 7
    while done < total:
        size = min(chunk, total - done)
        for i, value in enumerate(_samples(np, "lognormal", size, rng_seed + done).tolist()):
            clock[0] += 1.0  # one probe per second
            source._record(clock[0] - value / 1000.0, 200, None, False)
            if i % 100 == 0:
                source.reading(clock[0])
            if done + i + 1 in checkpoints:
                source.reading(clock[0])  # as after a poll: the window's merged view is held
                gc.collect()
                points.append(
                    {
                        "samples": done + i + 1,
                        "deep_kib": deep_size(source) / 1024,
                        "sub_windows": source.window.slots_held,
                        "rss_mib": common.self_rss_mib(),
                    }
                )
                common.say(
                    f"  {done + i + 1:>10,} samples: source {points[-1]['deep_kib']:.1f} KiB,"
                    f" RSS {points[-1]['rss_mib']:.1f} MiB"
                )
        done += size
    return points


def main() -> int:
    args = common.parser(__doc__.splitlines()[0], runs=3).parse_args()
    began = time.monotonic()
    result = common.start("quantiles", "Quantile accuracy and memory", args)
    folder = peers.numpy_path()
    if folder is None:
        result.notes.append("numpy could not be installed: skipped")
        common.finish(result, began)
        return 0
    sys.path.insert(0, str(folder))
    import numpy as np  # type: ignore[import-not-found]

    n = 10**5 if args.quick else 10**6
    total = 10**5 if args.quick else 10**7
    acc: dict[str, list[dict[str, Any]]] = {"lognormal": [], "pareto": []}
    for kind in acc:
        for seed in range(result.runs):
            acc[kind].append(accuracy(np, kind, n, seed))
            worst = max(acc[kind][-1]["errors"][q] for q in JUDGED)
            common.say(f"  {kind} seed {seed}: worst error over p50/p95/p99 {worst:.3%}")
    common.say(f"memory over {total:,} samples")
    points = memory(np, total)
    result.figures = {"samples": n, "accuracy": acc, "memory": points, "numpy": np.__version__}
    for kind, runs in acc.items():
        for q in QS:
            errs = [r["errors"][q] for r in runs]
            worst = max(errs)
            judged = q in JUDGED
            result.rows.append(
                common.Row(
                    f"{kind} {q} relative error (worst of {len(errs)})",
                    100 * worst,
                    "%",
                    "numpy exact",
                    None,
                    f"<= {TARGET:.0%}" if judged else "",
                    worst <= TARGET if judged else None,
                )
            )
    first, last = points[0], points[-1]
    growth = (last["deep_kib"] - first["deep_kib"]) / first["deep_kib"]
    result.rows.append(
        common.Row(
            f"HTTP source size after {last['samples']:,.0f} samples",
            last["deep_kib"],
            "KiB",
            f"after {first['samples']:,.0f}",
            first["deep_kib"],
            "flat",
            abs(growth) <= 0.10,
        )
    )
    rss_from = points[1] if len(points) > 2 else first
    result.rows.append(
        common.Row(
            f"process RSS after {last['samples']:,.0f} samples",
            last["rss_mib"],
            "MiB",
            f"after {rss_from['samples']:,.0f}",
            rss_from["rss_mib"],
        )
    )
    result.notes.append(
        f"{n:,} samples per distribution and seed; exact = numpy.quantile (linear);"
        " 'flat' means the source's deep size within 10% of its size after 10^4 samples"
    )
    common.finish(result, began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
