"""Lifecycle signals of the server's kernels, whoever caused them.

:class:`KernelLifecycle` gathers what the server already knows about a kernel's life and
hands it on as :class:`LifecycleEvent` values to its listeners (the execution queue, the
status tracker):

- the server's ``kernel_actions`` events on ``serverapp.event_logger`` (start, restart,
  shutdown, interrupt, through the REST API, JupyterLab's buttons or the restarter);
- the kernel restarter's ``restart`` (the process died and is being restarted) and
  ``dead`` (it could not be restarted) callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"

# Lifecycle event kinds.
STARTED = "started"
START_FAILED = "start_failed"
RESTARTING = "restarting"  # a restart was asked for (shutdown_reply with restart=True)
AUTORESTARTING = "autorestarting"  # the process died; the restarter brings it back
RESTARTED = "restarted"
SHUTTING_DOWN = "shutting_down"
SHUTDOWN = "shutdown"
DEAD = "dead"  # died and could not be restarted
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class LifecycleEvent:
    """Something happened to a kernel process."""

    kernel_id: str | None
    kind: str
    reason: str = ""
    kernel_name: str | None = None


LifecycleListener = Callable[[LifecycleEvent], None]


class KernelLifecycle:
    """Fans the server's kernel lifecycle signals out to listeners."""

    def __init__(self, kernel_manager: Any, log: logging.Logger | None = None) -> None:
        self.kernel_manager = kernel_manager
        self.log = log or logging.getLogger(__name__)
        self._listeners: list[LifecycleListener] = []
        self._hooked: dict[str, Any] = {}

    def add_listener(self, listener: LifecycleListener) -> None:
        """Call ``listener`` with every lifecycle event."""
        self._listeners.append(listener)

    def emit(self, event: LifecycleEvent) -> None:
        """Hand an event to every listener (a failing listener does not stop the others)."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # pragma: no cover - a bug in a listener
                self.log.exception("jupyter_canvas: lifecycle listener failed on %s", event)

    # -- the server's event logger ---------------------------------------------------------
    def attach_event_logger(self, event_logger: Any) -> None:
        """Listen to the server's ``kernel_actions`` events."""
        if event_logger is None:
            return
        try:
            event_logger.add_listener(schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_action)
        except Exception:  # the schema is registered by the kernel manager, lazily
            from jupyter_server.services.kernels.kernelmanager import DEFAULT_EVENTS_SCHEMA_PATH

            event_logger.register_event_schema(
                DEFAULT_EVENTS_SCHEMA_PATH / "kernel_actions" / "v1.yaml"
            )
            event_logger.add_listener(schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_action)

    async def _on_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        action = data.get("action")
        status = data.get("status")
        kernel_id = data.get("kernel_id")
        name = data.get("kernel_name")
        msg = str(data.get("msg") or "")
        if action == "start":
            if status == "success" and kernel_id:
                self.hook_restarter(kernel_id)
                self.emit(LifecycleEvent(kernel_id, STARTED, kernel_name=name))
            elif status == "error":
                self.emit(LifecycleEvent(kernel_id, START_FAILED, msg, kernel_name=name))
        elif action == "restart" and status == "success" and kernel_id:
            self.hook_restarter(kernel_id)
            self.emit(LifecycleEvent(kernel_id, RESTARTED, kernel_name=name))
        elif action == "restart" and status == "error" and kernel_id:
            self.emit(LifecycleEvent(kernel_id, DEAD, f"restart failed: {msg}", name))
        elif action == "shutdown" and kernel_id:
            self._hooked.pop(kernel_id, None)
            self.emit(LifecycleEvent(kernel_id, SHUTDOWN, "kernel was shut down", name))
        elif action == "interrupt" and status == "success" and kernel_id:
            self.emit(LifecycleEvent(kernel_id, INTERRUPTED, kernel_name=name))

    # -- the kernel restarter --------------------------------------------------------------
    def hook_restarter(self, kernel_id: str) -> None:
        """Register restarter callbacks on a kernel (once per restarter instance)."""
        try:
            kernel = self.kernel_manager.get_kernel(kernel_id)
        except Exception:
            return
        restarter = getattr(kernel, "_restarter", None)
        if restarter is None or self._hooked.get(kernel_id) is restarter:
            return
        self._hooked[kernel_id] = restarter

        def on_restart() -> None:
            self.emit(
                LifecycleEvent(
                    kernel_id,
                    AUTORESTARTING,
                    "kernel died unexpectedly and is being restarted",
                    getattr(kernel, "kernel_name", None),
                )
            )

        def on_dead() -> None:
            self.emit(
                LifecycleEvent(
                    kernel_id,
                    DEAD,
                    "kernel died and could not be restarted "
                    f"(restart limit {getattr(restarter, 'restart_limit', '?')} reached)",
                    getattr(kernel, "kernel_name", None),
                )
            )

        kernel.add_restart_callback(on_restart, "restart")
        kernel.add_restart_callback(on_dead, "dead")
