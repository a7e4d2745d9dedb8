"""The kernel status in jupyter_server's own kernel model (``GET /api/kernels[/<id>]``).

jupyter_server answers ``/api/kernels``, ``/api/kernels/<id>`` and the ``kernel`` of every
session (``/api/sessions``) with its kernel manager's ``kernel_model(kernel_id)``: ``id``,
``name``, ``last_activity``, ``execution_state`` and ``connections``. Its
``execution_state`` only follows the IOPub of kernels a websocket or the activity
monitor touched, so a kernel nobody connected to says ``starting`` for ever, and it knows
nothing of why a kernel died.

:class:`KernelModelStatus` wraps that one method of the server's kernel manager (an
instance attribute, as :mod:`.offline_buffer` wraps ``start_buffering``; ``uninstall``
gives the method back) so that every model it returns carries what the
:class:`~jupyter_canvas.status.tracker.KernelStatusTracker` knows:

- ``status`` (added): the process's life (``starting``, ``running``, ``autorestarting``,
  ``dead``, ...), as ``GET /api/kernels/<id>/status`` says it;
- ``reason`` (added): why it died or failed to start, else null;
- ``execution_state``: the tracker's, which it learns from its own IOPub subscription and
  readiness probe (``idle`` for a kernel that answered and runs nothing).

Fields are only added or made truthful, never removed, so stock JupyterLab and every other
client keep working and can show them. A kernel the tracker does not know keeps the
server's model as it was.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

#: The fields of the tracker's model carried into the kernel manager's model.
CARRIED = ("status", "reason", "execution_state")


class KernelModelStatus:
    """Carries the tracker's ``status``, ``reason`` and ``execution_state`` in the kernel
    manager's ``kernel_model``."""

    def __init__(self, kernel_manager: Any, status_of: Callable[[str], dict[str, Any] | None]):
        self.kernel_manager = kernel_manager
        self._status_of = status_of
        self._original: Callable[..., Any] | None = None

    @property
    def installed(self) -> bool:
        """Whether the kernel manager's models go through the tracker."""
        return self._original is not None

    def enrich(self, model: Any) -> Any:
        """The kernel model with the tracker's fields (unchanged if it knows nothing)."""
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            return model
        try:
            status = self._status_of(model["id"])
        except Exception:
            return model
        if status is None:
            return model
        return {**model, **{key: status[key] for key in CARRIED if key in status}}

    def install(self) -> bool:
        """Route the kernel manager's ``kernel_model`` through :meth:`enrich`.

        Returns False (and changes nothing) if the kernel manager has no ``kernel_model``.
        A gateway's kernel manager answers it as a coroutine; it stays one.
        """
        km = self.kernel_manager
        original = getattr(km, "kernel_model", None)
        if self.installed or original is None:
            return False
        self._original = original
        wrapped: Callable[..., Any]
        if inspect.iscoroutinefunction(original):

            async def kernel_model_async(kernel_id: str) -> Any:
                return self.enrich(await original(kernel_id))

            wrapped = kernel_model_async
        else:

            def kernel_model(kernel_id: str) -> Any:
                return self.enrich(original(kernel_id))

            wrapped = kernel_model
        # An instance attribute: only this kernel manager, undone by uninstall().
        km.kernel_model = wrapped
        return True

    def uninstall(self) -> None:
        """Give the kernel manager its own ``kernel_model`` back."""
        if self._original is None:
            return
        with contextlib.suppress(AttributeError):
            del self.kernel_manager.kernel_model
        self._original = None
