"""jupyter_server's kernel websocket, with TCP_NODELAY on its socket.

JupyterLab talks to a kernel through ``/api/kernels/<id>/channels``. jupyter_server writes a
kernel's small messages (status, execute_input, a short stream, the reply) as separate
websocket frames; with Nagle's algorithm on, a frame written while an earlier one is still
unacknowledged waits for the client's delayed ACK, about 40 ms on Linux. So a trivial cell
took ~44 ms through that websocket against ~4 ms over ZMQ. TCP_NODELAY sends each frame at
once. That is all these classes change: every message, its order and its content stay what
jupyter_server sends, and tornado's own websocket handlers already set it on other sockets.

:class:`~jupyter_canvas.app.CanvasApp` puts the class matching the server's mode in place
when the extension loads (``CanvasApp.kernel_websocket_nodelay``), unless the operator
configured a kernel websocket connection class of their own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.gateway.connections import GatewayWebSocketConnection
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


def _nodelay(connection: Any) -> None:
    handler = getattr(connection, "websocket_handler", None)
    if handler is not None and getattr(handler, "ws_connection", None) is not None:
        handler.set_nodelay(True)


class NoDelayKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's kernel websocket connection (local kernels) with TCP_NODELAY."""

    def connect(self) -> asyncio.Future[None] | None:  # type: ignore[override]  # as its parent
        """Set TCP_NODELAY on the websocket, then connect as jupyter_server does."""
        _nodelay(self)
        return super().connect()


class NoDelayGatewayWebSocketConnection(GatewayWebSocketConnection):
    """jupyter_server's gateway kernel websocket connection with TCP_NODELAY."""

    async def connect(self) -> None:
        """Set TCP_NODELAY on the websocket, then connect as jupyter_server does."""
        _nodelay(self)
        await super().connect()


#: jupyter_server's default class for each mode, and ours in its place.
REPLACEMENTS: dict[type, type] = {
    ZMQChannelsWebsocketConnection: NoDelayKernelWebsocketConnection,
    GatewayWebSocketConnection: NoDelayGatewayWebSocketConnection,
}


def enable_nodelay(serverapp: Any, settings: dict[str, Any], log: Any) -> type | None:
    """Put the no-delay class in place of jupyter_server's default; returns it (or None).

    ``settings`` are the tornado settings the extension hands to the web application (an
    extension's settings are merged into it after ``initialize_settings``).

    Left alone when the operator set ``ServerApp.kernel_websocket_connection_class``
    (their class may do its own I/O) or the server runs another class for any reason.
    """
    if "kernel_websocket_connection_class" in serverapp.config.get("ServerApp", {}):
        log.info(
            "jupyter_canvas: ServerApp.kernel_websocket_connection_class is configured; "
            "kernel websockets keep it (no TCP_NODELAY from us)"
        )
        return None
    current = serverapp.kernel_websocket_connection_class
    ours = REPLACEMENTS.get(current)
    if ours is None:
        return None
    serverapp.kernel_websocket_connection_class = ours  # whose close_all() runs at stop
    settings["kernel_websocket_connection_class"] = ours  # what the handlers instantiate
    return ours
