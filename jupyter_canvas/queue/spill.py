"""Where the whole text of an over-long stream output is kept, so it can be fetched later.

Outputs keep only the head and the tail of a stream past the cap; a :class:`SpillFile` per
cut stream receives everything, buffered in memory for a moment and appended to a file in
a worker thread (the event loop never waits on the disk). Files go when their entry is no
longer retained, and all of them when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path

from ..outputs import SpillFactory, SpillWriter
from ..serverdirs import ServerDir


class SpillFile:
    """The whole text of one stream output, appended to a file in the background."""

    def __init__(self, path: Path, limit: int, log: logging.Logger) -> None:
        self.path = path
        self.limit = limit
        self.log = log
        self.size = 0
        self.truncated = False
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def write(self, text: str) -> None:
        """Queue ``text`` to be appended (past the limit, the rest is dropped and said so)."""
        if self.truncated or not text:
            return
        if self.size + len(text) > self.limit:
            text = text[: max(0, self.limit - self.size)]
            text += f"\n[jupyter_canvas: the stream went on past {self.limit} characters]\n"
            self.truncated = True
        self.size += len(text)
        self._pending.append(text)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = "".join(self._pending)
                self._pending.clear()
                await asyncio.to_thread(_append, self.path, batch)
        except OSError as err:
            self.log.warning(
                "jupyter_canvas: could not keep the whole stream in %s: %s", self.path, err
            )
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait until everything written so far is on disk."""
        while self._task is not None:
            await asyncio.shield(self._task)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", errors="surrogatepass") as handle:
        handle.write(text)


class SpillStore:
    """The spill files of all entries, in this server's own directory under ``base``.

    ``base`` (``<runtime dir>/jupyter_canvas/streams``) is shared by every server of the
    user: each server run claims ``base/<run id>/`` (see :mod:`jupyter_canvas.serverdirs`),
    removes the directories of dead servers, never those of live ones, and removes its own
    when it stops.
    """

    def __init__(
        self, base: Path, limit: int, log: logging.Logger | None = None, run_id: str = ""
    ) -> None:
        self.owned = ServerDir(base, run_id or uuid.uuid4().hex)
        self.directory = self.owned.claim()
        self.limit = limit
        self.log = log or logging.getLogger(__name__)
        self._files: dict[tuple[str, int], SpillFile] = {}

    def close(self) -> None:
        """Remove this server's spill files (it is stopping: nothing can fetch them)."""
        self._files.clear()
        self.owned.release()

    def factory(self, entry_id: str) -> SpillFactory:
        """A spill factory for one entry's :class:`~jupyter_canvas.outputs.OutputList`."""

        def open_spill(index: int) -> tuple[SpillWriter, str]:
            spill = SpillFile(self.directory / f"{entry_id}-{index}.txt", self.limit, self.log)
            self._files[(entry_id, index)] = spill
            return spill.write, f"GET api/queue/{entry_id}/streams/{index}"

        return open_spill

    def get(self, entry_id: str, index: int) -> SpillFile | None:
        """The spill of one output of an entry, if that stream was cut."""
        return self._files.get((entry_id, index))

    def forget(self, entry_id: str) -> None:
        """Remove the spill files of an entry that is no longer retained."""
        for key in [key for key in self._files if key[0] == entry_id]:
            spill = self._files.pop(key)
            with contextlib.suppress(RuntimeError):  # no running loop: the server is gone
                asyncio.get_running_loop().create_task(_remove(spill))


async def _remove(spill: SpillFile) -> None:
    await spill.drain()
    await asyncio.to_thread(spill.path.unlink, True)
