"""What one server keeps on disk is its own: a directory per server run, held with a lock.

The runtime and data directories are shared by every server a user starts. So that a second
server never deletes or prunes the first one's files, each server *run* (one process, one
random id) claims ``<base>/<run id>/`` and holds an exclusive ``flock`` on its ``.owner``
file for as long as it lives. The kernel releases the lock when the process ends, however
it ends (``kill -9``, the OOM killer), so another server can tell a live owner from a dead
one without trusting process ids: a directory whose lock can be taken belongs to a dead
server and is removed (its leftovers are cleaned up).

Used for the stream spill files (``<runtime dir>/jupyter_canvas/streams/<run>/``) and to
mark which runs of the journal (``<journal dir>/servers/<run>/``) are alive.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: fall back to process ids
    fcntl = None  # type: ignore[assignment]

OWNER_FILE = ".owner"
#: A directory without an owner file is being created; it is left alone this long.
GRACE_SECONDS = 60.0


class ServerDir:
    """A directory of this server run, under a base shared with other servers."""

    def __init__(self, base: Path, run_id: str) -> None:
        self.base = base
        self.run_id = run_id
        self.path = base / run_id
        self._handle: Any = None

    def claim(self) -> Path:
        """Create the directory, take its lock, and remove those of dead servers."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / OWNER_FILE).open("a+")
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        self.sweep()
        return self.path

    def sweep(self) -> list[str]:
        """Remove the directories of dead servers under the base; return their run ids."""
        removed: list[str] = []
        try:
            children = list(self.base.iterdir())
        except OSError:
            return removed
        for child in children:
            if child.name == self.run_id or not child.is_dir():
                continue
            if not alive(child):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
        return removed

    def release(self, *, remove: bool = True) -> None:
        """Let go of the lock (and remove the directory: nothing refers to it any more)."""
        handle, self._handle = self._handle, None
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
        if handle is not None:
            handle.close()


def alive(directory: Path) -> bool:
    """Whether the server run that owns ``directory`` still runs."""
    owner = directory / OWNER_FILE
    try:
        handle = owner.open("r")
    except FileNotFoundError:
        # Not claimed yet (being created) or not ours: only old ones count as dead.
        try:
            return time.time() - directory.stat().st_mtime < GRACE_SECONDS
        except OSError:
            return False
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                return True  # cannot tell: keep it
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
        text = handle.read().strip()
    return text.isdigit() and pid_alive(int(text))


def alive_runs(base: Path) -> set[str]:
    """The run ids with a live owner under ``base``."""
    try:
        children = list(base.iterdir())
    except OSError:
        return set()
    return {child.name for child in children if child.is_dir() and alive(child)}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
