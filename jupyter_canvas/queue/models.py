"""Typed entries of the execution queue: the "Entry" of the public contract."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..outputs import OutputList


class EntryState(str, Enum):
    """The life of one queued piece of code."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_INPUT = "awaiting_input"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether nothing can happen to an entry in this state any more."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({EntryState.DONE, EntryState.ERROR, EntryState.CANCELLED})


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def isoformat(value: datetime | None) -> str | None:
    """Format a timestamp as the contract writes it (ISO 8601 with a ``Z``)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


@dataclass(eq=False)
class Entry:
    """One queued piece of code and everything that happened to it.

    ``code`` is the source that was (or will be) executed; for a notebook cell queued
    without code it is filled from the notebook when the entry starts running.
    """

    kernel_id: str
    code: str
    owner: str
    path: str | None = None
    cell_id: str | None = None
    stop_on_error: bool = True
    #: Whether ``input()`` may ask (False: it raises ``StdinNotImplementedError`` at once).
    allow_stdin: bool = True
    #: Seconds the execution may run before it is interrupted and ends ``error`` (None: no limit).
    timeout: float | None = None
    #: True when the source must be read from the notebook at start time.
    source_from_notebook: bool = False
    #: The cell is tagged ``raises-exception``: its error does not stop the queue.
    error_expected: bool = False
    #: The notebook's file id (jupyter_server_fileid), to follow the notebook when it moves.
    file_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: The run (one ``POST /api/queue``) the entry belongs to (see ``queue/runs.py``).
    run_id: str | None = None
    state: EntryState = EntryState.QUEUED
    execution_count: int | None = None
    outputs: OutputList = field(default_factory=OutputList)
    error: dict[str, Any] | None = None
    reason: str | None = None
    #: The owner's display name (the identity provider's), for people to read.
    owner_name: str | None = None
    #: The entry whose failure cancelled this one (stop on error), if that is why.
    caused_by: str | None = None
    #: The pending ``input()`` request: ``{"prompt": str, "password": bool}``.
    input_request: dict[str, Any] | None = None
    queued_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Set when someone asked to cancel the entry while it ran (or it ran out of time).
    cancel_reason: str | None = None
    #: The interruption was a time limit: the entry ends ``error``, not ``cancelled``.
    timed_out: bool = False
    #: The msg_id of the execute_request sent for this entry.
    msg_id: str | None = None
    #: JupyterLab's recordTiming keys (``iopub.status.busy``, ``iopub.execute_input``,
    #: ``shell.execute_reply.started``, ``shell.execute_reply``, ``iopub.status.idle``),
    #: each the date the kernel wrote in that message, as it wrote it.
    timing: dict[str, str] = field(default_factory=dict)
    #: Futures of the long polls waiting for the end (made on demand).
    _waiters: set[asyncio.Future[bool]] | None = field(default=None, repr=False)

    @property
    def terminal(self) -> bool:
        """Whether the entry reached done, error or cancelled."""
        return self.state.terminal

    @property
    def duration_ms(self) -> float | None:
        """Milliseconds between start and finish, once both happened."""
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000, 3)

    async def wait_finished(self, timeout: float) -> bool:
        """Wait until the entry is terminal (True) or ``timeout`` seconds passed (False)."""
        return await self.finished_waiter(timeout)

    def finished_waiter(self, timeout: float) -> asyncio.Future[bool]:
        """A future that becomes True when the entry ends, or False after ``timeout``.

        A plain future, resolved by :meth:`mark_finished` itself: whoever awaits it runs in
        the very next turn of the event loop (an ``asyncio.Event`` behind ``wait_for`` took
        three more). Cancelling it stops the wait.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        if self.terminal:
            waiter.set_result(True)
            return waiter
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = set()
        waiters.add(waiter)
        timer = loop.call_later(timeout, _resolve, waiter, False)

        def forget(done: asyncio.Future[bool]) -> None:
            timer.cancel()
            waiters.discard(done)

        waiter.add_done_callback(forget)
        return waiter

    def mark_finished(self) -> None:
        """Wake everyone waiting on this entry (it just became terminal)."""
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            _resolve(waiter, True)

    def to_json(self, position: int | None = None, with_outputs: bool = True) -> dict[str, Any]:
        """Return the contract's JSON model of the entry."""
        model: dict[str, Any] = {
            "id": self.id,
            "run_id": self.run_id,
            "kernel_id": self.kernel_id,
            "path": self.path,
            "cell_id": self.cell_id,
            "code": self.code,
            "state": self.state.value,
            "position": position if self.state is EntryState.QUEUED else None,
            "execution_count": self.execution_count,
            "error": self.error,
            "reason": self.reason,
            "owner": self.owner,
            "owner_name": self.owner_name or self.owner,
            "caused_by": self.caused_by,
            "queued_at": isoformat(self.queued_at),
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(self.finished_at),
            "duration_ms": self.duration_ms,
            "stop_on_error": self.stop_on_error,
            "allow_stdin": self.allow_stdin,
            "timeout": self.timeout,
        }
        if self.state is EntryState.AWAITING_INPUT and self.input_request is not None:
            model["input_request"] = self.input_request
        if with_outputs:
            model["outputs"] = self.outputs.to_json()
        return model
