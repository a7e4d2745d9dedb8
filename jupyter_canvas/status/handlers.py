"""REST handlers of kernel status: ``GET /api/kernels/<id>/status`` and the listing."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..base import CanvasAPIHandler
from .models import WAITABLE_VALUES

if TYPE_CHECKING:
    from .tracker import KernelStatusTracker

AUTH_RESOURCE = "kernels"

#: Where :mod:`jupyter_canvas.status.plugin` puts the tracker on ``services.extras``.
TRACKER_KEY = "status"


class StatusAPIHandler(CanvasAPIHandler):
    """Shared by the status handlers: the resource and the tracker."""

    auth_resource = AUTH_RESOURCE

    @property
    def tracker(self) -> KernelStatusTracker:
        """The server's :class:`~jupyter_canvas.status.tracker.KernelStatusTracker`."""
        return self.services.extras[TRACKER_KEY]  # type: ignore[no-any-return]


class KernelStatusHandler(StatusAPIHandler):
    """``/api/kernels/<kernel_id>/status``: the status of one kernel, optionally awaited."""

    _waiter: asyncio.Task[Any] | None = None

    @web.authenticated
    @authorized("read")
    async def get(self, kernel_id: str) -> None:
        """Answer the status; with ``?wait_for=`` hold the answer until it is reached."""
        wait_for = self.get_query_argument("wait_for", None)
        max_wait = self.services.config.max_wait_seconds
        timeout = self.float_argument("timeout", max_wait)
        if wait_for is not None and wait_for not in WAITABLE_VALUES:
            allowed = ", ".join(sorted(WAITABLE_VALUES))
            raise web.HTTPError(
                400,
                f"wait_for must be a status or execution_state value ({allowed}), got {wait_for!r}",
            )
        tracker = self.tracker
        if wait_for is None:
            model = tracker.model(kernel_id)
        else:
            self._waiter = asyncio.ensure_future(
                tracker.wait_for(kernel_id, wait_for, max_wait if timeout is None else timeout)
            )
            try:
                model = await self._waiter
            except asyncio.CancelledError:
                return  # the client went away
            finally:
                self._waiter = None
        if model is None:
            raise web.HTTPError(
                404,
                f"no kernel with id {kernel_id!r}: it never existed on this server or died "
                "longer ago than KernelStatusTracker.dead_retention_seconds",
            )
        self.write_json(model)

    def on_connection_close(self) -> None:
        """Stop waiting for a client that disconnected."""
        if self._waiter is not None:
            self._waiter.cancel()
        super().on_connection_close()


class KernelStatusListHandler(StatusAPIHandler):
    """``/api/kernels/status``: every kernel's status, the recently dead ones included.

    This is where a failed start shows up when the client did not choose the kernel id.
    """

    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        """Answer ``{"kernels": [KernelStatus, ...]}``: running kernels, then dead ones."""
        self.write_json({"kernels": self.tracker.models()})


_KERNEL_ID = r"(?P<kernel_id>[^/]+)"

default_handlers = [
    (r"/api/kernels/status/?", KernelStatusListHandler),
    (rf"/api/kernels/{_KERNEL_ID}/status/?", KernelStatusHandler),
]
