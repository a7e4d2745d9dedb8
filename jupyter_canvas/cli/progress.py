"""Progress of a run on the terminal: a live bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import shutil
import time
from typing import TextIO

#: Symbols of a finished cell's status in the plain lines.
_WIDTH_BAR = 24


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Cells done of total, the running cell's name and the elapsed time.

    On a TTY one line is redrawn in place (call :meth:`tick` now and then for the clock);
    otherwise each cell that ends prints one line, so a log shows what happened.
    """

    def __init__(self, stream: TextIO, total: int, tty: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty() if tty is None else tty
        self.done = 0
        self.running: str | None = None
        self.started = time.monotonic()
        self._drawn = False

    def elapsed(self) -> float:
        """Seconds since the run was sent."""
        return time.monotonic() - self.started

    def cell_started(self, name: str) -> None:
        """A cell began to run."""
        self.running = name
        self.draw()

    def cell_ended(self, name: str, status: str, duration_ms: float | None) -> None:
        """A cell ended (``ok``, ``error``, ``cached``, ``skipped``, ``cancelled``)."""
        self.done += 1
        if self.running == name:
            self.running = None
        if not self.tty:
            took = f"{duration_ms / 1000:.2f} s" if duration_ms is not None else "-"
            width = len(str(self.total))
            self.stream.write(
                f"[{self.done:>{width}}/{self.total}] {status:<9} {took:>9}  {name}\n"
            )
            self.stream.flush()
        else:
            self.draw()

    def tick(self) -> None:
        """Redraw the bar (the clock moved)."""
        if self.tty:
            self.draw()

    def draw(self) -> None:
        """Redraw the bar in place (TTY only)."""
        if not self.tty:
            return
        filled = _WIDTH_BAR * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (_WIDTH_BAR - filled)
        head = f"[{bar}] {self.done}/{self.total} {_clock(self.elapsed())} "
        columns = shutil.get_terminal_size((80, 20)).columns
        name = self.running or ""
        line = (head + name)[: max(columns - 1, 10)]
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Take the bar off the line (before printing something else)."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
