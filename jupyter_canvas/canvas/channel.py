"""A pycrdt ``Channel`` over one tornado websocket: what a ``YRoom`` serves.

Tornado pushes messages (``on_message``) while pycrdt-websocket pulls them (``async for``), so
received messages wait in a bounded buffer. Peers without write permission may follow the room
(sync step 1, awareness) but their document updates are dropped here, before the room sees
them, and they are told once with the y-protocols "permission denied" auth message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from pycrdt import Decoder, Encoder, YMessageType, YSyncMessageType
from tornado.websocket import WebSocketClosedError

#: y-protocols' auth message type (y-websocket ``messageAuth``) and its "permission denied".
AUTH_MESSAGE = 2
PERMISSION_DENIED = 0
#: Messages that change the document (a peer's sync step 2 carries its whole state).
_WRITE_STEPS = frozenset({YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE})


class WebSocket(Protocol):
    """The parts of a tornado ``WebSocketHandler`` a channel uses."""

    def write_message(self, message: bytes, binary: bool = ...) -> Any:
        """Send one frame."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection."""


def is_document_write(message: bytes) -> bool:
    """Whether a y-websocket message carries a document update."""
    return len(message) >= 2 and message[0] == YMessageType.SYNC and message[1] in _WRITE_STEPS


def _update_is_empty(message: bytes) -> bool:
    try:
        update = Decoder(message[2:]).read_message()
    except Exception:
        return False
    # An update with no struct and an empty delete set (what a fresh client answers step 1 with).
    return update is None or len(update) <= 2


def permission_denied_message(reason: str) -> bytes:
    """The y-protocols auth message a Yjs provider logs as "Permission denied"."""
    encoder = Encoder()
    encoder.write_var_uint(AUTH_MESSAGE)
    encoder.write_var_uint(PERMISSION_DENIED)
    encoder.write_var_string(reason)
    return encoder.to_bytes()


class RoomChannel:
    """One peer of a canvas room, as pycrdt-websocket sees it."""

    def __init__(
        self, socket: WebSocket, path: str, *, can_write: bool, max_buffered: int = 1000
    ) -> None:
        self._socket = socket
        self._path = path
        self.can_write = can_write
        self._max_buffered = max_buffered
        self._received: deque[bytes] = deque()
        self._arrived = asyncio.Event()
        self._unsent = 0
        self._closed = False
        self._told_read_only = False
        self._tasks: set[asyncio.Future[None]] = set()
        #: Updates dropped because the peer may not write (for logs and tests).
        self.refused_updates = 0

    @property
    def path(self) -> str:
        """The room's name (pycrdt-websocket logs it)."""
        return self._path

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._closed

    def __aiter__(self) -> RoomChannel:
        return self

    async def __anext__(self) -> bytes:
        while not self._received:
            if self._closed:
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        return self._received.popleft()

    async def recv(self) -> bytes:
        """The next message from the peer."""
        return await self.__anext__()

    async def send(self, message: bytes) -> None:
        """Send a message to the peer (dropped once the connection is closed)."""
        if self._closed:
            return
        if self._unsent >= self._max_buffered:
            # The peer does not read: drop it rather than buffer without bound.
            self.close_connection(1008, "too many unsent messages: the client is not reading")
            return
        try:
            future = self._socket.write_message(message, binary=True)
        except WebSocketClosedError:
            self.close()
            return
        self._unsent += 1
        future.add_done_callback(self._on_sent)

    def _on_sent(self, future: asyncio.Future[Any]) -> None:
        self._unsent -= 1
        if future.cancelled() or future.exception() is not None:
            self.close()

    def receive(self, message: bytes) -> None:
        """A message from the peer (called by the websocket handler)."""
        if self._closed:
            return
        if not self.can_write and is_document_write(message):
            self._refuse(message)
            return
        if len(self._received) >= self._max_buffered:
            self.close_connection(1008, "too many messages waiting: slow down")
            return
        self._received.append(message)
        self._arrived.set()

    def _refuse(self, message: bytes) -> None:
        if _update_is_empty(message):
            return
        self.refused_updates += 1
        if not self._told_read_only:
            self._told_read_only = True
            reason = (
                "you may follow this canvas but not change it (no write permission on contents)"
            )
            task = asyncio.ensure_future(self.send(permission_denied_message(reason)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """The connection closed: end the room's loop over this channel."""
        self._closed = True
        self._arrived.set()

    def close_connection(self, code: int, reason: str) -> None:
        """Close the websocket with a code and reason, then end the channel."""
        try:
            self._socket.close(code, reason)
        finally:
            self.close()
