"""How the status concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

``setup`` runs in ``initialize_settings`` (create engines, put them on ``services``),
``handlers`` lists the routes, ``start`` runs once every server extension has loaded,
``stop`` runs when the server stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .handlers import TRACKER_KEY, default_handlers
from .tracker import KernelStatusTracker

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices


def setup(app: CanvasApp, services: CanvasServices) -> None:
    """Create the status tracker and feed it the lifecycle signals and queue messages."""
    serverapp = app.serverapp
    assert serverapp is not None
    tracker = KernelStatusTracker(
        serverapp.kernel_manager, services.bus, services.queue, parent=app, log=app.log
    )
    services.lifecycle.add_listener(tracker.on_lifecycle)
    services.queue.add_message_hook(tracker.on_queue_message)
    services.extras[TRACKER_KEY] = tracker


def handlers() -> list[tuple[str, Any]]:
    """This concern's routes."""
    return list(default_handlers)


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Track the kernels that already run."""
    tracker: KernelStatusTracker = services.extras[TRACKER_KEY]
    tracker.start()


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Close our sockets on the kernels and answer whoever still waits."""
    tracker: KernelStatusTracker | None = services.extras.get(TRACKER_KEY)
    if tracker is not None:
        tracker.close()
