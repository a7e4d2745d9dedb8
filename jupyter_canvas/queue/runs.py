"""Runs: what one ``POST /api/queue`` queued, and the RunReport that answers for it.

A run is given an id when it is queued; every entry of it carries that ``run_id`` (so do the
events about them). :class:`RunRegistry` follows the entries through the queue's transition
hook and answers ``GET /api/queue/runs/<run_id>`` with a RunReport (schema:
``docs/run-report.schema.json``, explained in ``docs/runs.md``).

The registry is bounded like the queue's retention (count and age of finished runs). A
finished run keeps only its report, not its entries; it is also written to the journal, so
it answers after a restart (an entry that was still open then answers ``cancelled``,
"server stopped", as the entries do).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..canvas.layout import heading_level
from .models import Entry, EntryState, isoformat, utcnow

if TYPE_CHECKING:
    from ..canvas.shared_notebook import RawCell
    from .journal import EntryJournal

#: The version of the RunReport's shape (``schema_version``).
SCHEMA_VERSION = 1
#: Longest cell name kept (characters).
NAME_LENGTH = 80
#: The reason a ``skip-execution`` cell ends with (set by the notebook layer).
SKIPPED_PREFIX = "skipped:"


def new_run_id() -> str:
    """A fresh, opaque run id."""
    return uuid.uuid4().hex


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:NAME_LENGTH]
    return ""


def cell_names(cells: list[RawCell]) -> dict[str, str]:
    """Name each code cell (by id): its first line when that is a comment (the author named
    the cell), else the text of the heading it sits under, else its first line."""
    names: dict[str, str] = {}
    heading: str | None = None
    for cell in cells:
        if heading_level(cell.cell_type, cell.source) is not None:
            heading = _first_line(cell.source).lstrip("#").strip() or None
            continue
        if cell.cell_type != "code" or not cell.id:
            continue
        first = _first_line(cell.source)
        if first.startswith("#") and first.lstrip("#").strip():
            names[cell.id] = first.lstrip("#").strip()
        else:
            names[cell.id] = heading or first
    return names


def cell_status(entry: dict[str, Any], cached: bool = False) -> str:
    """A cell's run status from its entry's JSON model."""
    state = entry["state"]
    if cached:
        return "cached"
    if state == EntryState.DONE.value:
        return "ok"
    if state == EntryState.ERROR.value:
        return "error"
    if state == EntryState.CANCELLED.value:
        reason = entry.get("reason") or ""
        return "skipped" if reason.startswith(SKIPPED_PREFIX) else "cancelled"
    if state == EntryState.QUEUED.value:
        return "queued"
    return "running"


@dataclass
class CellPlan:
    """What the run knows of one of its cells beyond its entry."""

    entry_id: str
    cell_id: str | None
    cell_name: str
    cache_key: str | None = None
    cached: bool = False
    #: The raises-exception tag: this cell's error does not make the run an error.
    error_expected: bool = False


@dataclass(eq=False)
class Run:
    """One request's entries, in run order, and what the report says of them."""

    run_id: str
    notebook: str | None
    kernel_id: str | None
    cells: list[CellPlan]
    started_at: datetime = field(default_factory=utcnow)
    #: The entries while the run is live (dropped once its report is final).
    entries: dict[str, Entry] = field(default_factory=dict)
    #: The final report, once every entry is terminal.
    final: dict[str, Any] | None = None
    finished_at: datetime | None = None
    _waiters: set[asyncio.Future[bool]] = field(default_factory=set, repr=False)

    @property
    def finished(self) -> bool:
        """Whether every cell of the run has ended."""
        return self.final is not None

    def finished_waiter(self, timeout: float) -> asyncio.Future[bool]:
        """A future that becomes True when the run ends, or False after ``timeout``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        if self.finished:
            waiter.set_result(True)
            return waiter
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, _resolve, waiter, False)

        def forget(done: asyncio.Future[bool]) -> None:
            timer.cancel()
            self._waiters.discard(done)

        waiter.add_done_callback(forget)
        return waiter

    def report(self) -> dict[str, Any]:
        """The RunReport as it is now."""
        if self.final is not None:
            return self.final
        models = {eid: e.to_json(None, with_outputs=False) for eid, e in self.entries.items()}
        return build_report(self.meta(), models)

    def meta(self) -> dict[str, Any]:
        """What the journal keeps to rebuild the report: everything but the entries."""
        return {
            "run_id": self.run_id,
            "notebook": self.notebook,
            "kernel_id": self.kernel_id,
            "started_at": isoformat(self.started_at),
            "cells": [
                {
                    "entry_id": c.entry_id,
                    "cell_id": c.cell_id,
                    "cell_name": c.cell_name,
                    "cache_key": c.cache_key,
                    "cached": c.cached,
                    "error_expected": c.error_expected,
                }
                for c in self.cells
            ],
        }


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def build_report(meta: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The RunReport of a run from its meta and its entries' JSON models (by entry id).

    An entry missing from ``entries`` (no longer known anywhere) keeps the result ``meta``
    last recorded for it (``meta["results"]``), else counts as cancelled.
    """
    known = {r["entry_id"]: r for r in meta.get("results", [])}
    results: list[dict[str, Any]] = []
    last_end: datetime | None = None
    failed = cancelled = running = False
    for cell in meta["cells"]:
        model = entries.get(cell["entry_id"])
        if model is None:
            result = dict(known.get(cell["entry_id"]) or _lost(cell))
        else:
            result = {
                "cell_id": cell["cell_id"],
                "cell_name": cell["cell_name"],
                "status": cell_status(model, cell.get("cached", False)),
                "cache_key": cell.get("cache_key"),
                "duration_ms": model.get("duration_ms"),
                "error": model.get("error"),
                "reason": model.get("reason"),
                "entry_id": cell["entry_id"],
            }
            finished = _parse_time(model.get("finished_at"))
            if finished is not None and (last_end is None or finished > last_end):
                last_end = finished
        status = result["status"]
        running = running or status in ("queued", "running")
        failed = failed or (status == "error" and not cell.get("error_expected"))
        cancelled = cancelled or status == "cancelled"
        results.append(result)
    if running:
        run_status = "running"
    elif failed:
        run_status = "error"
    elif cancelled:
        run_status = "cancelled"
    else:
        run_status = "ok"
    started = _parse_time(meta["started_at"])
    assert started is not None
    end = utcnow() if running or last_end is None else last_end
    if not running and last_end is None:
        end = _parse_time(meta.get("finished_at")) or end
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": meta["run_id"],
        "notebook": meta["notebook"],
        "kernel_id": meta["kernel_id"],
        "started_at": meta["started_at"],
        "status": run_status,
        "total_duration_ms": round(max((end - started).total_seconds(), 0.0) * 1000, 3),
        "cell_results": results,
    }


def _lost(cell: dict[str, Any]) -> dict[str, Any]:
    return {
        "cell_id": cell["cell_id"],
        "cell_name": cell["cell_name"],
        "status": "cancelled",
        "cache_key": cell.get("cache_key"),
        "duration_ms": None,
        "error": None,
        "reason": "no longer retained",
        "entry_id": cell["entry_id"],
    }


class RunNotFound(LookupError):
    """The run id is unknown or no longer retained."""


class RunRegistry:
    """The runs of this server, bounded; reports built from their entries."""

    def __init__(self, *, retain_finished: int = 1000, retain_seconds: float = 3600.0) -> None:
        self.retain_finished = retain_finished
        self.retain_seconds = retain_seconds
        #: Journals finished runs so they answer after a restart (None: no journal).
        self.journal: EntryJournal | None = None
        self._live: dict[str, Run] = {}
        self._finished: OrderedDict[str, Run] = OrderedDict()
        #: Entry id -> its live run.
        self._by_entry: dict[str, Run] = {}

    def start(
        self,
        entries: list[Entry],
        *,
        notebook: str | None,
        names: dict[str, str] | None = None,
    ) -> Run:
        """Make the run of ``entries`` (one request) and stamp its id on them."""
        run_id = new_run_id()
        plans = []
        for entry in entries:
            entry.run_id = run_id
            name = (names or {}).get(entry.cell_id or "") or _first_line(entry.code)
            plans.append(
                CellPlan(
                    entry_id=entry.id,
                    cell_id=entry.cell_id,
                    cell_name=name,
                    error_expected=entry.error_expected,
                )
            )
        run = Run(
            run_id=run_id,
            notebook=notebook,
            kernel_id=entries[0].kernel_id if entries else None,
            cells=plans,
            entries={e.id: e for e in entries},
        )
        self._live[run_id] = run
        for entry in entries:
            self._by_entry[entry.id] = run
        if self.journal is not None:
            self.journal.record_run(run_id, None, run.meta())
        return run

    def forget(self, run: Run) -> None:
        """Drop a run whose entries were never queued (the request was refused)."""
        self._live.pop(run.run_id, None)
        for entry_id in run.entries:
            self._by_entry.pop(entry_id, None)

    def on_transition(self, entry: Entry, previous: EntryState | None) -> None:
        """The queue's transition hook: a run ends with its last entry."""
        if not entry.terminal:
            return
        run = self._by_entry.get(entry.id)
        if run is None or any(not e.terminal for e in run.entries.values()):
            return
        self._finish(run)

    def _finish(self, run: Run) -> None:
        run.final = run.report()
        run.finished_at = utcnow()
        for entry_id in run.entries:
            self._by_entry.pop(entry_id, None)
        run.entries = {}
        self._live.pop(run.run_id, None)
        self._finished[run.run_id] = run
        waiters, run._waiters = run._waiters, set()
        for waiter in waiters:
            _resolve(waiter, True)
        if self.journal is not None:
            meta = run.meta()
            meta["results"] = run.final["cell_results"]
            meta["finished_at"] = isoformat(run.finished_at)
            self.journal.record_run(run.run_id, meta["finished_at"], meta)
        self._prune()

    def get(self, run_id: str) -> Run:
        """A run this server still holds, or raise :class:`RunNotFound`."""
        self._prune()
        run = self._live.get(run_id) or self._finished.get(run_id)
        if run is None:
            raise RunNotFound(
                f"no run with id {run_id!r}: it never existed or is no longer retained"
            )
        return run

    async def journaled(self, run_id: str) -> dict[str, Any] | None:
        """The report of a run of an earlier server (from the journal), or None."""
        journal = self.journal
        if journal is None:
            return None
        meta = await journal.lookup_run(run_id)
        if meta is None:
            return None
        entries: dict[str, dict[str, Any]] = {}
        if "results" not in meta:
            # Its server stopped before the run ended: its entries say how each ended.
            for cell in meta["cells"]:
                model = await journal.lookup(cell["entry_id"])
                if model is not None:
                    entries[cell["entry_id"]] = model
        return build_report(meta, entries)

    def _prune(self) -> None:
        finished = self._finished
        while len(finished) > self.retain_finished:
            finished.popitem(last=False)
        if self.retain_seconds > 0:
            horizon = utcnow() - timedelta(seconds=self.retain_seconds)
            while finished:
                oldest = next(iter(finished.values()))
                if oldest.finished_at is not None and oldest.finished_at >= horizon:
                    break
                finished.popitem(last=False)
