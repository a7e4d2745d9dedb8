"""The event bus: numbered events, a bounded replay ring and bounded subscribers.

Every event is encoded to JSON once, when it is published; each subscriber receives the
same string. A subscriber has a bounded buffer: one that falls further behind than that
is marked overflowed and dropped by its transport (it can reconnect with ``since``).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PublishedEvent:
    """An event as sent: its number, what it concerns, and its JSON text."""

    seq: int
    kernel_id: str | None
    path: str | None
    text: str


class Subscription:
    """A filtered view of the bus for one consumer, with a bounded buffer."""

    def __init__(self, bus: EventBus, kernel_id: str | None, path: str | None, limit: int):
        self._bus = bus
        self.kernel_id = kernel_id
        self.path = path
        self.limit = limit
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def matches(self, event: PublishedEvent) -> bool:
        """Whether the event passes this subscription's filters."""
        if self.kernel_id is not None and event.kernel_id != self.kernel_id:
            return False
        return self.path is None or event.path == self.path

    def push_text(self, text: str) -> None:
        """Queue one encoded event, ignoring the bound (used for the initial replay)."""
        self._pending.append(text)
        self._wake.set()

    def offer(self, event: PublishedEvent) -> None:
        """Queue a live event if it matches; mark the subscriber overflowed if it is full."""
        if self.closed or self.overflowed or not self.matches(event):
            return
        if len(self._pending) >= self.limit:
            self.overflowed = True
            self._pending.clear()
        else:
            self._pending.append(event.text)
        self._wake.set()

    async def next_batch(self) -> list[str] | None:
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
        return batch

    @property
    def backlog(self) -> int:
        """How many events wait to be sent."""
        return len(self._pending)

    def close(self) -> None:
        """Stop receiving events and wake the consumer."""
        self.closed = True
        self._bus._subscribers.discard(self)
        self._wake.set()


class EventBus:
    """Publishes numbered events to subscribers and keeps the newest for replay."""

    def __init__(self, buffer_size: int = 10_000) -> None:
        self._ring: deque[PublishedEvent] = deque(maxlen=buffer_size)
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
        self._ring.append(event)
        for subscriber in tuple(self._subscribers):
            subscriber.offer(event)
        return self._seq

    def subscribe(
        self,
        kernel_id: str | None = None,
        path: str | None = None,
        since: int | None = None,
        limit: int = 10_000,
    ) -> Subscription:
        """Subscribe; with ``since``, first replay retained events with ``seq > since``.

        When ``since`` is older than what is retained a ``gap`` event comes first.
        """
        sub = Subscription(self, kernel_id, path, limit)
        if since is not None:
            oldest = self.oldest_seq
            if since + 1 < oldest:
                sub.push_text(json.dumps({"type": "gap", "oldest": oldest}))
            for event in self._ring:
                if event.seq > since and sub.matches(event):
                    sub.push_text(event.text)
        self._subscribers.add(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are attached."""
        return len(self._subscribers)
