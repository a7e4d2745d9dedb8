"""The collaboration rooms' websocket (``/api/collaboration/room/<id>``), with TCP_NODELAY.

The outputs of a notebook cell the server runs reach JupyterLab through the shared document:
the server writes them into the room's Y document and jupyter_server_ydoc sends the update
on the room's websocket. tornado leaves Nagle's algorithm on for websockets, so an update
written while the previous frame is unacknowledged waits for the client's delayed ACK (about
40 ms on Linux): most of Shift-Enter-to-output. :mod:`.kernel_websocket` sets TCP_NODELAY on
kernel websockets for the same reason; this does it for the rooms.

:func:`nodelay_rooms` swaps, in the server's own routing table only (the class itself is not
changed), jupyter_server_ydoc's room handler for a subclass that sets TCP_NODELAY when the
websocket opens. Every message, its order and content stay what jupyter_server_ydoc sends.
It runs once every server extension has loaded (their routes are in place then).
"""

from __future__ import annotations

from typing import Any

from tornado.routing import Rule


def _subclass(base: type) -> type:
    class NoDelayYDocWebSocketHandler(base):  # type: ignore[valid-type,misc]
        """jupyter_server_ydoc's room websocket with TCP_NODELAY."""

        async def open(self, *args: Any, **kwargs: Any) -> None:
            if getattr(self, "ws_connection", None) is not None:
                self.set_nodelay(True)
            await super().open(*args, **kwargs)

    return NoDelayYDocWebSocketHandler


def _rules(router: Any) -> list[Rule]:
    """Every rule of a tornado router and of the routers it delegates to."""
    found: list[Rule] = []
    for rule in getattr(router, "rules", None) or []:
        found.append(rule)
        if hasattr(rule.target, "rules"):
            found.extend(_rules(rule.target))
    return found


def nodelay_rooms(web_app: Any) -> int:
    """Route the collaboration rooms to a TCP_NODELAY handler; returns how many routes."""
    try:
        from jupyter_server_ydoc.handlers import YDocWebSocketHandler
    except Exception:  # collaboration is not installed: nothing to do
        return 0
    swapped = 0
    ours: dict[type, type] = {}
    for rule in _rules(getattr(web_app, "default_router", None)):
        target = rule.target
        if not isinstance(target, type) or not issubclass(target, YDocWebSocketHandler):
            continue
        if getattr(target, "__name__", "") == "NoDelayYDocWebSocketHandler":
            continue
        rule.target = ours.setdefault(target, _subclass(target))
        swapped += 1
    return swapped
