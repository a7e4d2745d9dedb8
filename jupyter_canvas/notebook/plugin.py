"""How the notebook concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

It makes the queue able to run notebook cells: ``POST /api/queue`` with ``path`` is planned
by :class:`~jupyter_canvas.notebook.service.NotebookService`, which also becomes the queue's
cell bridge (source at start, outputs into the notebook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .service import NotebookService

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices


def setup(app: CanvasApp, services: CanvasServices) -> None:
    """Create the notebook service and make it the queue's cell bridge."""
    service = NotebookService(app.serverapp, services.queue, parent=app)
    services.notebooks = service
    services.queue.cell_bridge = service


def handlers() -> list[tuple[str, Any]]:
    """The notebook concern adds no route of its own (it serves ``POST /api/queue``)."""
    return []


#: jupyter_server's contents events (renames, moves and deletes are followed).
CONTENTS_SCHEMA = "https://events.jupyter.org/jupyter_server/contents_service/v1"


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Follow notebooks renamed, moved or deleted through the contents API (jupyter_server_ydoc
    and jupyter_server_fileid are looked up when needed)."""
    logger = getattr(app.serverapp, "event_logger", None)
    if logger is not None and services.notebooks is not None:
        logger.add_listener(
            schema_id=CONTENTS_SCHEMA, listener=services.notebooks.on_contents_event
        )


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Write every pending output into its notebook before kernels go away."""
    if services.notebooks is not None:
        await services.notebooks.close()
