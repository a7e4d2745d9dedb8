"""Canvas routes: the layout over REST and the room over a y-websocket.

- ``GET /api/canvas/layout/<path>`` (``contents`` read): the notebook's layout.
- ``PATCH /api/canvas/layout/<path>`` (``contents`` write): move cells through the room.
- ``GET /api/canvas/room/<file_id>`` websocket (``contents`` read to join; document updates
  from a peer without ``contents`` write are dropped, see :mod:`.channel`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import ensure_async
from tornado import web
from tornado.websocket import WebSocketHandler

from ..base import CanvasAPIHandler, CanvasHandlerMixin
from .channel import RoomChannel
from .layout import LayoutError, parse_moves

if TYPE_CHECKING:
    from .manager import CanvasRoomManager
    from .room import CanvasRoom

T = TypeVar("T")

AUTH_RESOURCE = "contents"
#: Where the plugin puts the room manager in ``services.extras``.
MANAGER_KEY = "canvas"


def _manager(handler: CanvasHandlerMixin) -> CanvasRoomManager:
    return handler.services.extras[MANAGER_KEY]  # type: ignore[no-any-return]


async def _in_own_task(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in a short-lived task of its own.

    The async contents manager reads files in anyio worker threads, and anyio stops such a
    thread only when the task that started it ends. A websocket's task lives as long as the
    connection, so a thread started there would keep the process from exiting when the server
    stops with a canvas still connected.
    """
    return await asyncio.create_task(work)


class CanvasLayoutHandler(CanvasAPIHandler):
    """A notebook's canvas layout: read it, or move cells."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        """Answer the layout."""
        self.write_json(await _manager(self).layout(path))

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        """Move cells (``{"cells": {id: {x, y, …}}}``); answer the layout after the move."""
        body = self.json_body()
        try:
            moves = parse_moves(body)
        except LayoutError as err:
            raise web.HTTPError(400, str(err)) from None
        self.write_json(await _manager(self).move(path, moves))


class CanvasRoomHandler(CanvasHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """The y-websocket of a notebook's canvas room.

    Authenticated and authorized like any jupyter_server websocket, and the Origin header is
    checked like jupyter_server's own websockets do (``WebSocketMixin.check_origin``).
    """

    auth_resource = AUTH_RESOURCE

    _channel: RoomChannel | None = None
    _room: CanvasRoom | None = None
    _serving: asyncio.Task[None] | None = None
    _can_write = False

    @property
    def manager(self) -> CanvasRoomManager:
        """The canvas rooms of the server."""
        return _manager(self)

    @ws_authenticated
    @authorized
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Check the notebook exists and what the user may do, then upgrade."""
        file_id = kwargs["file_id"]
        await _in_own_task(self.manager.room_path(file_id))
        user = self.current_user
        self._can_write = bool(
            await ensure_async(self.authorizer.is_authorized(self, user, "write", AUTH_RESOURCE))
        )
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Join the room and let it serve this peer."""
        super().open(*args, **kwargs)  # keep-alive pings
        self.set_nodelay(True)
        file_id = kwargs["file_id"]
        channel = RoomChannel(self, f"canvas:{file_id}", can_write=self._can_write)
        self._channel = channel
        try:
            room = await _in_own_task(self.manager.join(file_id, channel))
        except web.HTTPError as err:
            self.close(4000 + err.status_code, (err.log_message or "")[:120])
            return
        except Exception as err:
            self.log.error("canvas: could not open the room of %s", file_id, exc_info=err)
            self.close(4500, "the canvas room could not be opened")
            return
        self._room = room
        self._serving = asyncio.create_task(self._serve(room, channel))

    async def _serve(self, room: CanvasRoom, channel: RoomChannel) -> None:
        try:
            await room.serve(channel)
        finally:
            self.manager.leave(room, channel)

    def on_message(self, message: str | bytes) -> None:
        """A y-websocket frame from the peer."""
        if self._channel is None:
            return
        if isinstance(message, str):
            self._channel.close_connection(1003, "the canvas room speaks binary y-websocket frames")
            return
        self._channel.receive(message)

    def on_close(self) -> None:
        """The peer left."""
        if self.ping_callback is not None:
            self.ping_callback.stop()
        if self._channel is not None:
            # Ends the room's loop over this peer; ``_serve`` then detaches it.
            self._channel.close()


default_handlers: list[tuple[str, Any]] = [
    (r"/api/canvas/layout/(?P<path>.+)", CanvasLayoutHandler),
    (r"/api/canvas/room/(?P<file_id>[^/]+)/?", CanvasRoomHandler),
]
