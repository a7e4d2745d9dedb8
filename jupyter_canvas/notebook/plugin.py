"""How the notebook concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

``setup`` runs in ``initialize_settings`` (create engines, put them on ``services``),
``handlers`` lists the routes, ``start`` runs once every server extension has loaded,
``stop`` runs when the server stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices


def setup(app: CanvasApp, services: CanvasServices) -> None:
    """Create this concern's engines."""


def handlers() -> list[tuple[str, Any]]:
    """This concern's routes."""
    return []


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Late wiring, once every server extension has loaded."""


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Flush and free what this concern holds."""
