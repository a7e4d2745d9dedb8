"""Kernels behind a Jupyter Kernel Gateway or Enterprise Gateway (``--gateway-url``).

In gateway mode jupyter_server's :class:`~jupyter_server.gateway.managers.GatewayKernelManager`
runs each kernel on the gateway: its ZMQ sockets are out of our reach. The execution queue
and the status tracker talk to such a kernel over one websocket of the gateway's
``/api/kernels/<id>/channels`` route (the route, settings and headers jupyter_server's own
gateway proxy uses: ``GatewayClient.ws_url``, ``kernels_endpoint``, ``load_connection_args``),
shared by both through :class:`GatewayConnections`.

Not jupyter_server's ``GatewayKernelClient``: it connects with a blocking call on the event
loop (up to ``KERNEL_LAUNCH_TIMEOUT``), hands messages over through thread-safe queues whose
``get_msg`` busy-waits, and joins a thread when it stops. This connection is a tornado
websocket on the server's loop: no thread, no polling, a closed socket is an event.

What the websocket says about the kernel's life, and how it is handed on as lifecycle
events (there is no restarter on this side):

- the gateway's own ``restarting`` status (its restarter saw the process die): the kernel
  is autorestarting; once it answers ``kernel_info`` again, it restarted;
- the gateway's ``dead`` status: the restart failed, the kernel is dead;
- a ``shutdown_reply`` (not a restart): once the gateway's kernel model answers 404, the
  kernel was shut down, whoever asked;
- the websocket closing: the gateway's kernel model tells whether the kernel is gone (404)
  or the connection only dropped (reconnect with the same session id: the gateway replays
  what it buffered meanwhile), within ``GatewayClient.gateway_retry_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from tornado.escape import url_escape
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..status import lifecycle as lc

#: Messages larger than this (bytes) are decoded off the event loop.
_OFFLOAD_BYTES = 1 << 20
#: Longest time (seconds) the reader dispatches messages before letting others run.
_READ_SLICE = 0.005
#: How long (seconds) after a requested restart the server's own ``restarted`` event of it
#: is recognized as a late copy (the connection followed the restart already).
_RESTART_ECHO = 60.0
#: Delays (seconds) between looks at the gateway's model after a shutdown_reply.
_SHUTDOWN_CHECKS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: The status values the gateway's own server sends (not the kernel's): its restarter's.
_GATEWAY_STATES = frozenset({"restarting", "dead"})


def is_gateway_kernel(kernel: Any) -> bool:
    """Whether ``kernel`` is a kernel manager of jupyter_server's gateway mode."""
    try:
        from jupyter_server.gateway.managers import GatewayKernelManager
    except Exception:  # pragma: no cover - jupyter_server always has it
        return False
    return isinstance(kernel, GatewayKernelManager)


def gateway_state(msg: dict[str, Any]) -> str | None:
    """The gateway's own status value carried by ``msg`` (``restarting``/``dead``), if any.

    jupyter_server on the gateway sends these on IOPub, without a parent, when its
    restarter acts; they say nothing about what the kernel executes.
    """
    if msg.get("channel") != "iopub" or (msg.get("header") or {}).get("msg_type") != "status":
        return None
    state = (msg.get("content") or {}).get("execution_state")
    return state if state in _GATEWAY_STATES else None


class GatewayEvent(str, Enum):
    """What a connection tells its subscribers besides messages."""

    ANSWERED = "answered"  # the kernel answered kernel_info: it is up and serving
    RESTARTED = "restarted"  # a restart nobody announced ended (asked of the gateway directly)
    UNANSWERED = "unanswered"  # it has not answered kernel_info within probe_timeout
    UNREACHABLE = "unreachable"  # the websocket dropped; reconnecting (reason says why)
    REACHABLE = "reachable"  # reconnected
    GONE = "gone"  # the kernel is gone (or the gateway could not be reached again)


class GatewayKernelGone(RuntimeError):
    """The gateway has no such kernel (any more)."""


class GatewayUnreachable(RuntimeError):
    """The gateway did not let us connect to the kernel."""


class GatewaySubscriber(Protocol):
    """Whoever reads a kernel's gateway connection."""

    def on_gateway_message(self, msg: dict[str, Any]) -> None:
        """One message of any channel (``msg["channel"]`` says which)."""

    def on_gateway_event(self, event: GatewayEvent, reason: str | None) -> None:
        """A change of the connection or of the kernel's answer."""


class _Restart(str, Enum):
    AUTO = "auto"  # the gateway's restarter brings a dead process back
    REQUESTED = "requested"  # someone asked for a restart (a shutdown_reply said so)


class GatewayKernelConnection:
    """One websocket to one kernel's channels on the gateway, shared by its subscribers."""

    def __init__(self, owner: GatewayConnections, kernel_id: str) -> None:
        self.owner = owner
        self.kernel_id = kernel_id
        #: Our side of the protocol: message headers and the websocket's session id
        #: (kept across reconnections so the gateway replays what it buffered).
        self.session = Session(username="jupyter_canvas-gateway")
        self.refs = 0
        #: Set while the kernel answers kernel_info (cleared when it restarts or we lose it).
        self.answered = asyncio.Event()
        self.closed = False
        self.gone_reason: str | None = None
        self._ws: WebSocketClientConnection | None = None
        self._socket: socket.socket | None = None
        self._subscribers: list[GatewaySubscriber] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probe_ids: deque[str] = deque(maxlen=32)
        self._probe_timer: asyncio.TimerHandle | None = None
        self._probe_started = 0.0
        self._probe_delay = 1.0
        self._shell_answered = False
        self._iopub_answered = False
        self._hurried = False
        self._unanswered_told = False
        self._restart: _Restart | None = None
        #: When the last requested restart was seen to end (loop time), if it was.
        self.restart_followed_at: float | None = None
        self._loop = asyncio.get_running_loop()

    # -- opening and closing -------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (retrying as jupyter_server's gateway settings say) and probe the kernel.

        Raises :class:`GatewayKernelGone` if the gateway has no such kernel and
        :class:`GatewayUnreachable` if no connection could be made.
        """
        reason = await self._connect_with_retries()
        if reason is not None:
            raise GatewayUnreachable(reason)
        self.probe()

    async def _connect_with_retries(self) -> str | None:
        """Connect; on failure look at the kernel's model and retry. None once connected."""
        gateway = self.owner.gateway_client()
        last_error = ""
        attempts = max(0, int(gateway.gateway_retry_max)) + 1
        for attempt in range(attempts):
            if self.closed:
                return "connection closed"
            try:
                await self._connect()
                return None
            except GatewayKernelGone:
                raise
            except Exception as err:
                last_error = _describe(err)
            try:
                exists = await self.owner.kernel_exists(self.kernel_id)
            except GatewayUnreachable:
                exists = True  # cannot tell: try again
            if not exists:
                raise GatewayKernelGone(
                    f"the gateway has no kernel {self.kernel_id} (shut down or culled there)"
                )
            if attempt + 1 < attempts:
                delay = min(
                    float(gateway.gateway_retry_interval) * (2**attempt),
                    float(gateway.gateway_retry_interval_max),
                )
                await asyncio.sleep(delay)
        return (
            f"could not connect to the kernel on the gateway {gateway.url} after {attempts} "
            f"attempts: {last_error}"
        )

    async def _connect(self) -> None:
        gateway = self.owner.gateway_client()
        url = _url_join(
            gateway.ws_url or "",
            gateway.kernels_endpoint,
            url_escape(self.kernel_id),
            "channels",
        )
        url += f"?session_id={url_escape(self.session.session)}"
        request = HTTPRequest(url, **gateway.load_connection_args())
        try:
            ws = await websocket_connect(
                request,
                ping_interval=self.owner.ping_interval or None,
                ping_timeout=min(self.owner.ping_timeout, self.owner.ping_interval) or None,
                max_message_size=self.owner.max_message_bytes,
            )
        except HTTPClientError as err:
            if err.code == 404:
                raise GatewayKernelGone(
                    f"the gateway has no kernel {self.kernel_id} (shut down or culled there)"
                ) from None
            raise
        if self.closed:
            ws.close()
            return
        self._ws = ws
        self._socket = _tcp_socket(ws)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._spawn(self._read(ws))

    def close(self) -> None:
        """Close the websocket and stop every timer and task (nobody needs it any more)."""
        if self.closed:
            return
        self.closed = True
        self._stop_probe()
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        for task in list(self._tasks):
            task.cancel()
        self._subscribers.clear()

    # -- subscribers ---------------------------------------------------------------------------
    def subscribe(self, subscriber: GatewaySubscriber) -> None:
        """Hand every message and event to ``subscriber`` until :meth:`unsubscribe`."""
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: GatewaySubscriber) -> None:
        """Stop handing messages to ``subscriber``."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscriber)

    def _notify(self, event: GatewayEvent, reason: str | None = None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.on_gateway_event(event, reason)
            except Exception:
                self.owner.log.exception("jupyter_canvas: gateway subscriber failed on %s", event)

    # -- sending -------------------------------------------------------------------------------
    def send(self, channel: str, msg: dict[str, Any]) -> None:
        """Send one message (a :meth:`Session.msg` dict) on ``channel``."""
        ws = self._ws
        if ws is None or self.closed:
            raise GatewayUnreachable(
                self.gone_reason or f"not connected to kernel {self.kernel_id} on the gateway"
            )
        frame = dict(msg)
        frame["channel"] = channel
        try:
            written = ws.write_message(json.dumps(frame, default=json_default))
        except WebSocketClosedError:
            raise GatewayUnreachable(
                f"the connection to kernel {self.kernel_id} on the gateway is closed"
            ) from None
        # A write that fails later means the connection closed: the reader sees that too.
        written.add_done_callback(_ignore_result)

    # -- the readiness probe -------------------------------------------------------------------
    def probe(self) -> None:
        """Ask ``kernel_info`` until the kernel answers (resent with a growing delay).

        A request sent while the kernel restarts can be lost with the old process. The
        kernel answers once a probe's reply came on shell *and* its busy/idle on IOPub:
        after a restart the gateway's IOPub subscription to the new process can lag
        behind its shell, and code run before it joins would lose its outputs.
        """
        self.answered.clear()
        self._stop_probe()
        self._probe_started = self._loop.time()
        self._probe_delay = 1.0
        self._shell_answered = False
        self._iopub_answered = False
        self._hurried = False
        self._unanswered_told = False
        self._send_probe()

    def _send_probe(self) -> None:
        self._probe_timer = None
        if self.closed or self.answered.is_set():
            return
        msg = self.session.msg("kernel_info_request", {})
        self._probe_ids.append(msg["header"]["msg_id"])
        with contextlib.suppress(Exception):
            self.send("shell", msg)
        waited = self._loop.time() - self._probe_started
        if not self._unanswered_told and waited >= self.owner.probe_timeout:
            self._unanswered_told = True
            self._notify(GatewayEvent.UNANSWERED)
        self._probe_timer = self._loop.call_later(self._probe_delay, self._send_probe)
        self._probe_delay = min(self._probe_delay * 2, 10.0)

    def _stop_probe(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    def _on_probe_message(self, channel: str) -> None:
        if self.answered.is_set():
            return
        if channel == "shell":
            self._shell_answered = True
        else:
            self._iopub_answered = True
        if not self._iopub_answered:
            if self._shell_answered and not self._hurried:
                # The kernel serves; its IOPub is about to join: ask again soon (from
                # 50 ms on, growing as usual).
                self._hurried = True
                self._stop_probe()
                self._probe_delay = 0.1
                self._probe_timer = self._loop.call_later(0.05, self._send_probe)
            return
        if not self._shell_answered:
            return
        self.answered.set()
        self._stop_probe()
        restart, self._restart = self._restart, None
        if restart is _Restart.AUTO:
            # Only the gateway knows of this restart: announce its end to everyone.
            self.owner.emit(lc.LifecycleEvent(self.kernel_id, lc.RESTARTED))
        elif restart is _Restart.REQUESTED:
            # Asked through this server (its kernel_actions event follows, sooner or later)
            # or of the gateway directly (nothing follows). Either way the new process
            # answers: the status follows it, the queue goes on, and a ``restarted`` event
            # of the server arriving later is a late copy (see followed_restart).
            self._notify(GatewayEvent.RESTARTED)
            self.restart_followed_at = self._loop.time()
            self.owner.resume(self.kernel_id)
        else:
            self._notify(GatewayEvent.ANSWERED)

    def followed_restart(self, event: lc.LifecycleEvent) -> bool:
        """Whether ``event`` is the server's late ``restarted`` of a restart already followed.

        Acting on it again would end entries started on the new process and show the
        kernel restarting once more.
        """
        at = self.restart_followed_at
        if event.kind != lc.RESTARTED or at is None or self._restart is not None:
            return False
        if self._loop.time() - at > _RESTART_ECHO:
            self.restart_followed_at = None
            return False
        return True

    # -- reading -------------------------------------------------------------------------------
    async def _read(self, ws: WebSocketClientConnection) -> None:
        budget_end = self._loop.time() + _READ_SLICE
        while True:
            if self._loop.time() > budget_end:
                # A message already buffered does not yield to the loop when awaited.
                await asyncio.sleep(0)
                budget_end = self._loop.time() + _READ_SLICE
            frame = await ws.read_message()
            if frame is None:
                break
            self._ack_now()
            try:
                msg = await _decode(frame)
            except Exception:
                self.owner.log.warning(
                    "jupyter_canvas: unreadable message from the gateway for kernel %s",
                    self.kernel_id,
                )
                continue
            self._dispatch(msg)
        if ws is self._ws and not self.closed:
            self._ws = None
            reason = ws.close_reason or (
                f"close code {ws.close_code}" if ws.close_code else "the connection dropped"
            )
            self._spawn(self._recover(f"lost the websocket to the gateway ({reason})"))

    def _ack_now(self) -> None:
        """Acknowledge what arrived at once instead of after the delayed-ACK timer.

        The gateway writes a reply as several small websocket frames (status, reply,
        outputs) on a socket without TCP_NODELAY: Nagle holds each frame after the first
        until ours is acknowledged, and Linux delays that acknowledgement by up to 40 ms:
        every cell would wait for it. Quick-ack mode is not sticky, hence after each read.
        """
        sock = self._socket
        if sock is not None and _QUICKACK is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._socket = None

    def _dispatch(self, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        header = msg.get("header") or {}
        msg_type = header.get("msg_type")
        after: Callable[[], None] | None = None
        parent_id = (msg.get("parent_header") or {}).get("msg_id")
        if parent_id is not None and parent_id in self._probe_ids:
            if channel == "shell" and msg_type == "kernel_info_reply":
                after = lambda: self._on_probe_message("shell")  # noqa: E731
            elif channel == "iopub":
                after = lambda: self._on_probe_message("iopub")  # noqa: E731
        elif channel == "iopub" and msg_type == "shutdown_reply":
            content = msg.get("content") or {}
            if content.get("restart"):
                after = self._on_restart_requested
            else:
                after = self._on_shutdown_reply
        else:
            state = gateway_state(msg)
            if state == "restarting":
                after = self._on_autorestarting
            elif state == "dead":
                after = self._on_restart_failed
        for subscriber in list(self._subscribers):
            try:
                subscriber.on_gateway_message(msg)
            except Exception:
                self.owner.log.exception(
                    "jupyter_canvas: could not handle %s from the gateway", msg_type
                )
        if after is not None:
            after()

    # -- what the messages say about the kernel's life -----------------------------------------
    def _on_autorestarting(self) -> None:
        self._restart = _Restart.AUTO
        self.owner.emit(
            lc.LifecycleEvent(
                self.kernel_id,
                lc.AUTORESTARTING,
                "kernel died on the gateway and is being restarted there",
            )
        )
        self.probe()

    def _on_restart_failed(self) -> None:
        self._gone("kernel died on the gateway and could not be restarted there", lc.DEAD)

    def _on_restart_requested(self) -> None:
        self._restart = _Restart.REQUESTED
        self.restart_followed_at = None
        self.probe()

    def _on_shutdown_reply(self) -> None:
        self._spawn(self._confirm_shutdown())

    async def _confirm_shutdown(self) -> None:
        """The kernel said it shuts down: it is gone once the gateway's model is."""
        for delay in _SHUTDOWN_CHECKS:
            await asyncio.sleep(delay)
            if self.closed:
                return
            with contextlib.suppress(GatewayUnreachable):
                if not await self.owner.kernel_exists(self.kernel_id):
                    self._gone("kernel was shut down", lc.SHUTDOWN)
                    return

    async def _recover(self, reason: str) -> None:
        """The websocket dropped: find out whether the kernel is gone, else reconnect."""
        self.answered.clear()
        self._stop_probe()
        self._notify(GatewayEvent.UNREACHABLE, reason)
        try:
            failure = await self._connect_with_retries()
        except GatewayKernelGone:
            self._gone("kernel is gone from the gateway (shut down or culled there)", lc.DEAD)
            return
        if failure is not None:
            self._gone(f"{reason}; {failure}", lc.DEAD)
            return
        self._notify(GatewayEvent.REACHABLE)
        self.probe()

    def _gone(self, reason: str, kind: str) -> None:
        if self.closed:
            return
        self.gone_reason = reason
        self._notify(GatewayEvent.GONE, reason)
        self.owner.forget(self)
        self.close()
        self.owner.emit(lc.LifecycleEvent(self.kernel_id, kind, reason))

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.owner.log.error(
                "jupyter_canvas: gateway connection task failed", exc_info=task.exception()
            )


class GatewayConnections(LoggingConfigurable):
    """The server's websockets to its gateway kernels: one per kernel, shared."""

    ping_interval = Float(
        10.0,
        config=True,
        help="Seconds between websocket pings to the gateway on each kernel's connection; "
        "0 turns them off.",
    )
    ping_timeout = Float(
        10.0,
        config=True,
        help="A kernel's gateway connection whose ping stays unanswered this long (seconds, "
        "at most ping_interval) is closed and re-established, or the kernel declared gone.",
    )
    max_message_bytes = Int(
        256 * 1024 * 1024,
        config=True,
        help="Largest message (bytes) accepted from the gateway (an output bigger than "
        "this closes the connection).",
    )
    probe_timeout = Float(
        60.0,
        config=True,
        help="How long (seconds) a gateway kernel may take to answer kernel_info before "
        "its status says it does not answer.",
    )

    def __init__(
        self,
        emit: Callable[[lc.LifecycleEvent], None],
        resume: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.emit_event = emit
        self.resume_queue = resume
        self._connections: dict[str, GatewayKernelConnection] = {}
        self._opening: dict[str, asyncio.Future[None]] = {}
        self.closed = False

    @staticmethod
    def gateway_client() -> Any:
        """jupyter_server's ``GatewayClient`` (the server's gateway settings)."""
        from jupyter_server.gateway.gateway_client import GatewayClient

        return GatewayClient.instance()

    def emit(self, event: lc.LifecycleEvent) -> None:
        """Hand a lifecycle event on (to the queue and the status tracker)."""
        if self.closed:
            return
        try:
            self.emit_event(event)
        except Exception:  # pragma: no cover - a bug in a listener
            self.log.exception("jupyter_canvas: lifecycle event %s failed", event)

    def resume(self, kernel_id: str) -> None:
        """Tell the queue a kernel that restarted without a lifecycle event answers again."""
        if self.resume_queue is not None and not self.closed:
            try:
                self.resume_queue(kernel_id)
            except Exception:  # pragma: no cover - a bug in the queue
                self.log.exception("jupyter_canvas: could not resume the queue of %s", kernel_id)

    async def acquire(self, kernel_id: str) -> GatewayKernelConnection:
        """The kernel's connection (opened if needed); :meth:`release` it when done."""
        while True:
            if self.closed:
                raise GatewayUnreachable("the server is stopping")
            connection = self._connections.get(kernel_id)
            if connection is None:
                connection = GatewayKernelConnection(self, kernel_id)
                self._connections[kernel_id] = connection
                opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._opening[kernel_id] = opened
                try:
                    await connection.open()
                except BaseException as err:
                    self.forget(connection)
                    connection.close()
                    if not opened.done():
                        opened.set_exception(err)
                        opened.exception()  # retrieved: nobody else may wait on it
                    if isinstance(err, GatewayKernelGone):
                        # The server still lists a kernel the gateway lost.
                        asyncio.get_running_loop().call_soon(
                            self.emit, lc.LifecycleEvent(kernel_id, lc.DEAD, str(err))
                        )
                    raise
                finally:
                    self._opening.pop(kernel_id, None)
                if not opened.done():
                    opened.set_result(None)
            else:
                opening = self._opening.get(kernel_id)
                if opening is not None:
                    await asyncio.shield(opening)
                    continue
            if connection.closed:
                continue
            connection.refs += 1
            return connection

    def release(self, connection: GatewayKernelConnection) -> None:
        """One user less; the last one closes the websocket."""
        connection.refs -= 1
        if connection.refs <= 0:
            self.forget(connection)
            connection.close()

    def forget(self, connection: GatewayKernelConnection) -> None:
        """Drop a connection from the registry (closed or gone)."""
        if self._connections.get(connection.kernel_id) is connection:
            del self._connections[connection.kernel_id]

    def followed_restart(self, event: lc.LifecycleEvent) -> bool:
        """Whether ``event`` is a late ``restarted`` of a restart a connection followed.

        The queue and the status both ignore it (the first to see it does not consume it).
        """
        connection = self._connections.get(event.kernel_id or "")
        return connection is not None and connection.followed_restart(event)

    async def kernel_exists(self, kernel_id: str) -> bool:
        """Ask the gateway for the kernel's model: False on 404.

        Raises :class:`GatewayUnreachable` when the gateway does not answer. The model
        refreshes jupyter_server's own view of the kernel (activity, connections).
        """
        gateway = self.gateway_client()
        url = _url_join(gateway.url or "", gateway.kernels_endpoint, url_escape(kernel_id))
        try:
            response = await AsyncHTTPClient().fetch(
                HTTPRequest(url, method="GET", **gateway.load_connection_args()),
                raise_error=False,
            )
        except Exception as err:
            raise GatewayUnreachable(_describe(err)) from None
        if response.code == 404:
            return False
        if response.code != 200:
            raise GatewayUnreachable(f"the gateway answered {response.code} for kernel {kernel_id}")
        with contextlib.suppress(Exception):
            kernel = self.parent.get_kernel(kernel_id) if self.parent is not None else None
            if kernel is not None:
                await kernel.refresh_model(json.loads(response.body))
        return True

    def close(self) -> None:
        """Close every connection (the server stops)."""
        self.closed = True
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()


class GatewayQueueClient:
    """The execution queue's client of one gateway kernel.

    It has the part of jupyter_client's ``KernelClient`` interface the queue uses
    (``execute``, ``input``, ``wait_for_ready``, ``stop_channels``); messages come by
    callback from the kernel's shared connection, not from channels to read.
    """

    def __init__(
        self,
        connections: GatewayConnections,
        connection: GatewayKernelConnection,
        username: str,
    ) -> None:
        self.connections = connections
        self.connection = connection
        self.session = Session(username=username)
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._dropped: Callable[[], None] | None = None
        self._resync: Callable[[], None] | None = None
        self._reconnected = False
        self._stopped = False
        connection.subscribe(self)

    def deliver_to(
        self,
        iopub: Callable[[dict[str, Any]], None],
        shell: Callable[[dict[str, Any]], None],
        stdin: Callable[[dict[str, Any]], None],
        dropped: Callable[[], None] | None = None,
        resync: Callable[[], None] | None = None,
    ) -> None:
        """Where the kernel's messages go, by channel.

        ``dropped`` is called when the connection drops. ``resync`` when it came back and
        the kernel then answered a probe sent on the new connection: the kernel handles
        shell requests in order, so what it was running when the connection dropped has
        ended, and what did not reach us by now (the gateway replays what it buffered
        first) was lost in between.
        """
        self._handlers = {"iopub": iopub, "shell": shell, "stdin": stdin}
        self._dropped = dropped
        self._resync = resync

    def on_gateway_message(self, msg: dict[str, Any]) -> None:
        """Route one message to the queue's handler of its channel."""
        if gateway_state(msg) is not None:
            return  # the gateway's restarter, not the kernel: the lifecycle says it
        handler = self._handlers.get(str(msg.get("channel")))
        if handler is not None:
            handler(msg)

    def on_gateway_event(self, event: GatewayEvent, reason: str | None) -> None:
        """After a reconnection, the first answer resyncs the queue; the rest of the
        connection's changes reach the queue as lifecycle events."""
        if event is GatewayEvent.UNREACHABLE:
            if self._dropped is not None:
                self._dropped()
        elif event is GatewayEvent.REACHABLE:
            self._reconnected = True
        elif event is GatewayEvent.ANSWERED and self._reconnected:
            self._reconnected = False
            if self._resync is not None:
                self._resync()

    async def wait_for_ready(self, timeout: float) -> None:
        """Wait until the kernel answers ``kernel_info``."""
        connection = self.connection
        if connection.closed:
            raise GatewayUnreachable(connection.gone_reason or "the connection is closed")
        await asyncio.wait_for(connection.answered.wait(), timeout)

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = True,
        stop_on_error: bool = True,
    ) -> str:
        """Send an ``execute_request``; return its msg_id."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }
        msg = self.session.msg("execute_request", content)
        self.connection.send("shell", msg)
        return str(msg["header"]["msg_id"])

    def kernel_info(self) -> str:
        """Send a ``kernel_info_request``; return its msg_id."""
        msg = self.session.msg("kernel_info_request", {})
        self.connection.send("shell", msg)
        return str(msg["header"]["msg_id"])

    def send_shell(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any]) -> None:
        """Send a message without reply on the shell channel (a ``comm_msg``)."""
        self.connection.send("shell", self.session.msg(msg_type, content, parent=parent))

    def input(self, value: str) -> None:
        """Answer the kernel's ``input_request``."""
        self.connection.send("stdin", self.session.msg("input_reply", {"value": value}))

    def stop_channels(self) -> None:
        """Stop receiving; the connection closes when nobody else uses it."""
        if self._stopped:
            return
        self._stopped = True
        self._handlers = {}
        self._dropped = self._resync = None
        self.connection.unsubscribe(self)
        self.connections.release(self.connection)


async def open_gateway_client(
    connections: GatewayConnections, kernel_id: str, timeout: float, username: str
) -> GatewayQueueClient:
    """A queue client on the kernel's gateway connection, once the kernel answers.

    ``username`` goes into the headers of its requests (the status tracker recognizes
    the queue's own).
    """
    connection = await connections.acquire(kernel_id)
    client = GatewayQueueClient(connections, connection, username)
    try:
        await client.wait_for_ready(timeout)
    except BaseException:
        client.stop_channels()
        raise
    return client


async def _decode(frame: str | bytes) -> dict[str, Any]:
    """A websocket frame of the gateway's (legacy, JSON) kernel protocol as a message dict."""
    if isinstance(frame, bytes):
        # Messages with binary buffers come as binary frames.
        from jupyter_server.services.kernels.connection.base import deserialize_binary_message

        if len(frame) > _OFFLOAD_BYTES:
            return await asyncio.to_thread(deserialize_binary_message, frame)  # type: ignore[no-any-return]
        return deserialize_binary_message(frame)  # type: ignore[no-any-return]
    if len(frame) > _OFFLOAD_BYTES:
        return await asyncio.to_thread(json.loads, frame)  # type: ignore[no-any-return]
    return json.loads(frame)  # type: ignore[no-any-return]


#: Linux's TCP_QUICKACK (None elsewhere: acknowledgements keep their usual delay there).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def _tcp_socket(ws: WebSocketClientConnection) -> socket.socket | None:
    """The TCP socket under a tornado websocket client connection, if it has one."""
    stream = getattr(getattr(ws, "protocol", None), "stream", None)
    sock = getattr(stream, "socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        return sock
    return None


def _ignore_result(future: Any) -> None:
    if not future.cancelled():
        future.exception()


def _url_join(*pieces: str) -> str:
    """Join URL pieces with single slashes (like jupyter_server's ``url_path_join``)."""
    from jupyter_server.utils import url_path_join

    return str(url_path_join(*pieces))


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 300 else text[:300] + "…"
