"""The kernel status tracker: one :class:`KernelRecord` per kernel, fed by events only.

Sources, all event-driven:

- lifecycle signals (:class:`~jupyter_canvas.status.lifecycle.KernelLifecycle`): the
  server's ``kernel_actions`` events (start, restart, shutdown, whoever asked) and the
  kernel restarter's ``restart``/``dead`` callbacks (a crash and its autorestart);
- for local kernels, a :class:`~jupyter_canvas.status.watch.LocalKernelWatch`: our own
  IOPub subscription (``execution_state``, ``shutdown_reply``), a readiness probe and the
  heartbeat (a stopped or hung process turns ``unknown`` within
  ``heartbeat_interval + heartbeat_timeout`` seconds);
- for kernels we cannot reach over ZMQ (a gateway), the IOPub messages the execution
  queue's clients see (``ExecutionQueue.add_message_hook``) and the kernel manager's
  own ``execution_state``.

Every change of ``status``, ``execution_state`` or ``reason`` is published on the event
bus as ``{"type": "kernel", "status": KernelStatus}`` and wakes the ``wait_for`` requests
it satisfies. A dead or shut-down kernel keeps its record (``dead`` and its reason) for
``dead_retention_seconds``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import OrderedDict
from typing import Any

from traitlets import Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from ..events.bus import EventBus
from ..queue.engine import QUEUE_SESSION_USERNAME
from ..queue.models import utcnow
from . import lifecycle as lc
from .gateway import GatewayKernelWatch
from .models import ExecutionState, KernelProcessStatus, KernelRecord
from .reasons import describe_exit, describe_start_failure
from .watch import LocalKernelWatch

Status = KernelProcessStatus

#: The session username of the execution queue's kernel clients (queue/engine.py).


def _is_gateway_kernel(kernel: Any) -> bool:
    try:
        from jupyter_server.gateway.managers import GatewayKernelManager
    except Exception:  # pragma: no cover - jupyter_server always has it
        return False
    return isinstance(kernel, GatewayKernelManager)


def _last_activity(kernel: Any) -> Any:
    """The server's ``last_activity`` of a kernel, if it set one yet."""
    try:
        return getattr(kernel, "last_activity", None)
    except Exception:  # a datetime trait without a value raises until the server sets it
        return None


class KernelStatusTracker(LoggingConfigurable):
    """Knows the status of every kernel of the server, and of recently dead ones."""

    dead_retention_seconds = Float(
        3600.0,
        config=True,
        help="How long (seconds) a dead or shut-down kernel keeps answering status 'dead' "
        "with its reason, instead of 404.",
    )
    max_dead_retained = Int(
        1000, config=True, help="How many dead kernels are remembered at most (oldest go first)."
    )
    heartbeat_interval = Float(
        2.0,
        config=True,
        help="Seconds between heartbeats sent to each local kernel; 0 turns heartbeats off.",
    )
    heartbeat_timeout = Float(
        5.0,
        config=True,
        help="A kernel whose heartbeat stays unanswered this long (seconds) is reported "
        "'unknown' (stopped, hung or unreachable).",
    )
    ready_timeout = Float(
        60.0,
        config=True,
        help="How long (seconds) a started kernel may take to answer kernel_info before "
        "its status says it does not answer.",
    )
    unresponsive_reason = Unicode(
        "the kernel does not answer its heartbeat (silent for {seconds:.0f} s): its process "
        "is stopped, hung or unreachable",
        config=True,
        help="Reason given while the heartbeat is silent ({seconds} is replaced).",
    )

    def __init__(
        self,
        kernel_manager: Any,
        bus: EventBus,
        queue: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_manager = kernel_manager
        self.bus = bus
        self.queue = queue
        self._records: dict[str, KernelRecord] = {}
        self._dead: OrderedDict[str, None] = OrderedDict()
        self._watches: dict[str, LocalKernelWatch | GatewayKernelWatch] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    # -- reading -------------------------------------------------------------------------------
    def model(self, kernel_id: str) -> dict[str, Any] | None:
        """The contract's KernelStatus of a kernel, or None if the server never knew it."""
        record = self.track(kernel_id)
        return None if record is None else self._model(record)

    def models(self) -> list[dict[str, Any]]:
        """The status of every kernel the server runs, then of the dead ones retained."""
        for kernel_id in self._kernel_ids():
            self.track(kernel_id)
        self._prune()
        alive = [r for r in self._records.values() if r.life is not Status.DEAD]
        dead = [self._records[k] for k in reversed(self._dead) if k in self._records]
        return [self._model(r) for r in alive + dead]

    async def wait_for(self, kernel_id: str, value: str, timeout: float) -> dict[str, Any] | None:
        """Answer as soon as ``status`` or ``execution_state`` equals ``value``.

        Returns the model at that moment, or as it is when ``timeout`` seconds passed;
        None if the kernel is unknown. No polling: the record's changes resolve the wait.
        """
        record = self.track(kernel_id)
        if record is None:
            return None
        if record.matches(value) or timeout <= 0:
            return self._model(record)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = (value, future)
        record.waiters.append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return self._model(record)
        finally:
            with contextlib.suppress(ValueError):
                record.waiters.remove(waiter)

    def track(self, kernel_id: str) -> KernelRecord | None:
        """The record of a kernel, creating it for a kernel the server has but we missed."""
        self._prune()
        record = self._records.get(kernel_id)
        if record is not None:
            return record
        kernel = self._get_kernel(kernel_id)
        if kernel is not None:
            record = self._adopt(kernel_id, kernel)
        elif self._start_in_progress(kernel_id):
            # POST /api/kernels with this kernel_id is still starting it: the start
            # event (success or failure) will follow.
            record = self._records[kernel_id] = KernelRecord(kernel_id)
            self._changed(record)
        return record

    # -- lifecycle -----------------------------------------------------------------------------
    def on_lifecycle(self, event: lc.LifecycleEvent) -> None:
        """Follow a lifecycle signal (listener of :class:`KernelLifecycle`)."""
        if self.closed:
            return
        followed = getattr(self.queue, "gateway_followed", None)
        if followed is not None and followed(event):
            return  # a gateway kernel's restart its watch followed already
        kernel_id = event.kernel_id
        if not kernel_id:
            self.log.warning("jupyter_canvas: a kernel failed to start: %s", event.reason)
            return
        kind = event.kind
        if kind == lc.STARTED:
            record = self._records.get(kernel_id)
            if record is None or record.life is Status.DEAD:
                record = self._new_life(kernel_id, event.kernel_name)
            self._attach(record)
        elif kind == lc.START_FAILED:
            record = self._records.get(kernel_id) or self._new_life(kernel_id, event.kernel_name)
            record.name = event.kernel_name or record.name
            ksm = getattr(self.kernel_manager, "kernel_spec_manager", None)
            self._die(record, describe_start_failure(record.name, event.reason, ksm))
        else:
            record = self._records.get(kernel_id)
            if record is None:
                record = self.track(kernel_id)
                if record is None:
                    return
            self._follow(record, event)
        self._changed(record)

    def _follow(self, record: KernelRecord, event: lc.LifecycleEvent) -> None:
        kind = event.kind
        if record.life is Status.DEAD and kind != lc.RESTARTED:
            if kind in (lc.DEAD, lc.SHUTDOWN) and event.reason and not record.reason:
                record.reason = event.reason
            return
        if kind == lc.RESTARTING:
            record.life = Status.RESTARTING
            record.reason = None
            record.reachable()
        elif kind == lc.AUTORESTARTING:
            record.life = Status.AUTORESTARTING
            record.iopub_state = ExecutionState.DEAD
            record.reason = event.reason or "the kernel died and is being restarted"
            record.reachable()
        elif kind == lc.RESTARTED:
            if record.life not in (Status.RESTARTING, Status.AUTORESTARTING):
                # A restart we did not see begin (forced, without a shutdown_reply).
                record.life = Status.RESTARTING
            record.iopub_state = ExecutionState.STARTING
            record.reachable()
            record.dead_since = None
            self._dead.pop(record.kernel_id, None)
            self._attach(record, reopen=True)
        elif kind == lc.SHUTTING_DOWN:
            record.life = Status.TERMINATING
        elif kind == lc.SHUTDOWN:
            if record.life is not Status.TERMINATING:
                # The shutdown_reply on IOPub can be lost with the exiting process (and a
                # forced shutdown sends none): report the step it went through, late.
                record.life = Status.TERMINATING
                self._changed(record)
            self._die(record, event.reason or "the kernel was shut down")
        elif kind == lc.DEAD:
            self._die(record, event.reason or "the kernel died")

    # -- what the watch sees -------------------------------------------------------------------
    def on_watch_message(
        self,
        kernel_id: str,
        msg_type: str,
        parent_type: str | None,
        content: dict[str, Any],
        msg_id: str | None = None,
        parent_username: str | None = None,
    ) -> None:
        """An IOPub message of a kernel from our own watch (or, via ``on_queue_message``,
        from the execution queue's client).

        Both sources see the same messages in the same order; each is applied the first
        time it arrives from either (``msg_id``), so the earliest source wins and a late
        copy never moves the state back. Replies to the queue's own requests are left to
        the queue's copy, which arrives in order with the outputs the queue publishes: a
        client of the events websocket sees ``busy`` before an entry's outputs and ``idle``
        after them.
        """
        record = self._records.get(kernel_id)
        if record is None or record.life is Status.DEAD:
            return
        if parent_username == QUEUE_SESSION_USERNAME and self._queue_has_client(kernel_id):
            return
        if msg_id is not None:
            if msg_id in record.seen_messages:
                return
            record.seen_messages.append(msg_id)
        tracked = self._tracked_type
        if tracked(msg_type) or tracked(parent_type) or record.iopub_state is ExecutionState.BUSY:
            record.last_activity = utcnow()
        if msg_type == "status":
            state = content.get("execution_state")
            if state == "starting":
                # A late copy of the announcement of a process that already answered
                # says nothing new; a real restart comes with its own lifecycle events.
                if record.life is not Status.RUNNING:
                    record.iopub_state = ExecutionState.STARTING
            elif state in ("idle", "busy") and tracked(parent_type):
                record.iopub_state = ExecutionState(state)
            elif record.iopub_state in (ExecutionState.STARTING, ExecutionState.DEAD):
                # Like the server: a reply to an untracked request (kernel_info, comm_info)
                # ends "starting" but does not make the kernel look busy.
                record.iopub_state = ExecutionState.IDLE
            if record.life is Status.STARTING and state != "starting":
                record.life = Status.RUNNING
        elif msg_type == "shutdown_reply":
            restart = bool(content.get("restart"))
            kind = lc.RESTARTING if restart else lc.SHUTTING_DOWN
            self._follow(record, lc.LifecycleEvent(kernel_id, kind, kernel_name=record.name))
        self._changed(record)

    def on_watch_activity(self, kernel_id: str) -> None:
        """An output of a kernel: it is active while it runs code."""
        record = self._records.get(kernel_id)
        if record is not None and record.iopub_state is ExecutionState.BUSY:
            record.last_activity = utcnow()

    def on_queue_message(self, kernel_id: str, msg: dict[str, Any]) -> None:
        """IOPub seen by the execution queue's client of a kernel.

        For a kernel we cannot watch (a gateway's) this is where ``execution_state`` comes
        from. For a watched one it often arrives first: taking it too makes a ``busy``
        event come before the outputs the queue publishes for the same execution.
        """
        header = msg.get("header") or {}
        msg_type = header.get("msg_type", "")
        if msg_type not in LocalKernelWatch.CONTENT_TYPES:
            self.on_watch_activity(kernel_id)
            return
        parent = msg.get("parent_header") or {}
        content = msg.get("content")
        self.on_watch_message(
            kernel_id,
            msg_type,
            parent.get("msg_type"),
            content if isinstance(content, dict) else {},
            header.get("msg_id"),
        )

    def _queue_has_client(self, kernel_id: str) -> bool:
        """Whether the execution queue has a client on the kernel (that sees its IOPub)."""
        kernels = getattr(self.queue, "_kernels", None)
        queue = kernels.get(kernel_id) if isinstance(kernels, dict) else None
        return queue is not None and getattr(queue, "client", None) is not None

    def on_watch_answered(self, kernel_id: str) -> None:
        """The kernel answered our kernel_info_request: its process is up and serving."""
        record = self._records.get(kernel_id)
        if record is None or record.life is Status.DEAD or record.life is Status.TERMINATING:
            return
        if record.life in (Status.STARTING, Status.RESTARTING, Status.AUTORESTARTING):
            record.life = Status.RUNNING
        if record.life is Status.RUNNING:
            record.unanswered = False
            if not record.silent:
                record.reason = None
        if record.iopub_state in (ExecutionState.STARTING, ExecutionState.DEAD):
            record.iopub_state = ExecutionState.IDLE
        self._changed(record)

    def on_watch_probe_timeout(self, kernel_id: str) -> None:
        """The kernel did not answer kernel_info in time."""
        record = self._records.get(kernel_id)
        if record is None or record.life not in (
            Status.STARTING,
            Status.RESTARTING,
            Status.AUTORESTARTING,
        ):
            return
        record.unanswered = True
        record.reason = self._unanswered_reason()
        self._changed(record)

    def _unanswered_reason(self) -> str:
        return (
            f"the kernel process was started but has not answered kernel_info for "
            f"{self.ready_timeout:g} s"
        )

    def on_watch_heartbeat(self, kernel_id: str, alive: bool, silent_for: float) -> None:
        """A heartbeat answer, or silence: a stopped or hung process turns ``unknown``."""
        record = self._records.get(kernel_id)
        if record is None or record.life is Status.DEAD:
            return
        if alive:
            if record.silent:
                record.silent = False
                record.reason = self._unanswered_reason() if record.unanswered else None
                self._changed(record)
            return
        if record.life in (Status.RESTARTING, Status.AUTORESTARTING, Status.TERMINATING):
            return  # the process is being replaced or stopped: silence is expected
        self._spawn(self._on_silence(record, silent_for))

    async def _on_silence(self, record: KernelRecord, silent_for: float) -> None:
        kernel = self._get_kernel(record.kernel_id)
        if kernel is None:
            # Removed from the server without a lifecycle event we could see.
            self._die(record, "the server no longer has this kernel")
            self._changed(record)
            return
        exit_code: int | None = None
        provisioner = getattr(kernel, "provisioner", None)
        if provisioner is not None:
            with contextlib.suppress(Exception):
                exit_code = await provisioner.poll()
        if record.life is Status.DEAD or record.life in (
            Status.RESTARTING,
            Status.AUTORESTARTING,
            Status.TERMINATING,
        ):
            return
        if exit_code is not None:
            restarter = getattr(kernel, "_restarter", None)
            if getattr(kernel, "autorestart", False) and restarter is not None:
                return  # the restarter saw it too and reports restart or dead
            self._die(record, describe_exit(exit_code))
        else:
            record.silent = True
            record.reason = self.unresponsive_reason.format(seconds=silent_for)
        self._changed(record)

    # -- records ----------------------------------------------------------------------------
    def _new_life(self, kernel_id: str, name: str | None) -> KernelRecord:
        """A (re)started kernel: a fresh record, keeping those waiting on the id."""
        old = self._records.get(kernel_id)
        record = KernelRecord(kernel_id, name=name)
        if old is not None:
            record.waiters = old.waiters
            record.published = old.published
            record.name = name or old.name
        self._records[kernel_id] = record
        self._dead.pop(kernel_id, None)
        return record

    def _adopt(self, kernel_id: str, kernel: Any) -> KernelRecord:
        """Start tracking a kernel that was running before we saw it start."""
        record = self._records[kernel_id] = KernelRecord(
            kernel_id, name=getattr(kernel, "kernel_name", None)
        )
        # A gateway kernel's ``ready`` never resolves (its manager starts it over HTTP).
        ready = None if _is_gateway_kernel(kernel) else getattr(kernel, "ready", None)
        if isinstance(ready, (asyncio.Future, concurrent.futures.Future)) and not ready.done():
            # A pending kernel (use_pending_kernels): follow its start. A concurrent future
            # may call back from another thread.
            loop = asyncio.get_running_loop()

            def started(future: Any) -> None:
                loop.call_soon_threadsafe(self._pending_started, kernel_id, future)

            ready.add_done_callback(started)
        else:
            state = getattr(kernel, "execution_state", None)
            if state in ("idle", "busy"):
                record.life = Status.RUNNING
                record.iopub_state = ExecutionState(state)
            last = _last_activity(kernel)
            if last is not None:
                record.last_activity = last
            self._attach(record)
        self._changed(record)
        return record

    def _pending_started(self, kernel_id: str, future: Any) -> None:
        record = self._records.get(kernel_id)
        if record is None or record.life is Status.DEAD:
            return
        error = None if future.cancelled() else future.exception()
        if error is not None:
            ksm = getattr(self.kernel_manager, "kernel_spec_manager", None)
            self._die(record, describe_start_failure(record.name, str(error), ksm))
        else:
            self._attach(record)
        self._changed(record)

    def _attach(self, record: KernelRecord, reopen: bool = False) -> None:
        """Watch a local kernel's IOPub and heartbeat (remote kernels: queue messages)."""
        kernel_id = record.kernel_id
        watch = self._watches.get(kernel_id)
        kernel = self._get_kernel(kernel_id)
        if kernel is None:
            return
        if watch is not None and watch.kernel is not kernel:
            watch.close()
            watch = None
            self._watches.pop(kernel_id, None)
        if watch is not None:
            if reopen:
                self._safely(watch.reopen, kernel_id)
            return
        if _is_gateway_kernel(kernel) and self._attach_gateway(record, kernel):
            return
        if (
            _is_gateway_kernel(kernel)
            or not hasattr(kernel, "connect_iopub")
            or getattr(kernel, "provisioner", None) is None
        ):
            self._remote_started(record, kernel)
            return
        watch = LocalKernelWatch(
            kernel_id,
            kernel,
            self,
            heartbeat_interval=self.heartbeat_interval,
            heartbeat_timeout=self.heartbeat_timeout,
            probe_timeout=self.ready_timeout,
            log=self.log,
        )
        if self._safely(watch.open, kernel_id):
            self._watches[kernel_id] = watch
        else:
            watch.close()
            self._remote_started(record, kernel)

    # -- gateway kernels (--gateway-url) --------------------------------------------------------
    def _attach_gateway(self, record: KernelRecord, kernel: Any) -> bool:
        """Watch a gateway kernel over its websocket, shared with the queue."""
        opener = getattr(self.queue, "gateway_connections", None)
        if opener is None:
            return False
        watch = GatewayKernelWatch(record.kernel_id, kernel, self, opener(), self.log)
        watch.open()
        self._watches[record.kernel_id] = watch
        return True

    def on_watch_unreachable(self, kernel_id: str, reason: str | None) -> None:
        """A gateway kernel cannot be reached (``unknown``, with why), or can again."""
        record = self._records.get(kernel_id)
        if record is None or record.life is Status.DEAD:
            return
        if reason is None:
            if not record.silent:
                return
            record.silent = False
            record.reason = self._unanswered_reason() if record.unanswered else None
        else:
            record.silent = True
            record.reason = reason
        self._changed(record)

    def _remote_started(self, record: KernelRecord, kernel: Any) -> None:
        """A kernel we cannot probe (a gateway's): its start or restart event means it runs."""
        if record.life in (Status.STARTING, Status.RESTARTING, Status.AUTORESTARTING):
            record.life = Status.RUNNING
            record.reason = None
            state = getattr(kernel, "execution_state", None)
            if state in ("idle", "busy", "starting"):
                record.iopub_state = ExecutionState(state)

    def _safely(self, action: Any, kernel_id: str) -> bool:
        try:
            action()
        except Exception:
            self.log.warning(
                "jupyter_canvas: cannot watch kernel %s over ZMQ; its status follows lifecycle "
                "events only",
                kernel_id,
                exc_info=True,
            )
            return False
        return True

    def _detach(self, kernel_id: str) -> None:
        watch = self._watches.pop(kernel_id, None)
        if watch is not None:
            watch.close()

    def _die(self, record: KernelRecord, reason: str) -> None:
        if record.life is not Status.DEAD:
            record.life = Status.DEAD
            record.reason = reason
            record.reachable()
            record.dead_since = asyncio.get_running_loop().time()
        self._detach(record.kernel_id)
        self._dead[record.kernel_id] = None
        self._dead.move_to_end(record.kernel_id)
        self._prune()

    def _prune(self) -> None:
        dead = self._dead
        horizon = asyncio.get_running_loop().time() - self.dead_retention_seconds
        while dead:
            oldest = next(iter(dead))
            record = self._records.get(oldest)
            too_many = len(dead) > self.max_dead_retained
            expired = record is None or (
                record.dead_since is not None and record.dead_since < horizon
            )
            if not (too_many or expired):
                break
            dead.popitem(last=False)
            if record is not None and record.life is Status.DEAD and not record.waiters:
                self._records.pop(oldest, None)

    # -- publishing ----------------------------------------------------------------------------
    def _model(self, record: KernelRecord) -> dict[str, Any]:
        queue = self.queue.kernel_summary(record.kernel_id) if self.queue is not None else None
        last_activity = None
        if record.life is not Status.DEAD:
            last_activity = _last_activity(self._get_kernel(record.kernel_id))
            if last_activity is not None and last_activity < record.last_activity:
                last_activity = record.last_activity
        return record.to_json(queue or {"running": None, "queued": 0}, last_activity)

    def _changed(self, record: KernelRecord) -> None:
        """Publish a ``kernel`` event and wake waiters if the reported state changed."""
        signature = record.signature
        if signature == record.published:
            return
        record.published = signature
        model = self._model(record)
        self.bus.publish({"type": "kernel", "status": model}, kernel_id=record.kernel_id)
        for value, future in list(record.waiters):
            if not future.done() and record.matches(value):
                future.set_result(model)

    # -- the server's kernel manager -----------------------------------------------------------
    def _kernel_ids(self) -> list[str]:
        try:
            return list(self.kernel_manager.list_kernel_ids())
        except Exception:
            return []

    def _get_kernel(self, kernel_id: str) -> Any:
        try:
            if kernel_id not in self.kernel_manager:
                return None
            return self.kernel_manager.get_kernel(kernel_id)
        except Exception:
            return None

    def _start_in_progress(self, kernel_id: str) -> bool:
        # jupyter_client keeps the start task of every kernel it is starting here.
        pending = getattr(self.kernel_manager, "_pending_kernels", None)
        task = pending.get(kernel_id) if isinstance(pending, dict) else None
        return task is not None and not task.done()

    def _tracked_type(self, msg_type: str | None) -> bool:
        if msg_type is None:
            return False
        track = getattr(self.kernel_manager, "track_message_type", None)
        return bool(track(msg_type)) if track is not None else True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- start and stop ------------------------------------------------------------------------
    def start(self) -> None:
        """Track the kernels the server already runs."""
        for kernel_id in self._kernel_ids():
            self.track(kernel_id)

    def close(self) -> None:
        """Close every watch and answer every waiter with the model as it is."""
        self.closed = True
        for kernel_id in list(self._watches):
            self._detach(kernel_id)
        for task in list(self._tasks):
            task.cancel()
        for record in self._records.values():
            for _value, future in record.waiters:
                if not future.done():
                    future.set_result(self._model(record))
