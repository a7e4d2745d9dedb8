"""The events websocket, ``GET /api/queue/events``: the server's numbered event stream.

Rules as jupyter_server's own kernel websocket: authenticated (``ws_authenticated``),
authorized (``kernels``/``read``), Origin checked (``WebSocketMixin.check_origin``: a
foreign Origin gets 403 unless the server's ``allow_origin``/``allow_origin_pat`` admit
it), keep-alive pings (``WebSocketMixin``), and TCP_NODELAY so small frames leave at once.

Each connection reads the bus through a bounded :class:`~jupyter_canvas.events.bus.Subscription`
and writes a batch at a time, waiting until the socket took it before writing the next:
a client that does not read makes its own backlog grow to the bound, then it is closed
with code 1013 (try again later) and can reconnect with ``since=<last seq it saw>``.

Without websocket compression (the server's default) a batch goes out as the events'
prebuilt frames (:attr:`~jupyter_canvas.events.bus.PublishedEvent.frame`, built once per
event for every client) joined into one write: per client and event there is no UTF-8
encoding, no frame building, no future and no system call of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..base import CanvasHandlerMixin
from .bus import PublishedEvent, Subscription
from .settings import EVENTS_SETTINGS_KEY, EventStreamSettings

AUTH_RESOURCE = "kernels"

#: Close code for a client that fell too far behind ("try again later").
CLOSE_TOO_SLOW = 1013

#: Most events written to one client in one step of the event loop.
_EVENTS_PER_WRITE = 500


def _consume_error(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class QueueEventsHandler(
    CanvasHandlerMixin, ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler
):
    """Streams queue, output and kernel events as JSON text frames."""

    auth_resource = AUTH_RESOURCE

    subscription: Subscription | None = None
    _sender: asyncio.Future[None] | None = None
    _kernel_id: str | None = None
    _path: str | None = None
    _since: int | None = None
    _follow: tuple[str, ...] = ()
    #: Whether frames are written as prebuilt bytes (no compression negotiated).
    _raw_frames = False

    # -- handshake -----------------------------------------------------------------------------
    def set_default_headers(self) -> None:
        """No API headers on a websocket upgrade (as jupyter_server's kernel websocket)."""

    def get_compression_options(self) -> dict[str, Any] | None:
        """Use the server's websocket compression setting."""
        return self.settings.get("websocket_compression_options", None)

    @property
    def ping_interval(self) -> float:
        """Keep-alive ping interval in ms: the server's ``ws_ping_interval``, else ours."""
        default = self.services.config.ws_ping_interval * 1000
        return float(self.settings.get("ws_ping_interval", default))

    @property
    def stream_settings(self) -> EventStreamSettings:
        """The events websocket's settings (``c.EventStreamSettings``)."""
        return self.services.extras[EVENTS_SETTINGS_KEY]  # type: ignore[no-any-return]

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Authorize, read the filters, then upgrade to a websocket."""
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        )
        if not authorized:
            raise web.HTTPError(403, "reading the events needs the kernels:read permission")
        self._read_query()
        if self._path is not None:
            self._follow = await self._kernels_of_notebook(self._path)
        await super().get(*args, **kwargs)

    def _read_query(self) -> None:
        self._kernel_id = self.get_query_argument("kernel_id", None) or None
        path = self.get_query_argument("path", None)
        self._path = (path.strip("/") or None) if path else None
        since = self.get_query_argument("since", None)
        if since is not None and since != "":
            try:
                self._since = int(since)
            except ValueError:
                raise web.HTTPError(
                    400,
                    f"since must be the seq of the last event you saw (an integer), got {since!r}",
                ) from None
            if self._since < 0:
                raise web.HTTPError(400, f"since must be 0 or more, got {since}")

    async def _kernels_of_notebook(self, path: str) -> tuple[str, ...]:
        """The kernels of the notebook's sessions, so their status events pass the filter."""
        manager = self.settings.get("session_manager")
        if manager is None:
            return ()
        try:
            sessions = await ensure_async(manager.list_sessions())
        except Exception:
            return ()
        return tuple(
            s["kernel"]["id"]
            for s in sessions
            if (s.get("path") or "").strip("/") == path and s.get("kernel")
        )

    # -- streaming -----------------------------------------------------------------------------
    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Subscribe (replaying from ``since``) and start sending."""
        super().open(*args, **kwargs)  # keep-alive pings
        self.set_nodelay(True)
        subscription = self.services.bus.subscribe(
            kernel_id=self._kernel_id,
            path=self._path,
            since=self._since,
            limit=self.services.config.ws_send_buffer,
            max_bytes=self.stream_settings.send_buffer_bytes or None,
            follow_kernels=self._follow,
        )
        subscription.on_overflow = self._on_overflow
        self.subscription = subscription
        # tornado negotiates permessage-deflate only when compression options are given.
        self._raw_frames = self.get_compression_options() is None
        self._sender = asyncio.ensure_future(self._send(subscription))

    async def _send(self, subscription: Subscription) -> None:
        try:
            while True:
                events = await subscription.next_events()
                if events is None:
                    return
                connection = self.ws_connection
                if connection is None or connection.is_closing():
                    return
                if self._raw_frames and connection.stream is not None:
                    await self._write_frames(connection.stream, events)
                    continue
                written = None
                for text in (event.text for event in events):
                    if written is not None:
                        # Only the last write is awaited; the others' errors (a closed
                        # connection) are the same error, seen there.
                        written.add_done_callback(_consume_error)
                    written = self.write_message(text)
                if written is not None:
                    # Flow control: the next batch waits until the socket took this one.
                    await written
        except (WebSocketClosedError, StreamClosedError):
            pass
        finally:
            subscription.close()

    async def _write_frames(self, stream: IOStream, events: list[PublishedEvent]) -> None:
        """Write prebuilt frames, a bounded slice at a time, each slice in one call.

        Flow control: each slice waits until the socket took the previous one. A client
        that fell far behind can have thousands of events waiting: writing them all in
        one step of the event loop would hold every other request up, so the loop gets a
        turn between slices.
        """
        for start in range(0, len(events), _EVENTS_PER_WRITE):
            if start:
                await asyncio.sleep(0)
            chunk = events[start : start + _EVENTS_PER_WRITE]
            await stream.write(b"".join(event.frame for event in chunk))

    def _on_overflow(self, subscription: Subscription) -> None:
        self.log.warning(
            "jupyter_canvas: dropping an events websocket that fell behind by more than %s "
            "events or %s bytes",
            subscription.limit,
            subscription.max_bytes,
        )
        with contextlib.suppress(Exception):
            self.close(
                CLOSE_TOO_SLOW, "too far behind: reconnect with since=<the last seq you saw>"
            )

    def on_message(self, message: str | bytes) -> None:
        """The stream is one-way: messages from the client are ignored."""

    def on_close(self) -> None:
        """Stop sending and let go of the subscription."""
        if self.subscription is not None:
            self.subscription.close()
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()


default_handlers = [
    (r"/api/queue/events/?", QueueEventsHandler),
]
