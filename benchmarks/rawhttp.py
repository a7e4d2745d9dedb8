"""A minimal keep-alive HTTP/1.1 client on asyncio streams.

The benchmark measures what the *server* costs per cell, so the client must cost as
little as possible and the same for every REST path: one request at a time per
connection, no redirects, no cookies, a ``Content-Length`` or chunked body. A general
client (httpx, tornado's) adds a few hundred microseconds per request of its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HTTPError(Exception):
    """The server answered with an unexpected status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class Response:
    """Status, headers (lower-case names) and body of one answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class Connection:
    """One persistent connection to the server; requests on it run one at a time."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self._auth = f"Authorization: token {token}\r\n".encode()
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = ()
    ) -> Response:
        """Send one request and read its answer (raise :class:`HTTPError` if unexpected)."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = b"".join(
            (
                f"{method} {path} HTTP/1.1\r\n".encode(),
                self._host_header,
                self._auth,
                b"Content-Type: application/json\r\n" if body is not None else b"",
                f"Content-Length: {len(payload)}\r\n\r\n".encode(),
            )
        )
        async with self._lock:
            for attempt in (1, 2):
                if self._writer is None:
                    await self._connect()
                assert self._reader is not None and self._writer is not None
                try:
                    self._writer.write(head + payload)
                    response = await self._read_response()
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    # The server closed an idle keep-alive connection: reconnect once.
                    self.close()
                    if attempt == 2:
                        raise
        if expect and response.status not in expect:
            raise HTTPError(response.status, response.body)
        return response

    async def _read_response(self) -> Response:
        reader = self._reader
        assert reader is not None
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)

    def close(self) -> None:
        """Close the socket (a later request reconnects)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
