"""Typed kernel status: the "KernelStatus" model of the public contract.

``status`` is the life of the kernel process; ``execution_state`` is what its IOPub says
(or ``unknown``/``dead`` when the process cannot say anything); ``reason`` says, in
words, why a kernel is dead, failed to start or cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from ..queue.models import isoformat, utcnow


class KernelProcessStatus(str, Enum):
    """The life of a kernel process."""

    STARTING = "starting"  # launched, not answering yet
    RUNNING = "running"
    RESTARTING = "restarting"  # a restart was asked for
    AUTORESTARTING = "autorestarting"  # the process died; the restarter brings it back
    TERMINATING = "terminating"  # a shutdown was asked for
    DEAD = "dead"  # shut down, died, or failed to start: ``reason`` says which
    UNKNOWN = "unknown"  # the process does not answer its heartbeat


class ExecutionState(str, Enum):
    """What the kernel's IOPub says (``dead``/``unknown`` when it cannot say)."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"
    UNKNOWN = "unknown"


#: Every value ``?wait_for=`` accepts.
WAITABLE_VALUES = frozenset(s.value for s in KernelProcessStatus) | frozenset(
    s.value for s in ExecutionState
)

#: Statuses in which the process is being replaced or stopped: no heartbeat verdict then.
TRANSITIONAL = frozenset(
    {
        KernelProcessStatus.RESTARTING,
        KernelProcessStatus.AUTORESTARTING,
        KernelProcessStatus.TERMINATING,
    }
)


@dataclass(eq=False)
class KernelRecord:
    """Everything the tracker knows about one kernel, alive or recently dead."""

    kernel_id: str
    name: str | None = None
    #: The life of the process as the lifecycle signals tell it.
    life: KernelProcessStatus = KernelProcessStatus.STARTING
    #: The state the kernel's IOPub last announced (``starting`` until it says anything).
    iopub_state: ExecutionState = ExecutionState.STARTING
    reason: str | None = None
    #: The heartbeat stopped answering while the process is still there.
    silent: bool = False
    #: The process was started but has not answered ``kernel_info`` in time.
    unanswered: bool = False
    last_activity: datetime = field(default_factory=utcnow)
    #: When the kernel became dead (for retention), monotonic seconds.
    dead_since: float | None = None
    #: ``(value, future)`` of every ``wait_for`` request on this kernel.
    waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = field(default_factory=list)
    #: Ids of the latest status messages applied (the same message can come twice).
    seen_messages: deque[str] = field(default_factory=lambda: deque(maxlen=32))
    #: ``(status, execution_state, reason)`` as last published on the bus.
    published: tuple[str, str, str | None] | None = None

    @property
    def unresponsive(self) -> bool:
        """Whether the process cannot be reached (heartbeat silent or no answer)."""
        return self.silent or self.unanswered

    def reachable(self) -> None:
        """Forget any unreachability (a new process, or a dead one)."""
        self.silent = self.unanswered = False

    @property
    def status(self) -> KernelProcessStatus:
        """The contract's ``status``: the life, or ``unknown`` while the heartbeat is silent."""
        if self.unresponsive and self.life not in TRANSITIONAL:
            if self.life is not KernelProcessStatus.DEAD:
                return KernelProcessStatus.UNKNOWN
        return self.life

    @property
    def execution_state(self) -> ExecutionState:
        """The contract's ``execution_state``: IOPub's word while the process can speak."""
        status = self.status
        if status is KernelProcessStatus.DEAD:
            return ExecutionState.DEAD
        if status is KernelProcessStatus.UNKNOWN:
            return ExecutionState.UNKNOWN
        return self.iopub_state

    @property
    def signature(self) -> tuple[str, str, str | None]:
        """What a ``kernel`` event reports a change of."""
        return (self.status.value, self.execution_state.value, self.reason)

    def matches(self, value: str) -> bool:
        """Whether ``status`` or ``execution_state`` equals ``value``."""
        return value in (self.status.value, self.execution_state.value)

    def to_json(
        self, queue: dict[str, Any], last_activity: datetime | None = None
    ) -> dict[str, Any]:
        """Return the contract's JSON model of the kernel status."""
        return {
            "kernel_id": self.kernel_id,
            "name": self.name,
            "status": self.status.value,
            "execution_state": self.execution_state.value,
            "reason": self.reason,
            "last_activity": isoformat(last_activity or self.last_activity),
            "queue": queue,
        }
