"""A bound on the messages jupyter_server keeps for a kernel whose websocket went away.

When the last websocket of a kernel closes, jupyter_server keeps the kernel's channels
open and appends every message that comes (IOPub above all) to an in-memory list, to
replay them if the same session reconnects (``MappingKernelManager.start_buffering``;
``buffer_offline_messages``, on by default). The list has no bound: it is dropped only
when some websocket connects to that kernel again. Before the queue, a kernel without a
frontend was mostly idle; now the queue runs code on it for hours with nobody connected
(a browser tab closed once is enough), and every message it sends stays in that list:
about 3.4 KB of server memory per trivial entry (its busy, execute_input and idle).

:class:`OfflineBufferLimit` caps that list at ``max_bytes`` (the sum of the buffered
messages' frames). Past the cap the buffer is discarded and buffering stops, as if
``buffer_offline_messages`` were off for that disconnection: a frontend that reconnects
gets a fresh connection without a replay. What the queue ran meanwhile is not lost: its
entries, outputs and events are kept by the queue and the notebook, within their own
retention.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from traitlets import Int
from traitlets.config import LoggingConfigurable

#: ``(channel name, message frames)``, as jupyter_server's buffer holds them.
BufferedMessage = tuple[str, list[Any]]


class CappedMessageBuffer(list):  # type: ignore[type-arg]
    """The list jupyter_server appends one kernel's offline messages to, with a byte cap.

    On the first message past the cap it empties itself, ignores what comes next and
    calls ``on_overflow`` soon after (not from inside the socket's receive callback).
    """

    def __init__(self, max_bytes: int, on_overflow: Callable[[CappedMessageBuffer], None]) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.dropped = 0
        self.overflowed = False
        self._on_overflow = on_overflow

    def append(self, item: BufferedMessage) -> None:
        """Keep one message, or drop the whole buffer once it would pass the cap."""
        if self.overflowed:
            self.dropped += 1
            return
        _channel, frames = item
        self.nbytes += sum(len(frame) for frame in frames)
        super().append(item)
        if self.nbytes > self.max_bytes:
            self.overflowed = True
            self.dropped = len(self)
            self.clear()
            asyncio.get_running_loop().call_soon(self._on_overflow, self)


class OfflineBufferLimit(LoggingConfigurable):
    """Caps jupyter_server's buffer of messages for kernels without a websocket."""

    # 8 MiB of frames is some 14,000 small messages (about 16 MB of server memory with
    # their Python objects): plenty to replay a network blip.
    max_bytes = Int(
        8 * 2**20,
        config=True,
        help="Most bytes (sum of message frames) jupyter_server may buffer for one kernel "
        "whose last websocket closed (MappingKernelManager.buffer_offline_messages), to "
        "replay them if that frontend reconnects; the server's memory for them is about "
        "twice this. Past it the buffer is discarded and buffering stops: a frontend "
        "that reconnects gets no replay. Queued code runs on kernels nobody watches, so "
        "without a cap that buffer grows with every message. 0: no cap (jupyter_server's "
        "own behaviour).",
    )

    def __init__(self, kernel_manager: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_manager = kernel_manager
        self._original: Callable[..., Any] | None = None

    @property
    def installed(self) -> bool:
        """Whether the kernel manager's buffering goes through the cap."""
        return self._original is not None

    def install(self) -> bool:
        """Route the kernel manager's ``start_buffering`` through the cap.

        Returns False (and changes nothing) when there is no cap or the kernel manager
        does not buffer the way jupyter_server's ``MappingKernelManager`` does.
        """
        km = self.kernel_manager
        original = getattr(km, "start_buffering", None)
        if self.installed or self.max_bytes <= 0 or original is None:
            return False
        if not isinstance(getattr(km, "_kernel_buffers", None), dict):
            return False
        self._original = original

        def start_buffering(kernel_id: str, session_key: str, channels: dict[str, Any]) -> None:
            original(kernel_id, session_key, channels)
            self._cap(kernel_id, session_key)

        # An instance attribute: only this kernel manager, undone by uninstall().
        km.start_buffering = start_buffering
        return True

    def uninstall(self) -> None:
        """Give the kernel manager its own ``start_buffering`` back."""
        if self._original is None:
            return
        with contextlib.suppress(AttributeError):
            del self.kernel_manager.start_buffering
        self._original = None

    def _cap(self, kernel_id: str, session_key: str) -> None:
        # .get: _kernel_buffers is a defaultdict, and with buffer_offline_messages off
        # start_buffering leaves it alone.
        info = self.kernel_manager._kernel_buffers.get(kernel_id)
        if info is None or info.get("session_key") != session_key:
            return
        buffered = info.get("buffer")
        if not isinstance(buffered, list) or isinstance(buffered, CappedMessageBuffer):
            return

        def overflowed(buffer: CappedMessageBuffer) -> None:
            self._stop(kernel_id, buffer)

        capped = CappedMessageBuffer(self.max_bytes, overflowed)
        # Nothing arrived since start_buffering made the list (same call), but keep it all.
        for item in buffered:
            capped.append(item)
        # jupyter_server's callback looks the list up in this dict for every message.
        info["buffer"] = capped

    def _stop(self, kernel_id: str, buffer: CappedMessageBuffer) -> None:
        info = self.kernel_manager._kernel_buffers.get(kernel_id)
        if info is None or info.get("buffer") is not buffer:
            return  # a websocket reconnected meanwhile, or buffering restarted
        self.log.warning(
            "jupyter_canvas: kernel %s has had no websocket for a while; its buffer of "
            "offline messages passed %d bytes (OfflineBufferLimit.max_bytes): %d messages "
            "discarded, buffering stopped (a frontend that reconnects gets no replay)",
            kernel_id,
            self.max_bytes,
            buffer.dropped,
        )
        with contextlib.suppress(Exception):
            self.kernel_manager.stop_buffering(kernel_id)
