"""The HTTP/1.1 probe of plain http:// URLs: h11 over asyncio streams, one connection.

Lighter than httpx for the one thing a probe does (see http.py's docstring for the numbers):
send one request, read the answer to its last byte, keep the connection for the next probe.

- One connection per source, no pool: a source has one poll in flight. It is kept alive while
  h11 says both sides finished the exchange (DONE) and the answer was not ended by the server
  closing; an idle one the server closed meanwhile is dropped before it is reused. Any error
  or cancellation (a timeout, a shutdown) drops it too: a half-read answer cannot be reused.
- The body is read and discarded as it arrives, never kept (h11 frames it: Content-Length,
  chunked or close-delimited); the answer ends at h11's EndOfMessage.
- Failures are raised as httpx's exception classes, worded as httpx words them, so the source
  describes and counts them the same whichever client probed.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import Mapping

import h11
import httpx

READ_SIZE = 64 * 1024  # per read, as httpcore
MAX_HEAD = 100 * 1024  # the largest answer head accepted, as httpcore
NO_ANSWER = "Server disconnected without sending a response."  # httpcore's words


def wire_url(url: str) -> httpx.URL | None:
    """`url` parsed, when this client can probe it; None when httpx must: not plain http, user
    and password in the URL, a proxy from the environment, or a URL httpx should judge."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    if parsed.scheme != "http" or not parsed.raw_host or parsed.userinfo:
        return None
    return None if proxied(parsed) else parsed


def proxied(url: httpx.URL) -> bool:
    """Whether httpx would send `url` through a proxy from the environment (HTTP_PROXY,
    ALL_PROXY, unless NO_PROXY says otherwise): httpx reads the same getproxies()."""
    proxies = urllib.request.getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return False
    host = url.raw_host.decode("ascii")
    # proxy_bypass matches NO_PROXY entries against both "host:port" and "host".
    named = host if ":" in host else f"{host}:{url.port or 80}"
    return not urllib.request.proxy_bypass(named)


def request_headers(
    url: httpx.URL, headers: Mapping[str, str], *, user_agent: str
) -> list[tuple[str, str]]:
    """What the probe sends, as httpx would: Host (with the port unless it is 80), Accept and
    User-Agent unless the source sets them, then the source's own headers."""
    given = {name.lower() for name in headers}
    sent: list[tuple[str, str]] = []
    if "host" not in given:
        sent.append(("Host", url.netloc.decode("ascii")))
    if "accept" not in given:
        sent.append(("Accept", "*/*"))
    if "user-agent" not in given:
        sent.append(("User-Agent", user_agent))
    sent.extend(headers.items())
    return sent


class WireClient:
    """Probes one URL with one method and headers over one kept-alive connection."""

    def __init__(self, method: str, url: httpx.URL, headers: list[tuple[str, str]]) -> None:
        self.host = url.raw_host.decode("ascii")
        self.port = url.port or 80
        self._method = method
        self._target = url.raw_path  # path and query, "/" when the URL has none
        self._headers = headers
        self._request: h11.Request | None = None  # built on first use, under error mapping
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h11: h11.Connection | None = None
        self.connections = 0  # opened so far
        self.is_closed = False

    @property
    def kept(self) -> bool:
        """Whether a connection is kept for the next probe, open as far as the loop has seen
        (the server's close of an idle connection shows here once the loop has read it)."""
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            return False
        return not (reader.at_eof() or writer.is_closing())

    async def request(self) -> tuple[int, str]:
        """One exchange: the answer's status and HTTP version ("HTTP/1.1"), body discarded."""
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        try:
            return await self._exchange()
        except BaseException:
            self._drop()  # an error, a timeout or a shutdown: the next probe reconnects
            raise

    async def aclose(self) -> None:
        self.is_closed = True
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(OSError):  # reset by the server: closed all the same
                await writer.wait_closed()

    async def _exchange(self) -> tuple[int, str]:
        if self._request is None:
            try:
                self._request = h11.Request(
                    method=self._method, target=self._target, headers=self._headers
                )
            except h11.LocalProtocolError as exc:  # a header or method h11 will not send
                raise httpx.LocalProtocolError(str(exc)) from exc
        reader, writer, conn = await self._connection()
        try:
            head = conn.send(self._request) or b""
            writer.write(head + (conn.send(h11.EndOfMessage()) or b""))
            await writer.drain()
        except h11.LocalProtocolError as exc:  # say, a Content-Length set with no body
            raise httpx.LocalProtocolError(str(exc)) from exc
        except OSError as exc:
            raise httpx.WriteError(_words(exc)) from exc
        status, version, ended_by_close = await self._answer(reader, conn)
        if not ended_by_close and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:  # Connection: close, HTTP/1.0, a close-delimited body, a switch of protocol
            self._drop()
        return status, version

    async def _connection(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection]:
        reader, writer, conn = self._reader, self._writer, self._h11
        if self.kept and reader is not None and writer is not None and conn is not None:
            return reader, writer, conn
        self._drop()  # none yet, or the server closed it while it was idle
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._reader, self._writer, self._h11 = reader, writer, conn
        self.connections += 1
        return reader, writer, conn

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, conn: h11.Connection) -> tuple[int, str, bool]:
        """Reads one answer to its end: (status, version, whether the server's close ended it)."""
        status, version, eof = 0, "", False
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:  # garbage, or closed mid-answer
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                try:
                    data = await reader.read(READ_SIZE)
                except OSError as exc:
                    raise httpx.ReadError(_words(exc)) from exc
                if not data:
                    if conn.their_state is h11.SEND_RESPONSE:
                        raise httpx.RemoteProtocolError(NO_ANSWER)
                    eof = True
                conn.receive_data(data)
            elif isinstance(event, h11.Data):
                pass  # discarded as it arrives
            elif isinstance(event, h11.Response | h11.InformationalResponse):
                status, version = event.status_code, f"HTTP/{event.http_version.decode()}"
            elif isinstance(event, h11.EndOfMessage):
                return status, version, eof
            elif event is h11.PAUSED:  # switched protocols (CONNECT, Upgrade): no HTTP after
                return status, version, True
            else:  # ConnectionClosed before an answer (h11 raises for it first, to be safe)
                raise httpx.RemoteProtocolError(NO_ANSWER)

    def _drop(self) -> None:
        writer = self._writer
        self._reader = self._writer = self._h11 = None
        if writer is not None:
            writer.close()


def _words(exc: OSError) -> str:
    # httpx (through anyio) says nothing more of a reset than its class, and the source then
    # reads "connection reset by the server": the same words for the same fault here.
    return "" if isinstance(exc, ConnectionResetError | BrokenPipeError) else str(exc)
