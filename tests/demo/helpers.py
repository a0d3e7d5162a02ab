"""Reading the demo's figures the way the cockpit does: /metrics, Redis INFO, pg_stat_statements."""

from __future__ import annotations

import httpx
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

FARM_QUERIES = """SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
WHERE query LIKE '%FROM farms f%' AND dbid = (SELECT oid FROM pg_database
WHERE datname = current_database())"""


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """Sum of a sample over every label set matching `labels`."""
    text = client.get("/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def db_queries(client: httpx.Client) -> float:
    return metric(client, "demo_db_queries_total")


def pg_farm_calls(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(FARM_QUERIES).fetchone()
    assert row is not None
    return int(row[0])


def redis_hits(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        return int(client.info("stats")["keyspace_hits"])
    finally:
        client.close()
