"""How the status concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

``setup`` runs in ``initialize_settings`` (create engines, put them on ``services``),
``handlers`` lists the routes, ``start`` runs once every server extension has loaded,
``stop`` runs when the server stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .handlers import TRACKER_KEY, default_handlers
from .kernel_model import KernelModelStatus
from .offline_buffer import OfflineBufferLimit
from .tracker import KernelStatusTracker

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices

#: ``services.extras`` key of the :class:`OfflineBufferLimit`.
OFFLINE_BUFFER_KEY = "offline_buffer"
#: ``services.extras`` key of the :class:`KernelModelStatus`.
KERNEL_MODEL_KEY = "kernel_model_status"


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
    # jupyter_server buffers the messages of a kernel whose websocket closed, without a
    # bound; queued code runs on such kernels for hours: cap it.
    services.extras[OFFLINE_BUFFER_KEY] = OfflineBufferLimit(
        serverapp.kernel_manager, parent=app, log=app.log
    )
    # jupyter_server's own kernel model (/api/kernels, sessions) carries status and reason.
    services.extras[KERNEL_MODEL_KEY] = KernelModelStatus(serverapp.kernel_manager, tracker.model)


def handlers() -> list[tuple[str, Any]]:
    """This concern's routes."""
    return list(default_handlers)


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Track the kernels that already run; cap the buffers of kernels nobody watches; put
    the status in jupyter_server's kernel model."""
    tracker: KernelStatusTracker = services.extras[TRACKER_KEY]
    tracker.start()
    services.extras[OFFLINE_BUFFER_KEY].install()
    services.extras[KERNEL_MODEL_KEY].install()


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Close our sockets on the kernels and answer whoever still waits."""
    tracker: KernelStatusTracker | None = services.extras.get(TRACKER_KEY)
    if tracker is not None:
        tracker.close()
    limit: OfflineBufferLimit | None = services.extras.get(OFFLINE_BUFFER_KEY)
    if limit is not None:
        limit.uninstall()
    model: KernelModelStatus | None = services.extras.get(KERNEL_MODEL_KEY)
    if model is not None:
        model.uninstall()
