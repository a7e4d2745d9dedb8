"""The entry journal stays within its bound while entries finish, and is exact once closed."""

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from jupyter_canvas.queue.journal import EntryJournal
from jupyter_canvas.queue.models import Entry, EntryState, utcnow


def finished_entry(index: int) -> Entry:
    entry = Entry(kernel_id="k", code=str(index), owner="me")
    entry.state = EntryState.DONE
    entry.finished_at = utcnow() + timedelta(microseconds=index)
    return entry


def finished_rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT id FROM entries WHERE finished_at IS NOT NULL ORDER BY finished_at"
        ).fetchall()
    return [row[0] for row in rows]


async def test_journal_prunes_in_batches_and_exactly_on_close(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = EntryJournal(path, retain_finished=50, retain_seconds=0, max_output_bytes=1000)
    await journal.open()
    entries = [finished_entry(i) for i in range(400)]
    most = 0
    for start in range(0, len(entries), 7):
        for entry in entries[start : start + 7]:
            journal.record(entry)
        await journal.flush()
        most = max(most, len(finished_rows(path)))
    # Never more than the bound plus the slack between two prunes (and one batch).
    assert 50 < most <= 50 + 16 + 7
    await journal.close()
    assert finished_rows(path) == [entry.id for entry in entries[-50:]]


async def test_a_journal_from_before_runs_were_recorded_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    old = finished_entry(1)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE entries (id TEXT PRIMARY KEY, state TEXT NOT NULL, "
            "finished_at TEXT, model TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO entries VALUES (?, 'done', ?, ?)",
            (old.id, "2026-01-01T00:00:00Z", json.dumps({"id": old.id, "state": "done"})),
        )
    journal = EntryJournal(path, retain_finished=50, retain_seconds=0, max_output_bytes=1000)
    await journal.open()
    assert await journal.lookup(old.id) == {"id": old.id, "state": "done", "outputs": []}
    new = finished_entry(2)
    journal.record(new)
    await journal.close()
    assert finished_rows(path)[-1] == new.id
