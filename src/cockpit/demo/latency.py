"""What the standard path costs besides the query itself: a remote database's round trips,
connection setup and serialization, which is what Phase 3's caches save.

Fitted to the plan's "Before Phase 3" baseline (mean and p95 per endpoint) as log-normal
distributions, so the demo's standard path looks like the system the plan describes:
/api/farms mean 450 ms, p95 800 ms; /api/farms/{id} 350 / 650 ms; search 520 / 900 ms.
The database's own time (the per-query delay and the slow-database fault) runs inside the
statement, where pg_stat_statements sees it; this part does not, as in production, where
`mean_query_ms` stays under the plan's 100 ms while users wait half a second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# (median seconds, sigma) per kind of query: mean = median * e^(sigma^2 / 2),
# p95 = median * e^(1.645 sigma).
FITS = {
    "list": (0.415, 0.40),
    "detail": (0.320, 0.43),
    "search": (0.485, 0.38),
}
CAP_S = 5.0  # the log-normal's tail is long; nobody waits past this for one round trip


@dataclass(frozen=True)
class RemoteLatency:
    """Seconds to wait around one database read of `kind`; `scale` 0 turns it off."""

    scale: float = 1.0

    def sample(self, kind: str, rng: random.Random) -> float:
        if self.scale <= 0:
            return 0.0
        median, sigma = FITS.get(kind, FITS["list"])
        return min(CAP_S, self.scale * median * math.exp(sigma * rng.gauss(0.0, 1.0)))
