"""How the canvas concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

``setup`` creates the room manager (configurable as ``c.CanvasRoomManager.<trait>``),
``handlers`` lists the layout and room routes, ``start`` starts the rooms' websocket server
once every extension has loaded, ``stop`` saves every room and frees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .handlers import MANAGER_KEY, default_handlers
from .manager import CanvasRoomManager

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices


def setup(app: CanvasApp, services: CanvasServices) -> None:
    """Create the canvas room manager."""
    services.extras[MANAGER_KEY] = CanvasRoomManager(app.serverapp, parent=app)


def handlers() -> list[tuple[str, Any]]:
    """The canvas routes."""
    return list(default_handlers)


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Start the rooms' websocket server."""
    await services.extras[MANAGER_KEY].start()


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Save every room's pending moves and free the rooms."""
    manager = services.extras.get(MANAGER_KEY)
    if manager is not None:
        await manager.stop()
