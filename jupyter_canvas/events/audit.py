"""Audit events of the execution queue on the server's own ``event_logger``.

Each queued, started, finished and cancelled entry is emitted as a jupyter_events event
of the schema ``jupyter_canvas/queue/v1`` (``event_schemas/queue/v1.yaml``): who queued
what on which kernel and cell, and how long it ran; never the code nor the outputs.
Operators read them like the server's own events: ``/api/events/subscribe`` or a logging
handler on ``ServerApp.event_logger``.
"""

from __future__ import annotations

from typing import Any

from jupyter_events.schema_registry import SchemaRegistryException
from traitlets import Bool
from traitlets.config import LoggingConfigurable

from ..event_schemas import QUEUE_SCHEMA_ID, QUEUE_SCHEMA_PATH
from ..queue.models import Entry, EntryState

_FINISHED = frozenset({EntryState.DONE, EntryState.ERROR})


def audit_action(entry: Entry, previous: EntryState | None) -> str | None:
    """The audited action a state change stands for, or None for one not audited."""
    state = entry.state
    if state is EntryState.QUEUED and previous is None:
        return "queued"
    if state is EntryState.RUNNING and previous is EntryState.QUEUED:
        return "started"
    if state in _FINISHED:
        return "finished"
    if state is EntryState.CANCELLED:
        return "cancelled"
    return None  # awaiting_input and back: the same run goes on


def audit_record(entry: Entry, action: str) -> dict[str, Any]:
    """The event data for an entry: ids, owner, cell, state and timing, never code."""
    data: dict[str, Any] = {
        "action": action,
        "entry_id": entry.id,
        "kernel_id": entry.kernel_id,
        "owner": entry.owner,
        "state": entry.state.value,
    }
    if entry.path is not None:
        data["path"] = entry.path
    if entry.cell_id is not None:
        data["cell_id"] = entry.cell_id
    if entry.duration_ms is not None:
        data["duration_ms"] = entry.duration_ms
    if entry.state is EntryState.ERROR and entry.error:
        data["ename"] = str(entry.error.get("ename", "Error"))
    if entry.reason:
        data["reason"] = entry.reason
    return data


class QueueAuditLog(LoggingConfigurable):
    """Emits the queue's state changes on the server's event logger."""

    enabled = Bool(
        True,
        config=True,
        help="Emit queued/started/finished/cancelled events of the execution queue on the "
        "server's event_logger (schema jupyter_canvas/queue/v1).",
    )

    def __init__(self, event_logger: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event_logger = event_logger

    def register(self) -> None:
        """Register the schema on the event logger (once; a second server reuses it)."""
        if self.event_logger is None:
            return
        try:
            self.event_logger.register_event_schema(QUEUE_SCHEMA_PATH)
        except SchemaRegistryException:
            pass  # already registered on this logger

    def on_transition(self, entry: Entry, previous: EntryState | None) -> None:
        """Transition hook of the execution queue."""
        if not self.enabled or self.event_logger is None:
            return
        action = audit_action(entry, previous)
        if action is None:
            return
        try:
            self.event_logger.emit(schema_id=QUEUE_SCHEMA_ID, data=audit_record(entry, action))
        except Exception:  # auditing must never break the queue
            self.log.exception("jupyter_canvas: could not emit the %s audit event", action)
