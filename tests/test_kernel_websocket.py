"""JupyterLab's own path to a kernel, ``/api/kernels/<id>/channels``, with TCP_NODELAY.

The extension puts :class:`NoDelayKernelWebsocketConnection` (jupyter_server's connection
class, plus TCP_NODELAY on the socket) in place when it loads. These tests open a real kernel
websocket, exchange real messages with a real ipykernel and read the option off the server's
own socket; the latency it buys is measured in ``benchmarks/`` (kernel_ws path), not here.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from traitlets.config import Config

from jupyter_canvas.kernel_websocket import (
    NoDelayGatewayWebSocketConnection,
    NoDelayKernelWebsocketConnection,
)


async def kernel_info_over_websocket(jp_ws_fetch: Any, kernel_id: str) -> dict[str, Any]:
    """Open the kernel's channels websocket, ask kernel_info, return the reply's content."""
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "kernel_info_request",
                "username": "test",
                "session": uuid.uuid4().hex,
                "version": "5.3",
                "date": "2026-01-01T00:00:00Z",
            },
            "parent_header": {},
            "metadata": {},
            "content": {},
            "channel": "shell",
            "buffers": [],
        }
        ws.write_message(json.dumps(request))
        while True:
            message = json.loads(await ws.read_message())
            if message["parent_header"].get("msg_id") == msg_id and message["channel"] == "shell":
                assert message["header"]["msg_type"] == "kernel_info_reply"
                return message["content"]  # type: ignore[no-any-return]
    finally:
        ws.close()


def server_side_nodelay() -> list[int]:
    """TCP_NODELAY of each open kernel websocket's socket, as the server holds it."""
    values = []
    for connection in list(ZMQChannelsWebsocketConnection._open_sockets):
        stream = connection.websocket_handler.ws_connection.stream
        values.append(stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return values


async def open_and_read_option(jp_ws_fetch: Any, kernel_id: str) -> tuple[dict[str, Any], int]:
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        (option,) = server_side_nodelay()
    finally:
        ws.close()
    return await kernel_info_over_websocket(jp_ws_fetch, kernel_id), option


async def test_kernel_websockets_send_without_delay(
    jp_serverapp: Any, jp_ws_fetch: Any, kernel_id: str
) -> None:
    assert jp_serverapp.kernel_websocket_connection_class is NoDelayKernelWebsocketConnection
    settings = jp_serverapp.web_app.settings
    assert settings["kernel_websocket_connection_class"] is NoDelayKernelWebsocketConnection
    reply, option = await open_and_read_option(jp_ws_fetch, kernel_id)
    assert reply["status"] == "ok" and reply["language_info"]["name"] == "python"
    assert option != 0


@pytest.mark.parametrize("canvas_app_config", [{"kernel_websocket_nodelay": False}])
async def test_the_setting_turns_it_off(
    jp_serverapp: Any, jp_ws_fetch: Any, kernel_id: str
) -> None:
    assert jp_serverapp.kernel_websocket_connection_class is ZMQChannelsWebsocketConnection
    reply, option = await open_and_read_option(jp_ws_fetch, kernel_id)
    assert reply["status"] == "ok"
    assert option == 0  # jupyter_server's own websocket leaves Nagle's algorithm on


class OperatorsConnection(ZMQChannelsWebsocketConnection):
    """A class an operator configured: the extension must leave it in place."""


@pytest.mark.parametrize(
    "jp_server_config",
    [
        Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"jupyter_canvas": True},
                    "kernel_websocket_connection_class": OperatorsConnection,
                }
            }
        )
    ],
)
async def test_an_operators_class_is_kept(jp_serverapp: Any) -> None:
    assert jp_serverapp.kernel_websocket_connection_class is OperatorsConnection
    assert jp_serverapp.web_app.settings["kernel_websocket_connection_class"] is OperatorsConnection


def test_each_mode_has_its_class() -> None:
    from jupyter_server.gateway.connections import GatewayWebSocketConnection

    from jupyter_canvas.kernel_websocket import REPLACEMENTS

    assert REPLACEMENTS == {
        ZMQChannelsWebsocketConnection: NoDelayKernelWebsocketConnection,
        GatewayWebSocketConnection: NoDelayGatewayWebSocketConnection,
    }
    assert issubclass(NoDelayGatewayWebSocketConnection, GatewayWebSocketConnection)
