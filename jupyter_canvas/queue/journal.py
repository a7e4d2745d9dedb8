"""A small SQLite journal of entries, so results outlive the server process.

Every entry is written when it is queued, when it starts and when it finishes, and a running
entry's outputs as they arrive (batched, in a worker thread: the event loop never waits on
the disk). After a restart:

- ``GET /api/queue/<id>`` answers finished entries from the journal;
- entries that were queued or running when the server stopped (even if it was killed)
  answer ``cancelled`` with the reason "server stopped", with the outputs they had.

The journal is bounded like the in-memory retention (count and age), and each entry's
outputs are kept up to a size cap.

Several servers may share one journal (one data directory). Each row records the server
*run* that wrote it (``run``), and each run holds a lock under ``<journal dir>/servers/``
(:mod:`jupyter_canvas.serverdirs`) while it lives: a server closes out and prunes only its
own rows and those of dead runs, never a live server's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..outputs import OutputChange
from ..serverdirs import ServerDir, alive_runs
from .models import Entry, EntryState, isoformat, utcnow

#: Seconds between two journal writes of a running entry's outputs.
OUTPUT_BATCH_SECONDS = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    state TEXT NOT NULL,
    finished_at TEXT,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_finished ON entries (finished_at);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    finished_at TEXT,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished_at);
"""

_OPEN_STATES = (
    EntryState.QUEUED.value,
    EntryState.RUNNING.value,
    EntryState.AWAITING_INPUT.value,
)


class EntryJournal:
    """Entries written to SQLite in the background; read back by id."""

    def __init__(
        self,
        path: Path,
        *,
        retain_finished: int,
        retain_seconds: float,
        max_output_bytes: int,
        log: logging.Logger | None = None,
        run_id: str = "",
    ) -> None:
        self.path = path
        self.retain_finished = retain_finished
        self.retain_seconds = retain_seconds
        self.max_output_bytes = max_output_bytes
        self.log = log or logging.getLogger(__name__)
        # One thread owns the connection: SQLite calls are serialized and off the loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="canvas-journal")
        self._db: sqlite3.Connection | None = None
        # Entries of this run answer from memory while retained; the journal answers only
        # for earlier runs of the server.
        self._run_id = run_id or uuid.uuid4().hex
        self._servers = ServerDir(path.parent / "servers", self._run_id)
        #: Running entries whose outputs are followed, and those changed since last written.
        self._following: dict[str, tuple[Entry, Any]] = {}
        self._outputs_changed: set[str] = set()
        self._outputs_task: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[str, str | None, str]] = {}
        self._flush_task: asyncio.Task[None] | None = None
        # Finished entries written since the last prune: pruning every batch sorted the
        # whole table each time (7% of the server's CPU in a burst of trivial cells), so
        # the table may hold a few more than the bound between two prunes.
        self._finished_since_prune = 0
        self._prune_slack = max(16, retain_finished // 10)

    # -- opening and closing ------------------------------------------------------------------
    async def open(self) -> int:
        """Open (or create) the journal; close out entries a stopped server left open.

        Returns how many open entries were marked cancelled ("server stopped").
        """
        return await self._run(self._open_sync)

    def _open_sync(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._servers.claim()
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
        if "run" not in columns:
            # A journal written before entries recorded their run: those are all from
            # earlier runs, which is what an empty run says.
            db.execute("ALTER TABLE entries ADD COLUMN run TEXT NOT NULL DEFAULT ''")
        self._db = db
        closed = self._close_out_dead_sync()
        self._prune_sync()
        return closed

    def _others_alive(self) -> list[str]:
        """The runs of other servers that still run (their rows are not ours to touch)."""
        return sorted(alive_runs(self._servers.base) - {self._run_id})

    def _close_out_dead_sync(self, entry_id: str | None = None) -> int:
        """Entries left open by servers that are gone: ``cancelled``, "server stopped"."""
        assert self._db is not None
        db = self._db
        keep = [self._run_id, *self._others_alive()]
        query = (
            f"SELECT id, model FROM entries WHERE state IN ({','.join('?' * len(_OPEN_STATES))})"
            f" AND run NOT IN ({','.join('?' * len(keep))})"
        )
        args: list[Any] = [*_OPEN_STATES, *keep]
        if entry_id is not None:
            query += " AND id = ?"
            args.append(entry_id)
        now = isoformat(utcnow())
        closed = 0
        for row_id, text in db.execute(query, args).fetchall():
            model = json.loads(text)
            model.update(
                state=EntryState.CANCELLED.value,
                reason="server stopped",
                position=None,
                finished_at=model.get("finished_at") or now,
            )
            db.execute(
                "UPDATE entries SET state=?, finished_at=?, model=? WHERE id=?",
                (model["state"], model["finished_at"], json.dumps(model), row_id),
            )
            closed += 1
        db.commit()
        return closed

    async def close(self) -> None:
        """Write what is pending and close the database."""
        task, self._flush_task = self._flush_task, None
        if task is not None:
            task.cancel()
        outputs_task, self._outputs_task = self._outputs_task, None
        if outputs_task is not None:
            outputs_task.cancel()
        self._stage_changed_outputs()
        for entry, listener in self._following.values():
            entry.outputs.remove_listener(listener)
        self._following.clear()
        await self.flush()
        if self._db is not None:
            await self._run(self._prune_sync)
            await self._run(self._db.close)
            self._db = None
        self._servers.release()
        self._executor.shutdown(wait=False)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- writing -----------------------------------------------------------------------------------
    def record(self, entry: Entry, previous: EntryState | None = None) -> None:
        """Remember the entry's current state (written within a moment)."""
        if self._db is None:
            return
        if entry.terminal:
            self._unfollow(entry.id)
        elif entry.state is not EntryState.QUEUED and entry.id not in self._following:
            self._follow(entry)
        self._stage(entry)

    def _stage(self, entry: Entry) -> None:
        model = entry.to_json(None, with_outputs=True)
        model["outputs"] = self._capped_outputs(model["outputs"])
        self._pending[entry.id] = (entry.state.value, model["finished_at"], json.dumps(model))
        if self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_soon())

    # -- a running entry's outputs, as they arrive ------------------------------------------------
    def _follow(self, entry: Entry) -> None:
        def changed(change: OutputChange) -> None:
            self._outputs_changed.add(entry.id)
            if self._outputs_task is None:
                self._outputs_task = asyncio.get_running_loop().create_task(
                    self._write_outputs_soon()
                )

        entry.outputs.add_listener(changed)
        self._following[entry.id] = (entry, changed)

    def _unfollow(self, entry_id: str) -> None:
        followed = self._following.pop(entry_id, None)
        self._outputs_changed.discard(entry_id)
        if followed is not None:
            followed[0].outputs.remove_listener(followed[1])

    async def _write_outputs_soon(self) -> None:
        await asyncio.sleep(OUTPUT_BATCH_SECONDS)
        self._outputs_task = None
        self._stage_changed_outputs()

    def _stage_changed_outputs(self) -> None:
        changed, self._outputs_changed = self._outputs_changed, set()
        for entry_id in changed:
            followed = self._following.get(entry_id)
            if followed is not None and not followed[0].terminal:
                self._stage(followed[0])

    def _capped_outputs(self, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        size = 0
        for output in outputs:
            size += len(json.dumps(output))
            if size > self.max_output_bytes:
                kept.append(
                    {
                        "output_type": "stream",
                        "name": "stderr",
                        "text": f"[jupyter_canvas: {len(outputs) - len(kept)} more output(s) "
                        f"were not journaled (over {self.max_output_bytes} bytes)]\n",
                    }
                )
                break
            kept.append(output)
        return kept

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.1)  # batch what happens together
        self._flush_task = None
        await self.flush()

    async def flush(self) -> None:
        """Write every pending record now."""
        while self._pending and self._db is not None:
            batch = list(self._pending.items())
            self._pending.clear()
            try:
                await self._run(self._write_sync, batch)
            except sqlite3.Error as err:
                self.log.warning("jupyter_canvas: could not write the journal: %s", err)
                return

    def _write_sync(self, batch: list[tuple[str, tuple[str, str | None, str]]]) -> None:
        assert self._db is not None
        self._db.executemany(
            "INSERT INTO entries (id, run, state, finished_at, model) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
            "finished_at=excluded.finished_at, model=excluded.model",
            [
                (entry_id, self._run_id, state, finished, text)
                for entry_id, (state, finished, text) in batch
            ],
        )
        self._db.commit()
        # Bounded like the in-memory retention (within the slack): the journal answers
        # only for earlier runs, and opening and closing it prune it exactly, so an entry
        # the server no longer retains never answers from here.
        self._finished_since_prune += sum(1 for _id, (_s, finished, _m) in batch if finished)
        if self._finished_since_prune > self._prune_slack:
            self._prune_sync()

    def _prune_sync(self) -> None:
        assert self._db is not None
        db = self._db
        self._finished_since_prune = 0
        # Rows of other live servers are theirs to prune: ours and dead runs' are pruned.
        others = self._others_alive()
        mine = f"run NOT IN ({','.join('?' * len(others))})" if others else "1"
        # The newest retain_finished finished entries stay: everything finished before the
        # oldest of them goes (a walk of the finished_at index, not a sort of the table).
        db.execute(
            f"DELETE FROM entries WHERE {mine} AND finished_at IS NOT NULL AND finished_at < ("
            f"SELECT finished_at FROM entries WHERE {mine} AND finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT 1 OFFSET ?)",
            (*others, *others, max(self.retain_finished - 1, 0)),
        )
        if self.retain_finished <= 0:
            db.execute(f"DELETE FROM entries WHERE {mine} AND finished_at IS NOT NULL", others)
        if self.retain_seconds > 0:
            horizon = datetime.now(timezone.utc) - timedelta(seconds=self.retain_seconds)
            db.execute(
                f"DELETE FROM entries WHERE {mine} AND finished_at IS NOT NULL AND finished_at < ?",
                (*others, isoformat(horizon)),
            )
        self._prune_runs_sync(mine, others)
        db.commit()

    # -- runs (queue/runs.py): what each run was, kept and pruned like entries ------------------
    def record_run(self, run_id: str, finished_at: str | None, model: dict[str, Any]) -> None:
        """Remember a run (its cells and, once finished, its results), written in the
        background."""
        if self._db is None:
            return
        text = json.dumps(model)
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self._executor, self._write_run_sync, run_id, finished_at, text)
        task.add_done_callback(self._log_write_error)

    def _log_write_error(self, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            self.log.warning("jupyter_canvas: could not journal a run: %s", done.exception())

    def _write_run_sync(self, run_id: str, finished_at: str | None, text: str) -> None:
        if self._db is None:
            return
        self._db.execute(
            "INSERT INTO runs (id, run, finished_at, model) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET finished_at=excluded.finished_at, model=excluded.model",
            (run_id, self._run_id, finished_at, text),
        )
        self._db.commit()

    def _prune_runs_sync(self, mine: str, others: list[str]) -> None:
        assert self._db is not None
        db = self._db
        db.execute(
            f"DELETE FROM runs WHERE {mine} AND finished_at IS NOT NULL AND finished_at < ("
            f"SELECT finished_at FROM runs WHERE {mine} AND finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT 1 OFFSET ?)",
            (*others, *others, max(self.retain_finished - 1, 0)),
        )
        if self.retain_seconds > 0:
            horizon = datetime.now(timezone.utc) - timedelta(seconds=self.retain_seconds)
            db.execute(
                f"DELETE FROM runs WHERE {mine} AND finished_at IS NOT NULL AND finished_at < ?",
                (*others, isoformat(horizon)),
            )

    async def lookup_run(self, run_id: str) -> dict[str, Any] | None:
        """What was journaled of a run of an earlier server run, or None."""
        if self._db is None:
            return None
        db = self._db

        def read() -> str | None:
            row = db.execute(
                "SELECT model FROM runs WHERE id=? AND run != ?", (run_id, self._run_id)
            ).fetchone()
            return None if row is None else str(row[0])

        text = await self._run(read)
        return None if text is None else json.loads(text)  # type: ignore[no-any-return]

    # -- reading -----------------------------------------------------------------------------------
    async def lookup(self, entry_id: str) -> dict[str, Any] | None:
        """The journaled model of an entry of an earlier run of the server, or None."""
        if self._db is None:
            return None
        return await self._run(self._lookup_sync, entry_id)  # type: ignore[no-any-return]

    def _lookup_sync(self, entry_id: str) -> dict[str, Any] | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT model, state FROM entries WHERE id=? AND run != ?", (entry_id, self._run_id)
        ).fetchone()
        if row is None:
            return None
        if row[1] in _OPEN_STATES and self._close_out_dead_sync(entry_id):
            # Its server died while this one runs: it answers as any other stopped entry.
            row = self._db.execute("SELECT model FROM entries WHERE id=?", (entry_id,)).fetchone()
        model: dict[str, Any] = json.loads(row[0])
        if self.retain_seconds > 0 and model.get("finished_at"):
            finished = datetime.fromisoformat(model["finished_at"].replace("Z", "+00:00"))
            if utcnow() - finished > timedelta(seconds=self.retain_seconds):
                return None
        model.setdefault("outputs", [])
        return model

    async def count(self) -> int:
        """How many entries the journal holds (for tests and diagnostics)."""
        await self.flush()
        if self._db is None:
            return 0
        db = self._db
        return await self._run(lambda: db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])  # type: ignore[no-any-return]
