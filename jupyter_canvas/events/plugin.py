"""How the events concern plugs into :class:`~jupyter_canvas.app.CanvasApp`.

``setup`` runs in ``initialize_settings`` (create engines, put them on ``services``),
``handlers`` lists the routes, ``start`` runs once every server extension has loaded,
``stop`` runs when the server stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .audit import QueueAuditLog
from .handlers import default_handlers
from .settings import EVENTS_SETTINGS_KEY, EventStreamSettings

if TYPE_CHECKING:
    from ..app import CanvasApp, CanvasServices

#: Where the audit log lives on ``services.extras``.
AUDIT_KEY = "events.audit"


def setup(app: CanvasApp, services: CanvasServices) -> None:
    """Create the websocket settings and the audit log; register the audit schema."""
    services.extras[EVENTS_SETTINGS_KEY] = EventStreamSettings(parent=app, log=app.log)
    event_logger = getattr(app.serverapp, "event_logger", None)
    audit = QueueAuditLog(event_logger, parent=app, log=app.log)
    audit.register()
    services.queue.add_transition_hook(audit.on_transition)
    services.extras[AUDIT_KEY] = audit


def handlers() -> list[tuple[str, Any]]:
    """This concern's routes (the events websocket must come before ``/api/queue/<id>``)."""
    return list(default_handlers)


async def start(app: CanvasApp, services: CanvasServices) -> None:
    """Nothing to wire late: the bus and the audit log are ready from setup."""


async def stop(app: CanvasApp, services: CanvasServices) -> None:
    """Nothing to flush: websocket connections close with the server."""
