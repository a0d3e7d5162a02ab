"""Which URLs the h11 probe takes, and the request it would send: no network."""

from __future__ import annotations

import httpx
import pytest

from cockpit.core.plan import SourceSpec
from cockpit.core.sources.http import HttpSource
from cockpit.core.sources.http_wire import request_headers, wire_url

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize(
    ("url", "wire"),
    [
        ("http://app.test/health", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080/x", True),
        ("HTTP://App.Test/", True),
        ("https://app.test/health", False),  # TLS and HTTP/2: httpx
        ("http://user:secret@app.test/", False),  # credentials in the URL: httpx's Basic auth
        ("ftp://app.test/", False),
        ("http:///nohost", False),
        ("not a url", False),
    ],
)
def test_plain_http_urls_take_the_h11_probe(url: str, wire: bool) -> None:
    assert (wire_url(url) is not None) is wire


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_in_the_environment_leaves_the_url_to_httpx(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://proxy.test:3128")
    assert wire_url("http://app.test/health") is None
    monkeypatch.setenv("NO_PROXY", "app.test,other.test")
    assert wire_url("http://app.test/health") is not None
    assert wire_url("http://api.app.test/health") is not None  # a subdomain, as httpx
    assert wire_url("http://elsewhere.test/health") is None
    monkeypatch.setenv("NO_PROXY", "*")
    assert wire_url("http://elsewhere.test/health") is not None


def test_an_https_proxy_alone_does_not_apply_to_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert wire_url("http://app.test/health") is not None


def headers(url: str, given: dict[str, str] | None = None) -> list[tuple[str, str]]:
    parsed = wire_url(url)
    assert parsed is not None
    return request_headers(parsed, given or {}, user_agent="cockpit/9")


def test_the_request_headers_are_httpx_s() -> None:
    assert headers("http://app.test:8080/x") == [
        ("Host", "app.test:8080"),
        ("Accept", "*/*"),
        ("User-Agent", "cockpit/9"),
    ]
    assert headers("http://app.test:80/x")[0] == ("Host", "app.test")  # the default port
    assert headers("http://[::1]:8080/")[0] == ("Host", "[::1]:8080")
    assert headers("http://bücher.test/")[0] == ("Host", "xn--bcher-kva.test")
    with httpx.Client() as client:  # what httpx itself puts in Host, for the same URLs
        for url in ("http://app.test:8080/x", "http://[::1]:8080/", "http://bücher.test/"):
            assert client.build_request("GET", url).headers["Host"] == headers(url)[0][1]


def test_the_source_s_headers_win_whatever_their_case() -> None:
    sent = headers("http://app.test/", {"user-agent": "mine/1", "X-Probe": "yes"})
    assert sent == [
        ("Host", "app.test"),
        ("Accept", "*/*"),
        ("user-agent", "mine/1"),
        ("X-Probe", "yes"),
    ]
    hosts = [
        h for h in headers("http://app.test/", {"HOST": "front.test"}) if h[0].lower() == "host"
    ]
    assert hosts == [("HOST", "front.test")]


def test_the_target_is_path_and_query() -> None:
    for url, target in [
        ("http://app.test", b"/"),
        ("http://app.test/a/b?x=1&y=%20", b"/a/b?x=1&y=%20"),
        ("http://app.test/?q", b"/?q"),
    ]:
        parsed = wire_url(url)
        assert parsed is not None
        assert parsed.raw_path == target


async def test_a_source_given_a_client_keeps_it() -> None:
    settings = {"url": "http://app.test/", "window_s": 60.0, "headers": {}, "expect": None}
    spec = SourceSpec("api", "http", 1.0, 1.0, settings)
    async with httpx.AsyncClient() as client:
        assert HttpSource(spec, client=client).client is client
    assert HttpSource(spec).client is None  # its own, made on the first poll
