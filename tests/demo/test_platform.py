"""The demo platform for real: redis-server, PostgreSQL and the API on this machine."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from cockpit.demo.faults import FaultSchedule, ScheduledFault
from cockpit.demo.load import LoadGenerator, LoadShape
from cockpit.demo.platform import DemoOptions, DemoPlatform
from cockpit.demo.postgres_proc import alive
from cockpit.demo.redis_proc import answers_ping
from tests.demo.helpers import db_queries, metric, pg_farm_calls, redis_hits

pytestmark = pytest.mark.integration

QUIET = DemoOptions(load=False, handle_signals=False, db_delay_s=0.002, remote_latency=0)


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPlatform]:
    with DemoPlatform(QUIET) as platform:
        assert not platform.in_process, platform.notice
        yield platform


@pytest.fixture
def client(demo: DemoPlatform) -> Iterator[httpx.Client]:
    demo.faults.clear()
    demo.set_rollout(0)
    with httpx.Client(base_url=demo.urls["APP_URL"], timeout=10) as http:
        yield http
    demo.faults.clear()


def test_health_is_200_with_db_and_cache_up(client: httpx.Client) -> None:
    answer = client.get("/api/health")
    assert (answer.status_code, answer.json()) == (200, {"db": "ok", "cache": "ok"})


def test_api_serves_pages_details_and_searches(client: httpx.Client) -> None:
    page = client.get("/api/farms", params={"page": 1}).json()
    assert [farm["id"] for farm in page["items"]] == list(range(21, 41))
    farm = client.get("/api/farms/7").json()
    assert farm["id"] == 7
    assert farm["city"]
    found = client.get("/api/farms", params={"search": "apple"}).json()["items"]
    assert found
    assert all("apple" in " ".join(f["products"]) + f["name"] for f in found)
    assert client.get("/api/farms/99999").status_code == 404
    assert client.get("/api/farms", params={"page": "x"}).status_code == 400


def test_admin_rollout_sets_and_reads_the_percentage(client: httpx.Client) -> None:
    assert client.post("/admin/rollout", json={"percent": 25}).json() == {"percent": 25}
    assert client.get("/admin/rollout").json() == {"percent": 25}
    assert metric(client, "demo_rollout_percent") == 25
    assert client.post("/admin/rollout", json={"percent": 120}).status_code == 400
    # A plan's {percent} placeholder is filled in as text.
    assert client.post("/admin/rollout", json={"percent": "30"}).json() == {"percent": 30}
    assert client.post("/admin/rollout", json={"percent": "ten"}).status_code == 400
    assert client.post("/admin/rollout", content=b"nope").status_code == 400


def test_at_zero_percent_every_request_queries_the_database(
    demo: DemoPlatform, client: httpx.Client
) -> None:
    before, pg_before = db_queries(client), pg_farm_calls(demo.urls["DATABASE_URL"])
    for _ in range(3):
        for path in ("/api/farms", "/api/farms/5", "/api/farms?search=honey"):
            answer = client.get(path, headers={"X-User": "alice"})
            assert answer.headers["X-Path"] == "standard"
            assert answer.headers["X-Cache"] == "DB"
    assert db_queries(client) - before == 9
    assert pg_farm_calls(demo.urls["DATABASE_URL"]) - pg_before == 9


def test_at_hundred_percent_repeats_hit_l1_and_l2(demo: DemoPlatform, client: httpx.Client) -> None:
    client.post("/admin/rollout", json={"percent": 100})
    urls = demo.urls
    before = db_queries(client)
    pg_before, redis_before = pg_farm_calls(urls["DATABASE_URL"]), redis_hits(urls["REDIS_URL"])
    l1_before = metric(client, "demo_cache_hits_total", layer="l1")
    l2_before = metric(client, "demo_cache_hits_total", layer="l2")
    sources = [
        client.get("/api/farms/1234", params={"user": f"u{n}"}).headers["X-Cache"]
        for n in range(20)  # 8 instances: the first round fills their L1s from L2
    ]
    assert sources[0] == "DB"
    assert set(sources[1:]) <= {"L1", "L2"}
    assert db_queries(client) - before == 1  # 20 requests, one query
    assert pg_farm_calls(urls["DATABASE_URL"]) - pg_before == 1
    assert redis_hits(urls["REDIS_URL"]) - redis_before >= 3  # the other instances' L1s filled
    assert metric(client, "demo_cache_hits_total", layer="l1") - l1_before >= 6
    assert metric(client, "demo_cache_hits_total", layer="l2") - l2_before >= 3


def test_the_same_user_always_takes_the_same_path(client: httpx.Client) -> None:
    client.post("/admin/rollout", json={"percent": 50})
    paths = {
        user: {
            client.get("/api/farms/3", headers={"X-User": user}).headers["X-Path"] for _ in range(4)
        }  # fmt: skip
        for user in (f"user-{n}" for n in range(30))
    }
    assert all(len(seen) == 1 for seen in paths.values())
    assert {next(iter(seen)) for seen in paths.values()} == {"standard", "phase3"}


def test_load_warms_the_caches(demo: DemoPlatform, client: httpx.Client) -> None:
    client.post("/admin/rollout", json={"percent": 100})
    hits_before = metric(client, "demo_cache_hits_total")
    misses_before = metric(client, "demo_cache_misses_total", layer="l1")
    load = LoadGenerator(demo.urls["APP_URL"], LoadShape(rate=60))
    load.start()
    time.sleep(3)
    load.stop()
    assert load.stats.sent >= 120
    assert load.stats.failed == 0
    hits = metric(client, "demo_cache_hits_total") - hits_before
    misses = metric(client, "demo_cache_misses_total", layer="l1") - misses_before
    assert hits / (hits + misses) > 0.3


def test_error_spike(demo: DemoPlatform, client: httpx.Client) -> None:
    client.post("/admin/rollout", json={"percent": 100})
    demo.faults.set("errors", True)
    codes = [client.get("/api/farms", params={"user": f"u{n}"}).status_code for n in range(200)]
    assert 0.35 < codes.count(500) / 200 < 0.65
    client.post("/admin/rollout", json={"percent": 0})  # the flag rollback cures it
    codes = [client.get("/api/farms", params={"user": f"u{n}"}).status_code for n in range(50)]
    assert codes.count(500) == 0


def test_slow_database_raises_latency(demo: DemoPlatform, client: httpx.Client) -> None:
    def median_s() -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert client.get("/api/farms/9").status_code == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    fast = median_s()
    demo.faults.set("slow-db", True)
    slow = median_s()
    assert slow - fast > 0.1  # the fault adds 150 ms to every query


def test_redis_down_makes_health_503_and_requests_still_answer(
    demo: DemoPlatform, client: httpx.Client
) -> None:
    client.post("/admin/rollout", json={"percent": 100})
    port = int(demo.urls["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    demo.faults.set("redis-down", True)
    assert not answers_ping(port)
    answer = client.get("/api/health")
    assert (answer.status_code, answer.json()["cache"]) == (503, "down")
    assert client.get("/api/farms/2222", params={"user": "bob"}).status_code == 200
    assert metric(client, "demo_cache_errors_total") > 0
    demo.faults.set("redis-down", False)
    assert client.get("/api/health").status_code == 200


def test_scheduled_fault_fires_on_time(demo: DemoPlatform) -> None:
    schedule = FaultSchedule(demo.faults, [ScheduledFault("errors", 0.2)])
    schedule.start()
    time.sleep(0.6)
    schedule.stop()
    assert demo.faults.active() == {"errors"}


def test_stops_leaving_no_process_or_folder() -> None:
    with DemoPlatform(QUIET) as platform:
        assert platform.servers is not None
        folder = platform.servers.folder
        redis_pid = platform.servers.redis.process.pid if platform.servers.redis.process else 0
        postmaster = platform.servers.postgres.postmaster_pid()
        assert folder.is_dir()
        assert postmaster is not None
    assert not folder.exists()  # (other demos may run meanwhile: only this one's is checked)
    for pid in (redis_pid, postmaster):
        assert not alive(pid)


def test_sigterm_stops_the_standalone_platform() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cockpit.demo.platform", "--no-load"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))
        assert httpx.get(urls["APP_URL"] + "/api/health", timeout=5).status_code == 200
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    redis_port = int(urls["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    assert not answers_ping(redis_port)
    pg_port = int(urls["DATABASE_URL"].rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe:  # its folder is not printed; its server's port is
        assert probe.connect_ex(("127.0.0.1", pg_port)) != 0
