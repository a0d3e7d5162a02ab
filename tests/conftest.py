"""Fixtures for real servers, shared by every test folder."""

pytest_plugins = [
    "tests.servers.http_server",
    "tests.servers.redis_server",
    "tests.servers.postgres_server",
    "tests.servers.prometheus_server",
]
