"""The event bus: numbered events, a bounded replay ring and bounded subscribers.

Every event is encoded to JSON once, when it is published; each subscriber receives the
same string, and each websocket client the same bytes: the event's complete websocket frame,
built once on first use (:attr:`PublishedEvent.frame`). Publishing never waits for a
subscriber: it appends to each subscriber's buffer. A subscriber whose live backlog grows
past its bound (a count of events and, optionally, of bytes) is marked overflowed, its
backlog is dropped and its transport is told to drop it (it can reconnect with ``since``).
So a slow or stuck client costs at most its bound in memory and never slows the kernels or
the other clients.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any


def websocket_text_frame(text: str) -> bytes:
    """One complete, final, unmasked and uncompressed websocket text frame (RFC 6455 5.2)."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


@dataclass(frozen=True)
class PublishedEvent:
    """An event as sent: its number, what it concerns, and its JSON text."""

    seq: int
    kernel_id: str | None
    path: str | None
    text: str

    @cached_property
    def frame(self) -> bytes:
        """The event as a websocket text frame, built once for every client that sends it."""
        return websocket_text_frame(self.text)


class Subscription:
    """A filtered view of the bus for one consumer, with a bounded buffer.

    Filters: ``kernel_id`` keeps the events of that kernel. ``path`` keeps the events of
    that notebook's entries, and the events about the kernels that run them (events with
    no path, such as ``kernel`` status events): those kernels are the ones given in
    ``follow_kernels`` when subscribing (the notebook's session) and every kernel an
    entry of the notebook is seen on.
    """

    def __init__(
        self,
        bus: EventBus,
        kernel_id: str | None,
        path: str | None,
        limit: int,
        max_bytes: int | None = None,
        follow_kernels: Iterable[str] = (),
    ):
        self._bus = bus
        self.kernel_id = kernel_id
        self.path = path
        self.limit = limit
        self.max_bytes = max_bytes
        self._kernels_of_path: set[str] = set(follow_kernels)
        self._pending: deque[PublishedEvent] = deque()
        self._live_count = 0
        self._live_bytes = 0
        self._wake = asyncio.Event()
        self.overflowed = False
        self.closed = False
        #: Called once when the subscriber falls too far behind (its transport drops it).
        self.on_overflow: Callable[[Subscription], None] | None = None

    def matches(self, event: PublishedEvent) -> bool:
        """Whether the event passes this subscription's filters."""
        if self.kernel_id is not None and event.kernel_id != self.kernel_id:
            return False
        if self.path is None:
            return True
        if event.path == self.path:
            if event.kernel_id is not None:
                self._kernels_of_path.add(event.kernel_id)
            return True
        return event.path is None and event.kernel_id in self._kernels_of_path

    def push_text(self, text: str) -> None:
        """Queue one encoded event, ignoring the bound (used for the initial replay)."""
        self.push(PublishedEvent(0, None, None, text))

    def push(self, event: PublishedEvent) -> None:
        """Queue one event, ignoring the bound (used for the initial replay)."""
        self._pending.append(event)
        self._wake.set()

    def offer(self, event: PublishedEvent) -> None:
        """Queue a live event if it matches; mark the subscriber overflowed if it is full."""
        if self.closed or self.overflowed or not self.matches(event):
            return
        size = len(event.text)
        too_many = self._live_count >= self.limit
        too_big = self.max_bytes is not None and self._live_bytes + size > self.max_bytes
        if too_many or too_big:
            self.overflowed = True
            self._pending.clear()
            self._live_count = self._live_bytes = 0
            self._wake.set()
            if self.on_overflow is not None:
                self.on_overflow(self)
            return
        self._pending.append(event)
        self._live_count += 1
        self._live_bytes += size
        self._wake.set()

    async def next_batch(self) -> list[str] | None:
        """Like :meth:`next_events`, as the events' JSON texts."""
        events = await self.next_events()
        return None if events is None else [event.text for event in events]

    async def next_events(self) -> list[PublishedEvent] | None:
        """Wait for events and return all that are buffered; None once overflowed or closed."""
        while not self._pending:
            if self.overflowed or self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        if self.overflowed:
            return None
        batch = list(self._pending)
        self._pending.clear()
        self._live_count = self._live_bytes = 0
        return batch

    @property
    def backlog(self) -> int:
        """How many events wait to be sent."""
        return len(self._pending)

    @property
    def backlog_bytes(self) -> int:
        """How many bytes of live events wait to be sent."""
        return self._live_bytes

    def close(self) -> None:
        """Stop receiving events and wake the consumer."""
        self.closed = True
        self._bus._subscribers.discard(self)
        self._pending.clear()
        self._wake.set()


class EventBus:
    """Publishes numbered events to subscribers and keeps the newest for replay."""

    def __init__(self, buffer_size: int = 10_000, buffer_bytes: int = 64 * 1024 * 1024) -> None:
        # Bounded twice: by count and by the size of the encoded events it keeps. An event
        # that was sent to a websocket client also keeps its frame (about as many bytes
        # again), so the ring holds at most about twice ``buffer_bytes``.
        self._ring: deque[PublishedEvent] = deque()
        self._buffer_size = buffer_size
        self._buffer_bytes = buffer_bytes
        self._ring_bytes = 0
        self._seq = 0
        self._subscribers: set[Subscription] = set()

    @property
    def last_seq(self) -> int:
        """The number of the newest event (0 before any)."""
        return self._seq

    @property
    def oldest_seq(self) -> int:
        """The number of the oldest retained event (``last_seq + 1`` when none is)."""
        return self._ring[0].seq if self._ring else self._seq + 1

    def publish(
        self, payload: dict[str, Any], kernel_id: str | None = None, path: str | None = None
    ) -> int:
        """Number, encode, retain and fan out one event; return its ``seq``."""
        self._seq += 1
        body = json.dumps(payload, separators=(",", ":"), default=str)
        text = f'{{"seq":{self._seq},{body[1:]}' if len(body) > 2 else f'{{"seq":{self._seq}}}'
        event = PublishedEvent(self._seq, kernel_id, path, text)
        ring = self._ring
        ring.append(event)
        self._ring_bytes += len(text)
        while len(ring) > self._buffer_size or (
            self._ring_bytes > self._buffer_bytes and len(ring) > 1
        ):
            self._ring_bytes -= len(ring.popleft().text)
        for subscriber in tuple(self._subscribers):
            subscriber.offer(event)
        return self._seq

    def subscribe(
        self,
        kernel_id: str | None = None,
        path: str | None = None,
        since: int | None = None,
        limit: int = 10_000,
        max_bytes: int | None = None,
        follow_kernels: Iterable[str] = (),
    ) -> Subscription:
        """Subscribe; with ``since``, first replay retained events with ``seq > since``.

        When ``since`` is older than what is retained, or newer than anything published
        (a seq from an earlier run of the server), a ``gap`` event comes first. The
        replay is bounded by the ring; ``limit`` and ``max_bytes`` bound the live backlog.
        """
        sub = Subscription(self, kernel_id, path, limit, max_bytes, follow_kernels)
        if since is not None:
            oldest = self.oldest_seq
            if since > self._seq:
                # A seq from an earlier run of the server: everything retained is new.
                since = 0
                sub.push_text(json.dumps({"type": "gap", "oldest": oldest}))
            elif since + 1 < oldest:
                sub.push_text(json.dumps({"type": "gap", "oldest": oldest}))
            for event in self._ring:
                if event.seq > since and sub.matches(event):
                    sub.push(event)
        self._subscribers.add(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are attached."""
        return len(self._subscribers)
