"""A debounce with a deadline: run an action once things calm down, but not later than a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from logging import Logger


class Debouncer:
    """Run ``action`` ``delay`` seconds after the last :meth:`touch`, and at the latest
    ``max_delay`` seconds after the first touch that is still waiting.

    So a burst of changes (a cell dragged for ten seconds) causes one run every ``max_delay``
    seconds while it lasts, plus one when it stops. Runs never overlap: a touch during a run
    schedules the next run after it.
    """

    def __init__(
        self,
        action: Callable[[], Awaitable[None]],
        delay: float,
        max_delay: float,
        log: Logger,
    ) -> None:
        self._action = action
        self.delay = delay
        self.max_delay = max(max_delay, delay)
        self.log = log
        self._first_touch: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._touched_while_running = False

    @property
    def pending(self) -> bool:
        """Whether a run is scheduled or under way."""
        return self._timer is not None or self._running is not None

    def touch(self) -> None:
        """Note a change: schedule a run."""
        if self._running is not None:
            self._touched_while_running = True
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first_touch is None:
            self._first_touch = now
        due = min(now + self.delay, self._first_touch + self.max_delay)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._first_touch = None
        self._running = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._action()
        except Exception:
            self.log.exception("canvas: a debounced action failed")
        finally:
            self._running = None
            if self._touched_while_running:
                self._touched_while_running = False
                self.touch()

    async def settle(self) -> None:
        """Cancel the scheduled run and wait for one under way (the caller then runs the
        action itself, e.g. to save at once before a room is freed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._first_touch = None
        running = self._running
        if running is not None:
            await asyncio.shield(running)
        self._touched_while_running = False
        if self._timer is not None:  # the run that just ended scheduled another
            self._timer.cancel()
            self._timer = None
            self._first_touch = None
