"""The execution queue: one FIFO and one worker per kernel.

Kernels are driven only through the server's own kernel manager. Each kernel gets one
server-side client of its own (a fresh session), created on first use and kept while
the kernel lives; a worker task takes the kernel's entries one at a time, in order.

Every state change and output is published on the :class:`~jupyter_canvas.events.bus.EventBus`
and handed to the optional :class:`CellBridge` (notebook cells) and audit hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import zmq.asyncio
from jupyter_server.utils import ensure_async

from ..events.bus import EventBus
from ..kernel_messages import decode_message, fresh_session
from ..outputs import OUTPUT_MSG_TYPES, message_to_output
from ..status import lifecycle as lc
from .blobs import BlobStore, outputs_size
from .gateway import (
    GatewayConnections,
    GatewayKernelGone,
    GatewayQueueClient,
    is_gateway_kernel,
    open_gateway_client,
)
from .journal import EntryJournal
from .models import Entry, EntryState, utcnow
from .routing import KernelOutputs
from .spill import SpillStore
from .widgets import WidgetTracker


class QueueError(Exception):
    """A request the queue cannot honour; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class KernelNotFound(QueueError):
    """The kernel id is not one of the server's kernels."""

    status = 404


class QueueFull(QueueError):
    """The kernel's queue is at its configured limit."""

    status = 429


class EntryNotFound(QueueError):
    """The entry id is unknown or no longer retained."""

    status = 404


class InvalidState(QueueError):
    """The entry is not in a state that allows the operation."""

    status = 409


class CellNotRun(Exception):
    """Raised by a :class:`CellBridge` when an entry's cell must not run (it is gone, no
    longer code, or tagged ``skip-execution``): the entry ends cancelled with ``reason``
    and nothing reaches the kernel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KernelDied(RuntimeError):
    """The kernel's process died before it could run the entry."""


class KernelUnresponsive(RuntimeError):
    """The kernel did not answer within the configured time."""


class CellBridge(Protocol):
    """What the queue needs from the notebook layer to run notebook cells."""

    async def resolve_source(self, entry: Entry) -> str:
        """Return the cell's source as it is now (live document, else the file).

        Raises :class:`CellNotRun` when the cell must not run.
        """

    async def cell_started(self, entry: Entry) -> None:
        """Clear the cell's outputs and mark it running; follow ``entry.outputs``."""

    async def cell_finished(self, entry: Entry) -> None:
        """Write the final state of the cell (execution count, idle)."""


TransitionHook = Callable[[Entry, EntryState | None], None]

#: Longest time (seconds) a kernel reader handles messages before letting others run.
_READ_SLICE = 0.005
#: Messages larger than this (bytes) are verified and decoded off the event loop.
_OFFLOAD_BYTES = 1 << 20
#: Seconds an execution may stay without its execute_reply once its kernel said idle
#: (shorter when we interrupted it: that is when ipykernel drops replies).
_REPLY_GRACE = 5.0
#: A cancelled entry's kernel is interrupted again this often until it answers.
_INTERRUPT_EVERY = 0.5
_INTERRUPT_REPEATS = 40
_REPLY_GRACE_INTERRUPTED = 1.0
#: Seconds an execution may stay without its idle status once its execute_reply came.
_IDLE_GRACE = 5.0
#: The session username of the queue's own clients (the status tracker recognizes them).
QUEUE_SESSION_USERNAME = "jupyter_canvas"
#: While a cell runs, its kernel's readers are checked this often (seconds) for a stall.
_STALL_CHECK = 2.0


class _Run:
    """The execution in flight on a kernel: what has come back for it so far."""

    __slots__ = ("done", "entry", "idle", "input_timer", "msg_id", "reply", "timer")

    def __init__(self, entry: Entry, msg_id: str, done: asyncio.Future[None]) -> None:
        self.entry = entry
        self.msg_id = msg_id
        self.done = done
        self.reply: dict[str, Any] | None = None
        self.idle = False
        #: The entry's time limit, and the limit of an unanswered ``input()``.
        self.timer: asyncio.TimerHandle | None = None
        self.input_timer: asyncio.TimerHandle | None = None

    def stop_timers(self) -> None:
        """The execution ended: no time limit applies any more."""
        for timer in (self.timer, self.input_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.input_timer = None


class _Reader:
    """One channel of the queue's client, the task that reads it, and its progress."""

    __slots__ = ("channel", "handle", "readable_at_check", "received", "received_at_check", "task")

    def __init__(self, channel: Any, handle: Callable[[dict], None]) -> None:
        self.channel = channel
        self.handle = handle
        self.received = 0
        self.received_at_check = -1
        self.readable_at_check = False
        self.task: asyncio.Task[None] | None = None

    def readable(self) -> bool:
        """Whether a message waits on the channel's socket (False if it cannot tell)."""
        socket = getattr(self.channel, "socket", None)
        if socket is None or socket.closed:
            return False
        try:
            return bool(socket.get(zmq.EVENTS) & zmq.POLLIN)
        except zmq.ZMQError:
            return False

    def stalled(self) -> bool:
        """Whether the reader is stuck, judged at one check of a series.

        A message waited on the socket at the previous check and still nothing was
        received since: a live reader takes a waiting message within microseconds, so
        this is a receive that missed its wake-up (seen with pyzmq's asyncio sockets in
        bursts) or a reader that ended. A reader that merely had nothing to read is not
        stalled.
        """
        if self.task is None or self.task.done():
            return True
        stuck = self.readable_at_check and self.received == self.received_at_check
        self.received_at_check = self.received
        self.readable_at_check = self.readable()
        return stuck


class KernelQueue:
    """The FIFO, the worker and the client of one kernel."""

    def __init__(self, engine: ExecutionQueue, kernel_id: str) -> None:
        self.engine = engine
        self.kernel_id = kernel_id
        self.pending: deque[Entry] = deque()
        self.running: Entry | None = None
        self.client: Any = None
        self._run: _Run | None = None
        #: The execution in flight when a gateway connection dropped (gateway kernels).
        self._run_at_drop: _Run | None = None
        self._readers: list[_Reader] = []
        #: Where output messages go (widgets, display ids, the entry).
        self.outputs = KernelOutputs(
            engine._output,
            WidgetTracker(
                self._send_comm,
                max_bytes=engine.widget_state_bytes,
                schedule=asyncio.get_running_loop().call_later,
                log=engine.log,
            ),
        )
        #: kernel_info_requests of ours waiting for their reply (msg_id -> its future).
        self._info_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._stall_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        # Cleared while the kernel restarts or shuts down: the worker starts nothing then.
        self._available = asyncio.Event()
        self._available.set()
        # Held while an entry is being started or the kernel interrupted, so an interrupt
        # meant for one entry never lands on the next.
        self._gate = asyncio.Lock()
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._work())

    # -- the worker ------------------------------------------------------------------------
    async def _work(self) -> None:
        while not self.closed:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._available.is_set():
                try:
                    await asyncio.wait_for(self._available.wait(), self.engine.kernel_ready_timeout)
                except asyncio.TimeoutError:
                    # The restart never announced itself: try the kernel anyway; if it
                    # does not answer, the entry fails with a reason below.
                    self._available.set()
                continue
            entry = self.pending.popleft()
            try:
                await self._execute(entry)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # never let one entry kill the worker
                self.engine.log.exception("jupyter_canvas: entry %s failed to run", entry.id)
                if not entry.terminal:
                    self._finish(
                        entry,
                        EntryState.ERROR,
                        reason=f"could not run: {err}",
                        error=_error_dict(type(err).__name__, str(err)),
                    )

    def wake(self) -> None:
        """Tell the worker there is work."""
        self._wake.set()

    async def _execute(self, entry: Entry) -> None:
        loop = asyncio.get_running_loop()
        async with self._gate:
            if entry.terminal:
                return
            entry.state = EntryState.RUNNING
            entry.started_at = utcnow()
            self.running = entry
            bridge = self.engine.cell_bridge if entry.path else None
            if bridge is None and self.client is not None:
                # The common case (a snippet, the client ready): send the request first and
                # tell the world after, so the kernel starts while we publish and journal.
                run = self._send_execute(self.client, entry, loop.create_future())
                self.engine._transition(entry, EntryState.QUEUED)
            else:
                started = await self._start_slowly(entry, bridge)
                if started is None:
                    return
                run = started
        await self._await_run(run)

    async def _start_slowly(self, entry: Entry, bridge: CellBridge | None) -> _Run | None:
        """Announce the entry, prepare its cell and the client, then send it (None: it ended)."""
        self.engine._transition(entry, EntryState.QUEUED)
        try:
            if bridge is not None:
                if entry.source_from_notebook:
                    entry.code = await bridge.resolve_source(entry)
                await bridge.cell_started(entry)
                if entry.cell_id is not None and not entry.code.strip():
                    # As JupyterLab: an empty cell is not sent; starting it cleared its
                    # outputs and execution count, and it is done.
                    self._finish(entry, EntryState.DONE)
                    return None
            client = await self._ensure_client()
        except CellNotRun as err:
            self._finish(entry, EntryState.CANCELLED, reason=err.reason)
            return None
        except Exception as err:
            died = isinstance(err, KernelDied)
            self._finish(
                entry,
                EntryState.ERROR,
                reason=f"kernel died: {err}" if died else f"could not start: {err}",
                error=_error_dict(type(err).__name__, str(err)),
            )
            if died:
                self.cancel_pending(f"kernel died: {err}")
            return None
        if entry.terminal:  # cancelled or the kernel died while we got ready
            return None
        return self._send_execute(client, entry, asyncio.get_running_loop().create_future())

    def _send_comm(self, content: dict[str, Any], parent: dict[str, Any]) -> None:
        """Send a ``comm_msg`` to the kernel (an Output widget's outputs, as a front end)."""
        client = self.client
        if client is None:
            return
        if isinstance(client, GatewayQueueClient):
            client.send_shell("comm_msg", content, parent)
            return
        client.shell_channel.send(client.session.msg("comm_msg", content, parent=parent))

    def _send_execute(self, client: Any, entry: Entry, done: asyncio.Future[None]) -> _Run:
        msg_id = client.execute(entry.code, allow_stdin=entry.allow_stdin, stop_on_error=False)
        entry.msg_id = msg_id
        run = self._run = _Run(entry, msg_id, done)
        if entry.timeout:
            run.timer = asyncio.get_running_loop().call_later(
                entry.timeout, self._time_out, run, f"timed out after {entry.timeout:g} s"
            )
        if self._readers:
            self._watch_readers(run)
        return run

    async def _await_run(self, run: _Run) -> None:
        # Outside the gate: an interrupt for this entry must be able to take it.
        try:
            await run.done
        finally:
            run.stop_timers()
            # Captured widget outputs reach the kernel before the next execution does.
            self.outputs.widgets.flush()
            if self._run is run:
                self._run = None
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

    async def _ensure_client(self) -> Any:
        if self.client is not None:
            return self.client
        self.client = await self.engine.open_client(self.kernel_id)
        client = self.client
        if isinstance(client, GatewayQueueClient):
            # A gateway kernel's messages come by callback from its websocket: no readers.
            client.deliver_to(
                self._on_iopub, self._on_shell, self._on_stdin, self._dropped, self._resync
            )
            return client
        self._readers = [
            _Reader(client.iopub_channel, self._on_iopub),
            _Reader(client.shell_channel, self._on_shell),
            _Reader(client.stdin_channel, self._on_stdin),
        ]
        for reader in self._readers:
            self._start_reader(client, reader)
        return client

    def _start_reader(self, client: Any, reader: _Reader) -> None:
        if reader.task is not None:
            reader.task.cancel()
        reader.task = asyncio.create_task(self._read(client, reader))

    def _watch_readers(self, run: _Run) -> None:
        """Every few seconds while ``run`` is in flight, restart a reader that stalled.

        Without this, a receive that missed its wake-up would leave the cell running
        with its reply and outputs sitting unread on the socket. Restarting loses
        nothing: a cancelled receive takes no message, and the new one finds the
        waiting messages at once.
        """
        for reader in self._readers:
            reader.received_at_check = reader.received
            reader.readable_at_check = False
        loop = asyncio.get_running_loop()

        def check() -> None:
            self._stall_timer = None
            client = self.client
            if self._run is not run or run.done.done() or client is None:
                return
            for reader in self._readers:
                if reader.stalled():
                    self.engine.log.warning(
                        "jupyter_canvas: the reader of kernel %s's %s channel stalled with "
                        "a message waiting; restarting it",
                        self.kernel_id,
                        getattr(reader.channel, "channel_name", None) or "?",
                    )
                    self._start_reader(client, reader)
                    reader.received_at_check = reader.received
                    reader.readable_at_check = False
            self._stall_timer = loop.call_later(_STALL_CHECK, check)

        self._stall_timer = loop.call_later(_STALL_CHECK, check)

    async def _read(self, client: Any, reader: _Reader) -> None:
        channel, handle = reader.channel, reader.handle
        loop = asyncio.get_running_loop()
        # Awaiting a socket that already holds a message does not yield to the event loop,
        # so a flood of output would starve every other request: yield every few ms.
        budget_end = loop.time() + _READ_SLICE
        while self.client is client:
            if loop.time() > budget_end:
                await asyncio.sleep(0)
                budget_end = loop.time() + _READ_SLICE
            try:
                msg = await self._receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                reader.received += 1  # progress all the same: the socket was read
                if self.client is not client or self.closed:
                    return
                # A closed socket or a message that does not deserialize: wait a bit
                # rather than spin, then carry on with the next message.
                await asyncio.sleep(0.05)
                continue
            reader.received += 1
            try:
                handle(msg)
            except Exception:
                self.engine.log.exception(
                    "jupyter_canvas: could not handle %s", msg.get("msg_type")
                )

    async def _receive(self, channel: Any) -> dict[str, Any]:
        """Receive one message; a large one is verified and decoded in a worker thread."""
        socket = getattr(channel, "socket", None)
        session = getattr(channel, "session", None)
        if not isinstance(socket, zmq.asyncio.Socket) or session is None:
            return await channel.get_msg()  # type: ignore[no-any-return]
        parts = await socket.recv_multipart()
        _idents, frames = session.feed_identities(parts)
        if sum(len(frame) for frame in frames) > _OFFLOAD_BYTES:
            return await asyncio.to_thread(decode_message, session, frames)
        return decode_message(session, frames)

    def close_client(self) -> None:
        """Drop the client (a new one is made for the next entry)."""
        client, self.client = self.client, None
        for reader in self._readers:
            if reader.task is not None:
                reader.task.cancel()
        self._readers = []
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.stop_channels()

    # -- messages from the kernel ----------------------------------------------------------
    def _on_iopub(self, msg: dict[str, Any]) -> None:
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        self.engine._kernel_message(self.kernel_id, msg)
        self.outputs.observe(msg)
        if msg_type == "shutdown_reply":
            kind = lc.RESTARTING if content.get("restart") else lc.SHUTTING_DOWN
            reason = "kernel restarted" if content.get("restart") else "kernel was shut down"
            self.kernel_down(reason, restarting=True)
            self.engine.lifecycle_hint(lc.LifecycleEvent(self.kernel_id, kind, reason))
            return
        run = self._run
        if run is None or msg["parent_header"].get("msg_id") != run.msg_id:
            return
        entry = run.entry
        if msg_type == "status":
            state = content.get("execution_state")
            if state in ("busy", "idle"):
                _record_time(entry, f"iopub.status.{state}", msg["header"])
            if state == "idle":
                run.idle = True
                self._maybe_complete(run)
                if not run.done.done():
                    interrupted = entry.cancel_reason is not None
                    asyncio.get_running_loop().call_later(
                        _REPLY_GRACE_INTERRUPTED if interrupted else _REPLY_GRACE,
                        self._complete_without_reply,
                        run,
                    )
            return
        if msg_type == "execute_input":
            _record_time(entry, "iopub.execute_input", msg["header"])
            count = content.get("execution_count")
            if isinstance(count, int):
                entry.execution_count = count
            return
        if msg_type in OUTPUT_MSG_TYPES:
            self.outputs.apply(entry, msg_type, content, msg["parent_header"])

    async def kernel_info(self, timeout: float) -> dict[str, Any]:
        """The content of the kernel's ``kernel_info_reply`` to a request of ours."""
        client = await self._ensure_client()
        if not hasattr(client, "kernel_info"):
            raise RuntimeError("this kernel's client cannot ask for kernel info")
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        msg_id = client.kernel_info()
        self._info_waiters[msg_id] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._info_waiters.pop(msg_id, None)

    def _on_shell(self, msg: dict[str, Any]) -> None:
        waiter = self._info_waiters.pop(msg["parent_header"].get("msg_id", ""), None)
        if waiter is not None:
            if msg["header"]["msg_type"] == "kernel_info_reply" and not waiter.done():
                waiter.set_result(msg["content"])
            return
        run = self._run
        if run is None or msg["parent_header"].get("msg_id") != run.msg_id:
            return
        if msg["header"]["msg_type"] == "execute_reply":
            started = (msg.get("metadata") or {}).get("started")
            if started:  # ipykernel's, not in the protocol
                _record_time(run.entry, "shell.execute_reply.started", {"date": started})
            _record_time(run.entry, "shell.execute_reply", msg["header"])
            run.reply = msg["content"]
            count = run.reply.get("execution_count")
            if isinstance(count, int):
                run.entry.execution_count = count
            self._maybe_complete(run)
            if not run.done.done():
                asyncio.get_running_loop().call_later(_IDLE_GRACE, self._complete_without_idle, run)

    def _complete_without_idle(self, run: _Run) -> None:
        """End an execution whose reply came but whose idle status never did (lost)."""
        if self._run is run and not run.done.done():
            run.idle = True
            self._maybe_complete(run)

    def _on_stdin(self, msg: dict[str, Any]) -> None:
        run = self._run
        if run is None or msg["parent_header"].get("msg_id") != run.msg_id:
            return
        if msg["header"]["msg_type"] == "input_request":
            entry = run.entry
            entry.input_request = {
                "prompt": msg["content"].get("prompt", ""),
                "password": bool(msg["content"].get("password", False)),
            }
            previous = entry.state
            entry.state = EntryState.AWAITING_INPUT
            self.engine._transition(entry, previous)
            limit = self.engine.input_timeout
            if limit > 0:
                run.input_timer = asyncio.get_running_loop().call_later(
                    limit, self._time_out, run, f"timed out after {limit:g} s waiting for input"
                )

    def input_answered(self, entry: Entry, prompt: str, password: bool, value: str) -> None:
        """``input()`` was answered: stop its time limit, echo it into the cell."""
        run = self._run
        if run is not None and run.entry is entry and run.input_timer is not None:
            run.input_timer.cancel()
            run.input_timer = None
        self.outputs.echo_input(entry, prompt, password, value)

    def _time_out(self, run: _Run, reason: str) -> None:
        """A time limit passed: interrupt the execution; it ends ``error`` with ``reason``."""
        if self._run is not run or run.done.done():
            return
        task = asyncio.get_running_loop().create_task(
            self.interrupt_for(run.entry, reason, timed_out=True)
        )
        task.add_done_callback(_log_task_error(self.engine.log))

    def _dropped(self) -> None:
        """A gateway connection dropped: note what was running then."""
        if self._run_at_drop is None:
            self._run_at_drop = self._run

    def _resync(self) -> None:
        """A gateway connection dropped and came back, and the kernel answered since:
        what ran when it dropped has ended; what it still misses was lost with the
        connection."""
        run, self._run_at_drop = self._run_at_drop, None
        if run is None or run is not self._run or run.done.done():
            return
        if run.reply is None:
            run.reply = {
                "status": "error",
                "ename": "ConnectionLost",
                "evalue": "the connection to the gateway dropped while this ran: "
                "its result was lost",
                "traceback": [],
            }
        run.idle = True
        self._maybe_complete(run)

    def _maybe_complete(self, run: _Run) -> None:
        if run.reply is None or not run.idle or run.done.done():
            return
        entry = run.entry
        reply = run.reply
        status = reply.get("status")
        self._run = None
        if entry.timed_out and entry.cancel_reason is not None:
            # nbclient's name for it; the cell shows the KeyboardInterrupt the kernel sent.
            reason = entry.cancel_reason
            self._fail(entry, _error_dict("CellTimeoutError", reason), reason=reason)
        elif entry.cancel_reason is not None:
            self._finish(entry, EntryState.CANCELLED, reason=entry.cancel_reason)
        elif status == "ok":
            self._finish(entry, EntryState.DONE)
        elif status == "aborted":
            self._finish(entry, EntryState.CANCELLED, reason="aborted by the kernel")
        else:
            error = _error_dict(
                reply.get("ename", "Error"), reply.get("evalue", ""), reply.get("traceback", [])
            )
            self._fail(entry, error)
        run.done.set_result(None)

    def _fail(self, entry: Entry, error: dict[str, Any], reason: str | None = None) -> None:
        """End ``entry`` in ``error``; with ``stop_on_error``, cancel what waits behind it."""
        self._finish(entry, EntryState.ERROR, error=error, reason=reason)
        if entry.stop_on_error and not entry.error_expected:
            self.cancel_pending(_failed_reason(entry, error["ename"]), caused_by=entry.id)

    def _complete_without_reply(self, run: _Run) -> None:
        """End an execution whose kernel went idle but never replied.

        ipykernel drops the execute_reply when an interrupt lands after the code ended but
        before the reply was sent (it catches the KeyboardInterrupt in its dispatcher), yet
        still publishes idle: without this the entry would stay running and block its queue.
        """
        if self._run is not run or run.done.done() or run.reply is not None:
            return
        interrupted = run.entry.cancel_reason is not None
        run.reply = {
            "status": "error",
            "ename": "KeyboardInterrupt" if interrupted else "NoReply",
            "evalue": "the kernel went idle without replying to this execution",
            "traceback": [],
        }
        self._maybe_complete(run)

    # -- endings -----------------------------------------------------------------------------
    def _finish(
        self,
        entry: Entry,
        state: EntryState,
        *,
        reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        if entry.terminal:
            return
        previous = entry.state
        entry.state = state
        entry.reason = reason
        entry.error = error
        entry.input_request = None
        entry.finished_at = utcnow()
        if self.running is entry:
            self.running = None
        run = self._run
        if run is not None and run.entry is entry:
            # The execution ends with its entry: a finished entry is final, and whatever of
            # it still arrives (the server stopping ended it while its messages were on the
            # way) is ignored, as after any other end.
            self._run = None
            if not run.done.done():
                run.done.set_result(None)
        self.engine._finished(entry, previous)

    def cancel_pending(self, reason: str, caused_by: str | None = None) -> list[Entry]:
        """Cancel every queued entry of this kernel with ``reason`` (and the id of the
        entry whose failure is the cause, if one is)."""
        cancelled = list(self.pending)
        self.pending.clear()
        for entry in cancelled:
            entry.caused_by = caused_by
            self._finish(entry, EntryState.CANCELLED, reason=reason)
        return cancelled

    def kernel_down(self, reason: str, *, restarting: bool) -> None:
        """The kernel died, restarts or was shut down: end the running and queued entries."""
        run, self._run = self._run, None
        running = self.running
        if running is not None and not running.terminal:
            if running.msg_id is not None:
                # The cell shows why it has no result, as nbclient's DeadKernelError says.
                died = {"ename": "DeadKernelError", "evalue": reason, "traceback": []}
                running.outputs.apply("error", died)
                self.engine._output(running, "error", died)
            self._finish(
                running,
                EntryState.ERROR,
                reason=f"kernel died: {reason}" if "died" not in reason else reason,
                error=_error_dict("KernelDied", reason),
            )
        if run is not None and not run.done.done():
            run.done.set_result(None)
        self.cancel_pending(reason)
        self.close_client()
        self.outputs.reset()
        if restarting:
            self._available.clear()

    def kernel_back(self) -> None:
        """The kernel restarted: entries queued from now on run on the new process."""
        self.close_client()
        self._available.set()
        self.wake()

    async def interrupt_for(self, entry: Entry, reason: str, *, timed_out: bool = False) -> None:
        """Interrupt the running ``entry``: it ends cancelled (``error`` when ``timed_out``)."""
        async with self._gate:
            if entry is not self.running or entry.terminal:
                return
            if timed_out and entry.cancel_reason is not None:
                return  # already being cancelled: that wins
            entry.cancel_reason = reason
            entry.timed_out = timed_out
            await self.engine.interrupt(self.kernel_id)
        # ipykernel ignores an interrupt that lands before the code really starts: repeat
        # it until the kernel answers (never past this entry: the gate keeps the next one
        # from starting while we signal).
        for _ in range(_INTERRUPT_REPEATS):
            await asyncio.sleep(_INTERRUPT_EVERY)
            async with self._gate:
                run = self._run
                if run is None or run.entry is not entry or run.reply is not None or run.idle:
                    return
                await self.engine.interrupt(self.kernel_id)

    async def close(self) -> None:
        """Stop the worker and the client."""
        self.closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self.close_client()


def _record_time(entry: Entry, key: str, header: dict[str, Any]) -> None:
    """Note the date of a kernel message as JupyterLab's recordTiming does (kept as sent)."""
    date = header.get("date")
    if isinstance(date, datetime):  # a client that parsed it (not ours)
        date = date.isoformat().replace("+00:00", "Z")
    if isinstance(date, str) and date:
        entry.timing[key] = date


def _failed_reason(entry: Entry, ename: str) -> str:
    """Why the entries behind a failed one are cancelled, in words people read: the cell
    by its execution count (``cell [3]``), a snippet by who queued it; ids stay in
    ``caused_by``."""
    if entry.cell_id is not None:
        where = (
            f"cell [{entry.execution_count}]"
            if entry.execution_count is not None
            else "the cell queued before"
        )
    else:
        where = f"code queued by {entry.owner_name or entry.owner}"
    return f"an earlier cell failed: {ename} in {where}"


def _error_dict(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {"ename": ename, "evalue": evalue, "traceback": list(traceback or [])}


class ExecutionQueue:
    """Queues code on the server's kernels and follows every entry to its end."""

    def __init__(
        self,
        kernel_manager: Any,
        bus: EventBus,
        *,
        max_queued_per_kernel: int = 1000,
        retain_finished: int = 1000,
        retain_seconds: float = 3600.0,
        kernel_ready_timeout: float = 60.0,
        input_timeout: float = 0.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.bus = bus
        self.max_queued_per_kernel = max_queued_per_kernel
        self.retain_finished = retain_finished
        self.retain_seconds = retain_seconds
        self.kernel_ready_timeout = kernel_ready_timeout
        #: Seconds an ``input()`` may wait for its answer (0: forever).
        self.input_timeout = input_timeout
        #: Most bytes of ipywidgets state kept per kernel.
        self.widget_state_bytes = 32 * 1024 * 1024
        self.log = log or logging.getLogger(__name__)
        self.cell_bridge: CellBridge | None = None
        #: Longest stream text one output event carries (a bigger chunk is cut in the middle).
        self.event_text_cap = 256 * 1024
        #: Keeps the whole text of cut streams (None: cut text is not kept).
        self.spills: SpillStore | None = None
        #: Journals entries so they answer after a restart (None: no journal).
        self.journal: EntryJournal | None = None
        #: Keeps large outputs on disk; entries keep references (None: kept whole).
        self.blobs: BlobStore | None = None
        #: Most bytes of outputs the finished entries hold in memory (the newest is kept).
        self.retain_output_bytes = 64 * 1024 * 1024
        self._retained_bytes: dict[str, int] = {}
        self._kernels: dict[str, KernelQueue] = {}
        self._live: dict[str, Entry] = {}
        self._retained: OrderedDict[str, Entry] = OrderedDict()
        self._transition_hooks: list[TransitionHook] = []
        self._message_hooks: list[Callable[[str, dict[str, Any]], None]] = []
        self._lifecycle_hint: Callable[[lc.LifecycleEvent], None] | None = None
        self._gateway: GatewayConnections | None = None

    # -- wiring ------------------------------------------------------------------------------
    def add_transition_hook(self, hook: TransitionHook) -> None:
        """Call ``hook(entry, previous_state)`` on every state change."""
        self._transition_hooks.append(hook)

    def add_message_hook(self, hook: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``hook(kernel_id, msg)`` for every IOPub message the queue's clients see."""
        self._message_hooks.append(hook)

    def set_lifecycle_hint(self, hint: Callable[[lc.LifecycleEvent], None]) -> None:
        """Where to report lifecycle signals seen on IOPub (a shutdown_reply)."""
        self._lifecycle_hint = hint

    def lifecycle_hint(self, event: lc.LifecycleEvent) -> None:
        """Report a lifecycle signal seen on a kernel's IOPub."""
        if self._lifecycle_hint is not None:
            self._lifecycle_hint(event)

    def on_lifecycle(self, event: lc.LifecycleEvent) -> None:
        """React to a kernel's lifecycle: end entries, hold or release the worker."""
        if self.gateway_followed(event):
            return
        queue = self._kernels.get(event.kernel_id or "")
        if queue is None:
            return
        if event.kind == lc.AUTORESTARTING:
            queue.kernel_down(event.reason or "kernel died", restarting=True)
        elif event.kind == lc.RESTARTED:
            if queue.running is not None or queue._available.is_set():
                # A restart we did not see begin (no shutdown_reply on IOPub).
                queue.kernel_down("kernel restarted", restarting=True)
            queue.kernel_back()
        elif event.kind in (lc.SHUTDOWN, lc.DEAD):
            queue.kernel_down(event.reason or "kernel died", restarting=False)
            self._kernels.pop(queue.kernel_id, None)
            asyncio.get_running_loop().create_task(queue.close())

    # -- kernels -------------------------------------------------------------------------------
    def has_kernel(self, kernel_id: str) -> bool:
        """Whether the server's kernel manager knows this kernel."""
        try:
            return kernel_id in self.kernel_manager
        except Exception:
            return False

    def gateway_connections(self) -> GatewayConnections:
        """The websockets to gateway kernels (``--gateway-url``), shared with the status."""
        if self._gateway is None:
            # Configured as ``c.GatewayConnections.<trait>`` through the server's config.
            self._gateway = GatewayConnections(
                self.lifecycle_hint, self._resume, parent=self.kernel_manager, log=self.log
            )
        return self._gateway

    def gateway_followed(self, event: lc.LifecycleEvent) -> bool:
        """Whether ``event`` is a late copy of a gateway kernel's restart already followed."""
        return self._gateway is not None and self._gateway.followed_restart(event)

    def _resume(self, kernel_id: str) -> None:
        """A kernel that restarted without a lifecycle event answers: run its queue."""
        queue = self._kernels.get(kernel_id)
        if queue is not None and not queue._available.is_set():
            queue.kernel_back()

    async def _open_gateway_client(self, kernel_id: str) -> Any:
        try:
            return await open_gateway_client(
                self.gateway_connections(),
                kernel_id,
                self.kernel_ready_timeout,
                QUEUE_SESSION_USERNAME,
            )
        except GatewayKernelGone as err:
            raise KernelDied(str(err)) from None
        except asyncio.TimeoutError:
            raise KernelUnresponsive(
                f"kernel {kernel_id} did not answer through the gateway within "
                f"{self.kernel_ready_timeout:g} s"
            ) from None
        except Exception as err:
            raise KernelUnresponsive(f"kernel {kernel_id} cannot be reached: {err}") from None

    async def open_client(self, kernel_id: str) -> Any:
        """Create, start and ready a client of our own for one kernel."""
        kernel = self.kernel_manager.get_kernel(kernel_id)
        if is_gateway_kernel(kernel):
            return await self._open_gateway_client(kernel_id)
        await self._wait_started(kernel)
        kwargs: dict[str, Any] = {}
        base_session = getattr(kernel, "session", None)
        if base_session is not None and hasattr(kernel, "connection_file"):
            # A fresh session: sharing km.client()'s can route replies to another socket.
            kwargs["session"] = fresh_session(base_session, QUEUE_SESSION_USERNAME)
        client = kernel.client(**kwargs)
        if isinstance(getattr(client, "context", None), zmq.Context):
            # No high-water mark on our sockets: a burst of output must queue, not be
            # dropped (a lost idle would leave an entry running).
            client.context.setsockopt(zmq.RCVHWM, 0)
        started = client.start_channels()
        if inspect.isawaitable(started):
            await started
        try:
            await client.wait_for_ready(timeout=self.kernel_ready_timeout)
        except Exception as err:
            with contextlib.suppress(Exception):
                client.stop_channels()
            alive = True
            with contextlib.suppress(Exception):
                alive = bool(await ensure_async(kernel.is_alive()))
            if not alive:
                raise KernelDied(f"kernel {kernel_id} died before it answered ({err})") from None
            raise KernelUnresponsive(
                f"kernel {kernel_id} did not answer within {self.kernel_ready_timeout:g} s ({err})"
            ) from None
        return client

    async def prepare(self, kernel_id: str) -> None:
        """Open the queue's client of a kernel now (a warm kernel: ``kernels/pool.py``), so
        its first entry does not wait for the client to connect and the kernel to answer."""
        await self._queue_for(kernel_id)._ensure_client()

    async def _wait_started(self, kernel: Any) -> None:
        """Wait for a local kernel's process to be up (its ``ready`` future)."""
        ready = getattr(kernel, "ready", None)
        if ready is None:
            return
        if isinstance(ready, concurrent.futures.Future):
            ready = asyncio.wrap_future(ready)
        if isinstance(ready, asyncio.Future):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(ready), self.kernel_ready_timeout)

    async def kernel_info(self, kernel_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Ask a kernel for its ``kernel_info_reply`` (content) through the queue's client."""
        return await self._queue_for(kernel_id).kernel_info(timeout)

    async def interrupt(self, kernel_id: str) -> None:
        """Interrupt a kernel through the server's kernel manager."""
        await self.kernel_manager.interrupt_kernel(kernel_id)

    def _queue_for(self, kernel_id: str) -> KernelQueue:
        queue = self._kernels.get(kernel_id)
        if queue is None:
            queue = self._kernels[kernel_id] = KernelQueue(self, kernel_id)
        return queue

    # -- queueing ------------------------------------------------------------------------------
    def check_capacity(self, kernel_id: str, count: int) -> None:
        """Raise if ``count`` more entries do not fit on the kernel (all or nothing)."""
        if not self.has_kernel(kernel_id):
            raise KernelNotFound(
                f"no kernel with id {kernel_id!r}: start one with POST /api/kernels"
            )
        queue = self._kernels.get(kernel_id)
        queued = len(queue.pending) if queue else 0
        if queued + count > self.max_queued_per_kernel:
            raise QueueFull(
                f"kernel {kernel_id} has {queued} queued entries; {count} more would exceed "
                f"the limit of {self.max_queued_per_kernel} (CanvasApp.max_queued_per_kernel). "
                "Wait for some to finish, or clear the queue."
            )

    def submit(self, entries: list[Entry]) -> list[Entry]:
        """Queue entries (all on one kernel, in order); all or nothing."""
        if not entries:
            return []
        kernel_id = entries[0].kernel_id
        self.check_capacity(kernel_id, len(entries))
        queue = self._queue_for(kernel_id)
        for entry in entries:
            if self.spills is not None and entry.outputs.spill_factory is None:
                entry.outputs.spill_factory = self.spills.factory(entry.id)
            if self.blobs is not None and entry.outputs.offload is None:
                entry.outputs.offload = self.blobs.offloader(entry.id)
            self._live[entry.id] = entry
            queue.pending.append(entry)
            self._transition(entry, None)
        queue.wake()
        return entries

    # -- reading -------------------------------------------------------------------------------
    def get(self, entry_id: str) -> Entry:
        """Return an entry the server still knows, or raise :class:`EntryNotFound`."""
        self._prune()
        entry = self._live.get(entry_id) or self._retained.get(entry_id)
        if entry is None:
            raise EntryNotFound(
                f"no entry with id {entry_id!r}: it never existed or is no longer retained"
            )
        return entry

    def position(self, entry: Entry) -> int | None:
        """The entry's 0-based place among its kernel's queued entries, if queued."""
        if entry.state is not EntryState.QUEUED:
            return None
        queue = self._kernels.get(entry.kernel_id)
        if queue is None:
            return None
        for index, queued in enumerate(queue.pending):
            if queued is entry:
                return index
        return None

    def list_entries(
        self,
        kernel_id: str | None = None,
        path: str | None = None,
        states: Iterable[EntryState] | None = None,
    ) -> list[tuple[Entry, int | None]]:
        """Running and queued entries in run order, then retained ones, newest first."""
        self._prune()
        wanted = set(states) if states else None

        def keep(entry: Entry) -> bool:
            return (
                (kernel_id is None or entry.kernel_id == kernel_id)
                and (path is None or entry.path == path)
                and (wanted is None or entry.state in wanted)
            )

        result: list[tuple[Entry, int | None]] = []
        for queue in self._kernels.values():
            if kernel_id is not None and queue.kernel_id != kernel_id:
                continue
            if queue.running is not None and keep(queue.running):
                result.append((queue.running, None))
            for index, entry in enumerate(queue.pending):
                if keep(entry):
                    result.append((entry, index))
        result.extend((entry, None) for entry in reversed(self._retained.values()) if keep(entry))
        return result

    def widget_state(self, kernel_id: str) -> dict[str, Any] | None:
        """The kernel's ipywidgets state as ``metadata.widgets`` holds it (None: no widget)."""
        queue = self._kernels.get(kernel_id)
        return queue.outputs.widgets.state() if queue is not None else None

    def kernel_summary(self, kernel_id: str) -> dict[str, Any]:
        """``{"running": id or None, "queued": n}`` for the status route."""
        queue = self._kernels.get(kernel_id)
        if queue is None:
            return {"running": None, "queued": 0}
        return {
            "running": queue.running.id if queue.running is not None else None,
            "queued": len(queue.pending),
        }

    # -- acting --------------------------------------------------------------------------------
    async def cancel(self, entry_id: str, by: str) -> Entry:
        """Cancel one entry: a queued one leaves the queue, a running one is interrupted.

        ``by`` names who asked, as people read it (a display name): the reason says it."""
        entry = self.get(entry_id)
        if entry.terminal:
            raise InvalidState(
                f"entry {entry_id} is already {entry.state.value}; only queued or running "
                "entries can be cancelled"
            )
        reason = f"cancelled by {by}"
        queue = self._kernels.get(entry.kernel_id)
        if queue is None:  # pragma: no cover - live entries always have a queue
            raise EntryNotFound(f"entry {entry_id} has no kernel queue")
        if entry.state is EntryState.QUEUED:
            with contextlib.suppress(ValueError):
                queue.pending.remove(entry)
            queue._finish(entry, EntryState.CANCELLED, reason=reason)
        else:
            await queue.interrupt_for(entry, reason)
            await entry.wait_finished(self.kernel_ready_timeout)
        return entry

    async def clear(
        self, by: str, kernel_id: str | None = None, path: str | None = None
    ) -> list[str]:
        """Cancel every queued entry of a kernel (or notebook) and interrupt the running one
        (``by``: who asked, by display name)."""
        reason = f"queue cleared by {by}"
        cancelled: list[str] = []
        running: list[tuple[KernelQueue, Entry]] = []
        for queue in list(self._kernels.values()):
            if kernel_id is not None and queue.kernel_id != kernel_id:
                continue
            if path is None:
                cancelled.extend(e.id for e in queue.cancel_pending(reason))
            else:
                mine = [e for e in queue.pending if e.path == path]
                for entry in mine:
                    queue.pending.remove(entry)
                    queue._finish(entry, EntryState.CANCELLED, reason=reason)
                cancelled.extend(e.id for e in mine)
            if queue.running is not None and (path is None or queue.running.path == path):
                running.append((queue, queue.running))
        for queue, entry in running:
            await queue.interrupt_for(entry, reason)
            cancelled.append(entry.id)
        for _queue, entry in running:
            await entry.wait_finished(self.kernel_ready_timeout)
        return cancelled

    def repath(self, old: str, new: str) -> list[Entry]:
        """The notebook ``old`` (or a folder of notebooks) was renamed or moved to ``new``:
        its queued and running entries follow it (each announced with an ``entry`` event)."""
        moved: list[Entry] = []
        for entry in list(self._live.values()):
            path = entry.path
            if path is None or entry.terminal:
                continue
            if path == old:
                entry.path = new
            elif path.startswith(old + "/"):
                entry.path = new + path[len(old) :]
            else:
                continue
            moved.append(entry)
            self._transition(entry, entry.state)
        return moved

    def withdraw_path(self, path: str, reason: str) -> list[str]:
        """Cancel the queued entries of notebook ``path`` (or of a folder); the running
        one goes on (its outputs stay in the API)."""
        cancelled: list[str] = []
        for queue in list(self._kernels.values()):
            gone = [
                e
                for e in queue.pending
                if e.path is not None and (e.path == path or e.path.startswith(path + "/"))
            ]
            for entry in gone:
                queue.pending.remove(entry)
                queue._finish(entry, EntryState.CANCELLED, reason=reason)
            cancelled.extend(e.id for e in gone)
        return cancelled

    async def send_input(self, entry_id: str, value: str) -> Entry:
        """Answer the ``input()`` an entry waits on."""
        entry = self.get(entry_id)
        queue = self._kernels.get(entry.kernel_id)
        if entry.state is not EntryState.AWAITING_INPUT or queue is None or queue.client is None:
            raise InvalidState(
                f"entry {entry_id} is {entry.state.value}, not awaiting_input: "
                "there is no input() to answer"
            )
        request = entry.input_request or {}
        queue.client.input(value)
        entry.input_request = None
        entry.state = EntryState.RUNNING
        self._transition(entry, EntryState.AWAITING_INPUT)
        queue.input_answered(
            entry, str(request.get("prompt", "")), bool(request.get("password")), value
        )
        return entry

    async def shutdown(self, reason: str = "server stopped") -> None:
        """Cancel everything and close every client (the server is stopping)."""
        for queue in list(self._kernels.values()):
            queue.cancel_pending(reason)
            if queue.running is not None:
                queue._finish(queue.running, EntryState.CANCELLED, reason=reason)
            await queue.close()
        self._kernels.clear()
        if self._gateway is not None:
            self._gateway.close()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _transition(self, entry: Entry, previous: EntryState | None) -> None:
        position = self.position(entry) if entry.state is EntryState.QUEUED else None
        self.bus.publish(
            {"type": "entry", "entry": entry.to_json(position, with_outputs=False)},
            kernel_id=entry.kernel_id,
            path=entry.path,
        )
        for hook in self._transition_hooks:
            try:
                hook(entry, previous)
            except Exception:
                self.log.exception("jupyter_canvas: transition hook failed")

    def _finished(self, entry: Entry, previous: EntryState) -> None:
        self._live.pop(entry.id, None)
        self._retained[entry.id] = entry
        self._retained_bytes[entry.id] = outputs_size(entry.outputs.to_json())
        self._transition(entry, previous)
        entry.mark_finished()
        bridge = self.cell_bridge if entry.path else None
        if bridge is not None and previous is not EntryState.QUEUED:
            task = asyncio.get_running_loop().create_task(bridge.cell_finished(entry))
            task.add_done_callback(_log_task_error(self.log))
        self._prune()

    def _output(self, entry: Entry, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "clear_output":
            payload: dict[str, Any] = {
                "type": "clear_output",
                "entry_id": entry.id,
                "run_id": entry.run_id,
                "kernel_id": entry.kernel_id,
                "path": entry.path,
                "cell_id": entry.cell_id,
                "wait": bool(content.get("wait", False)),
            }
        else:
            output = message_to_output(msg_type, content)
            if output is None:  # update_display_data
                output = {
                    "output_type": "update_display_data",
                    "data": content.get("data", {}),
                    "metadata": content.get("metadata", {}),
                }
            if self.blobs is not None:  # a large output: the event carries its reference
                output = self.blobs.event_output(entry.outputs.at(-1), output)
            transient = content.get("transient")
            if transient:
                output["transient"] = transient
            text = output.get("text")
            if isinstance(text, str) and len(text) > self.event_text_cap:
                # One huge chunk: the event carries its start and end; the entry keeps
                # what the stream cap keeps.
                keep = self.event_text_cap // 2
                output = dict(output)
                output["text"] = (
                    f"{text[:keep]}\n[jupyter_canvas: {len(text) - 2 * keep} characters of this "
                    f"chunk were cut from the event]\n{text[-keep:]}"
                )
                output["truncated"] = True
            payload = {
                "type": "output",
                "entry_id": entry.id,
                "run_id": entry.run_id,
                "kernel_id": entry.kernel_id,
                "path": entry.path,
                "cell_id": entry.cell_id,
                "output": output,
            }
        self.bus.publish(payload, kernel_id=entry.kernel_id, path=entry.path)

    def _kernel_message(self, kernel_id: str, msg: dict[str, Any]) -> None:
        for hook in self._message_hooks:
            hook(kernel_id, msg)

    def _prune(self) -> None:
        retained = self._retained
        dropped: list[str] = []
        while len(retained) > self.retain_finished:
            dropped.append(retained.popitem(last=False)[0])
        if self.retain_seconds > 0 and retained:
            horizon = utcnow() - timedelta(seconds=self.retain_seconds)
            while retained:
                oldest = next(iter(retained.values()))
                if oldest.finished_at is not None and oldest.finished_at >= horizon:
                    break
                dropped.append(retained.popitem(last=False)[0])
        sizes = self._retained_bytes
        for entry_id in dropped:
            sizes.pop(entry_id, None)
        total = sum(sizes.values())
        while total > self.retain_output_bytes and len(retained) > 1:
            entry_id = retained.popitem(last=False)[0]
            total -= sizes.pop(entry_id, 0)
            dropped.append(entry_id)
        if self.spills is not None:
            for entry_id in dropped:
                self.spills.forget(entry_id)

    @property
    def retained_count(self) -> int:
        """How many finished entries are kept."""
        return len(self._retained)


def _log_task_error(log: logging.Logger) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("jupyter_canvas: background task failed", exc_info=task.exception())

    return done
