"""Without Redis and PostgreSQL the demo runs on an in-process store and says so."""

from __future__ import annotations

import httpx
import pytest

from cockpit.demo.platform import DemoOptions, DemoPlatform

pytestmark = pytest.mark.integration


def test_in_process_platform_serves_caches_and_reports_itself() -> None:
    options = DemoOptions(
        load=False, handle_signals=False, db_delay_s=0, remote_latency=0, in_process=True
    )
    with DemoPlatform(options) as demo:
        assert demo.in_process
        assert demo.notice is not None
        assert "in-process" in demo.notice
        assert set(demo.urls) == {"APP_URL"}
        with httpx.Client(base_url=demo.urls["APP_URL"], timeout=10) as client:
            assert client.get("/api/health").status_code == 200
            client.post("/admin/rollout", json={"percent": 100})
            sources = [client.get("/api/farms/4").headers["X-Cache"] for _ in range(6)]
            assert sources[0] == "DB"
            assert set(sources[1:]) <= {"L1", "L2"}
            demo.faults.set("redis-down", True)
            assert client.get("/api/health").status_code == 503
            assert client.get("/api/farms/5").status_code == 200
