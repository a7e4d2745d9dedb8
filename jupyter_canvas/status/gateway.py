"""Our eyes on one gateway kernel (``--gateway-url``): the gateway websocket's messages.

A gateway kernel's ZMQ sockets and heartbeat are out of reach. Its status comes from the
kernel's websocket on the gateway, shared with the execution queue
(:class:`~jupyter_canvas.queue.gateway.GatewayConnections`):

- ``execution_state`` from the IOPub messages on that websocket (every client's requests,
  not only ours: IOPub is broadcast);
- ``running`` once the kernel answers ``kernel_info`` over it;
- ``unknown`` while the websocket is down and being re-established (the reason says so);
- death, restarts and shutdowns from the gateway (its ``restarting``/``dead`` status, a
  ``shutdown_reply`` followed by the gateway's model answering 404, the websocket closing
  for good): the connection turns them into lifecycle events, which the tracker follows
  like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from ..queue.gateway import (
    GatewayConnections,
    GatewayEvent,
    GatewayKernelConnection,
    GatewayKernelGone,
    gateway_state,
)
from . import lifecycle as lc
from .watch import LocalKernelWatch, WatchListener


class GatewayWatchListener(WatchListener, Protocol):
    """What a :class:`GatewayKernelWatch` reports to (the tracker), besides a watch's calls."""

    def on_watch_unreachable(self, kernel_id: str, reason: str | None) -> None:
        """The kernel cannot be reached (``reason``), or can again (None)."""

    def on_lifecycle(self, event: lc.LifecycleEvent) -> None:
        """A lifecycle event only the status needs to know of."""


class GatewayKernelWatch:
    """Subscribes to one gateway kernel's shared connection and reports what it sees."""

    def __init__(
        self,
        kernel_id: str,
        kernel: Any,
        listener: GatewayWatchListener,
        connections: GatewayConnections,
        log: logging.Logger,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel = kernel
        self.listener = listener
        self.connections = connections
        self.log = log
        self.closed = False
        self._connection: GatewayKernelConnection | None = None
        self._task: asyncio.Task[None] | None = None

    # -- opening and closing -------------------------------------------------------------------
    def open(self) -> None:
        """Connect (in the background) and report once the kernel answers."""
        self._task = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            connection = await self.connections.acquire(self.kernel_id)
        except asyncio.CancelledError:
            raise
        except GatewayKernelGone:
            return  # the connections announce the kernel dead
        except Exception as err:
            if not self.closed:
                self.listener.on_watch_unreachable(self.kernel_id, str(err))
            return
        if self.closed:
            self.connections.release(connection)
            return
        self._connection = connection
        connection.subscribe(self)
        if connection.answered.is_set():
            self.listener.on_watch_answered(self.kernel_id)

    def reopen(self) -> None:
        """After a restart: ask the kernel again; its answer makes it ``running``."""
        connection = self._connection
        if connection is not None and not connection.closed:
            connection.probe()

    def close(self) -> None:
        """Stop watching; the connection closes when the queue does not use it either."""
        self.closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.unsubscribe(self)
            with contextlib.suppress(Exception):
                self.connections.release(connection)

    # -- what the connection says --------------------------------------------------------------
    def on_gateway_message(self, msg: dict[str, Any]) -> None:
        """An IOPub message changes ``execution_state``; other channels say nothing here."""
        if msg.get("channel") != "iopub" or gateway_state(msg) is not None:
            return
        header = msg.get("header") or {}
        msg_type = str(header.get("msg_type", ""))
        if msg_type not in LocalKernelWatch.CONTENT_TYPES:
            self.listener.on_watch_activity(self.kernel_id)
            return
        parent = msg.get("parent_header") or {}
        content = msg.get("content")
        self.listener.on_watch_message(
            self.kernel_id,
            msg_type,
            parent.get("msg_type"),
            content if isinstance(content, dict) else {},
            header.get("msg_id"),
            parent.get("username"),
        )

    def on_gateway_event(self, event: GatewayEvent, reason: str | None) -> None:
        """Connection changes: answered, unanswered, unreachable and back."""
        if self.closed:
            return
        if event is GatewayEvent.ANSWERED:
            self.listener.on_watch_unreachable(self.kernel_id, None)
            self.listener.on_watch_answered(self.kernel_id)
        elif event is GatewayEvent.UNANSWERED:
            self.listener.on_watch_probe_timeout(self.kernel_id)
        elif event is GatewayEvent.UNREACHABLE:
            self.listener.on_watch_unreachable(self.kernel_id, reason)
        elif event is GatewayEvent.REACHABLE:
            self.listener.on_watch_unreachable(self.kernel_id, None)
        elif event is GatewayEvent.RESTARTED:
            # A restart asked of the gateway directly ended: the tracker follows the new
            # process (its probe, then ``running``) as after any restart.
            self.listener.on_lifecycle(lc.LifecycleEvent(self.kernel_id, lc.RESTARTED))
        elif event is GatewayEvent.GONE:
            self._connection = None  # closed by its owner; the lifecycle event follows
