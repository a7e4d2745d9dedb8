"""Our own eyes on one local kernel: its IOPub, its heartbeat and a readiness probe.

Everything here is callback-driven on the server's IOLoop (ZMQ streams and timers), so
no task polls anything: a message, a heartbeat answer or a timer firing is what moves a
kernel's status on.

- IOPub: a SUB socket of our own, so ``execution_state`` follows the kernel's own word
  whether or not anyone else (JupyterLab, the execution queue) is connected.
- Readiness probe: after a start or restart, one ``kernel_info_request`` on a shell
  socket of our own; its reply is what turns ``starting``/``restarting`` into ``running``.
- Heartbeat: the kernel echoes our ``ping`` on its heartbeat socket from a thread of its
  own, even while it is busy; only a stopped, hung or vanished process stays silent.
  Pings are periodic by nature: one every ``interval`` seconds, each answered within
  ``timeout`` seconds or counted as silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from jupyter_client.session import Session

from ..kernel_messages import decode_headers, fresh_session


class WatchListener(Protocol):
    """What a :class:`LocalKernelWatch` reports to (the tracker)."""

    def on_watch_message(
        self,
        kernel_id: str,
        msg_type: str,
        parent_type: str | None,
        content: dict[str, Any],
        msg_id: str | None = None,
        parent_username: str | None = None,
    ) -> None:
        """An IOPub message of the kernel (content only for status and shutdown_reply)."""

    def on_watch_activity(self, kernel_id: str) -> None:
        """An output or comm message of the kernel (not decoded)."""

    def on_watch_answered(self, kernel_id: str) -> None:
        """The kernel answered the readiness probe."""

    def on_watch_probe_timeout(self, kernel_id: str) -> None:
        """The kernel did not answer the readiness probe in time."""

    def on_watch_heartbeat(self, kernel_id: str, alive: bool, silent_for: float) -> None:
        """A heartbeat answer (``alive``) or a heartbeat left unanswered."""


def _close_stream(stream: Any) -> None:
    if stream is None:
        return
    with contextlib.suppress(Exception):
        stream.on_recv(None)
    with contextlib.suppress(Exception):
        stream.close(linger=0)


class LocalKernelWatch:
    """IOPub subscription, heartbeat and readiness probe on one local kernel."""

    #: Messages whose content the watch decodes (the rest only need their header).
    CONTENT_TYPES = frozenset({"status", "shutdown_reply"})
    #: IOPub topics (first frame) of outputs and comms, as ipykernel sends them; their
    #: messages are not decoded at all. Status messages come as ``kernel.<id>.status``.
    OUTPUT_TOPICS = (b"stream.", b"execute_result", b"display_data", b"error", b"comm-")

    def __init__(
        self,
        kernel_id: str,
        kernel: Any,
        listener: WatchListener,
        *,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        probe_timeout: float,
        log: logging.Logger,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel = kernel
        self.listener = listener
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.probe_timeout = probe_timeout
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._session: Session | None = None
        self._iopub: Any = None
        self._shell: Any = None
        self._hb: Any = None
        self._probe_timer: asyncio.TimerHandle | None = None
        self._hb_timer: asyncio.TimerHandle | None = None
        self._last_beat = self.loop.time()

    # -- opening and closing -------------------------------------------------------------------
    def open(self) -> None:
        """Connect to the kernel's current ports, probe it and start the heartbeat."""
        kernel = self.kernel
        self._session = fresh_session(kernel.session)
        self._iopub = kernel.connect_iopub()
        self._iopub.on_recv(self._on_iopub)
        self.probe()
        self._last_beat = self.loop.time()
        if self.heartbeat_interval > 0:
            self._ping()

    def reopen(self) -> None:
        """After a restart (ports may have changed): connect afresh and probe again."""
        self._close_sockets()
        self.closed = False
        self.open()

    def close(self) -> None:
        """Close every socket and timer."""
        self.closed = True
        self._close_sockets()

    def _close_sockets(self) -> None:
        for timer in (self._probe_timer, self._hb_timer):
            if timer is not None:
                timer.cancel()
        self._probe_timer = self._hb_timer = None
        for stream in (self._iopub, self._shell, self._hb):
            _close_stream(stream)
        self._iopub = self._shell = self._hb = None

    # -- IOPub ---------------------------------------------------------------------------------
    def _on_iopub(self, parts: list[Any]) -> None:
        session = self._session
        if session is None or self.closed:
            return
        if parts and bytes(parts[0][:16]).startswith(self.OUTPUT_TOPICS):
            # Outputs and comm traffic (most of IOPub) only mean "active": skip decoding
            # them, so a kernel printing fast costs us next to nothing.
            self.listener.on_watch_activity(self.kernel_id)
            return
        try:
            _idents, parts = session.feed_identities(parts)
            header, parent = decode_headers(session, parts)
            msg_type = header["msg_type"]
            content: dict[str, Any] = {}
            if msg_type in self.CONTENT_TYPES:
                content = session.unpack(parts[4])
        except Exception:  # a message we cannot read says nothing about the kernel
            return
        self.listener.on_watch_message(
            self.kernel_id,
            msg_type,
            parent.get("msg_type"),
            content,
            header.get("msg_id"),
            parent.get("username"),
        )

    # -- readiness probe -----------------------------------------------------------------------
    def probe(self) -> None:
        """Send one ``kernel_info_request``; its reply means the kernel is up."""
        _close_stream(self._shell)
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        self._shell = self.kernel.connect_shell()
        self._shell.on_recv(self._on_probe_reply)
        self.kernel.session.send(self._shell, "kernel_info_request")
        self._probe_timer = self.loop.call_later(self.probe_timeout, self._on_probe_timeout)

    def _end_probe(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        # Closing from inside the stream's own callback is fine once the callback returns.
        stream, self._shell = self._shell, None
        self.loop.call_soon(_close_stream, stream)

    def _on_probe_reply(self, _parts: list[Any]) -> None:
        if self.closed:
            return
        self._end_probe()
        self.listener.on_watch_answered(self.kernel_id)

    def _on_probe_timeout(self) -> None:
        self._probe_timer = None
        if self.closed:
            return
        self.listener.on_watch_probe_timeout(self.kernel_id)
        self.probe()  # ask again: a slow start may still end well

    # -- heartbeat -----------------------------------------------------------------------------
    def _ping(self) -> None:
        self._hb_timer = None
        if self.closed:
            return
        try:
            if self._hb is None:
                self._hb = self.kernel.connect_hb()
                self._hb.on_recv(self._on_pong)
            self._hb.send(b"ping")
        except Exception:
            self.log.debug("jupyter_canvas: heartbeat of %s could not be sent", self.kernel_id)
            _close_stream(self._hb)
            self._hb = None
        self._hb_timer = self.loop.call_later(self.heartbeat_timeout, self._on_silence)

    def _on_pong(self, _parts: list[Any]) -> None:
        if self.closed:
            return
        if self._hb_timer is not None:
            self._hb_timer.cancel()
        self._last_beat = self.loop.time()
        self.listener.on_watch_heartbeat(self.kernel_id, True, 0.0)
        self._hb_timer = self.loop.call_later(self.heartbeat_interval, self._ping)

    def _on_silence(self) -> None:
        self._hb_timer = None
        if self.closed:
            return
        # A REQ socket whose request went unanswered cannot send again: start afresh.
        _close_stream(self._hb)
        self._hb = None
        silent_for = self.loop.time() - self._last_beat
        self.listener.on_watch_heartbeat(self.kernel_id, False, silent_for)
        self._ping()
