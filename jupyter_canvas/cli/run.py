"""One run of a notebook through a server's queue, from ``POST /api/queue`` to its report.

The events websocket is opened first (filtered by the notebook's path), so nothing of the
run is missed; its events drive the progress. A long poll of the run's report
(``GET /api/queue/runs/<run_id>?wait=``) says when it has ended, even if events were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from tornado.websocket import WebSocketClientConnection

from .progress import Progress
from .server import CommandError, ServerClient, api_path

#: Exit statuses: the run ended ok; it failed (or was cancelled); the command was misused.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
#: Ctrl-C (the shell's convention: 128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Seconds to keep reading events for outputs once the report says the run ended.
_DRAIN_SECONDS = 2.0


@dataclass
class RunOptions:
    """What ``jupyter canvas run`` was asked to do."""

    path: str
    select: Any = "all"
    cell_ids: list[str] | None = None
    cache: bool = False
    timeout: float | None = None
    allow_stdin: bool = False
    stream: bool = False
    json: bool = False


@dataclass
class _Followed:
    """What the command knows of the run's cells (by entry id)."""

    names: dict[str, str] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)


def parse_select(raw: str) -> tuple[Any, list[str] | None]:
    """``all``, ``from:<id>``, ``group:<id>`` or ``<id>,<id>,…`` into the request's fields."""
    raw = raw.strip()
    if raw == "all":
        return "all", None
    for kind in ("from", "group"):
        if raw.startswith(kind + ":") and raw[len(kind) + 1 :]:
            return {kind: raw[len(kind) + 1 :]}, None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not ids:
        raise CommandError(
            f"--select {raw!r}: give all, from:<cell id>, group:<cell id> or cell ids a,b,c"
        )
    return None, ids


def request_body(options: RunOptions) -> dict[str, Any]:
    """The ``POST /api/queue`` body of the run."""
    body: dict[str, Any] = {"path": options.path, "allow_stdin": options.allow_stdin}
    if options.cell_ids is not None:
        body["cell_ids"] = options.cell_ids
    else:
        body["select"] = options.select
    if options.timeout is not None:
        body["timeout"] = options.timeout
    if options.cache:
        body["cache"] = True
    return body


class NotebookRun:
    """Runs one notebook on one server and reports on it."""

    def __init__(
        self,
        client: ServerClient,
        options: RunOptions,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.run_id: str | None = None
        self.entry_ids: list[str] = []
        self.progress: Progress | None = None
        self._followed = _Followed()

    async def execute(self) -> int:
        """Queue the notebook, follow it to its end, print the outcome; the exit status."""
        options = self.options
        events = await self.client.events(path=posixpath.normpath(options.path))
        try:
            status, answer = await self.client.call("POST", "api/queue", request_body(options))
            self._refused(status, answer)
            self.run_id = answer["run_id"]
            self.entry_ids = [e["id"] for e in answer["entries"]]
            report = await self._report(wait=0)
            for result in report["cell_results"]:
                self._followed.names[result.get("entry_id", "")] = result["cell_name"]
            self.progress = Progress(self.err, len(self.entry_ids))
            self.progress.draw()
            reader = asyncio.create_task(self._follow(events))
            ticker = asyncio.create_task(self._tick())
            try:
                report = await self._until_ended()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), _DRAIN_SECONDS)
            finally:
                for task in (reader, ticker):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        finally:
            events.close()
        self._catch_up(report)
        return self._finish(report)

    def _refused(self, status: int, answer: Any) -> None:
        if status == 202:
            return
        message = answer.get("message") if isinstance(answer, dict) else str(answer)
        if status in (401, 403):
            raise CommandError(f"the server refused the token ({status}): {message}")
        if status == 404:
            raise CommandError(f"{self.options.path}: {message}")
        raise CommandError(f"the server refused the run ({status}): {message}")

    async def _report(self, wait: float) -> dict[str, Any]:
        assert self.run_id is not None
        path = f"api/queue/runs/{api_path(self.run_id)}"
        status, report = await self.client.call("GET", path + (f"?wait={wait:g}" if wait else ""))
        if status != 200:
            raise CommandError(
                f"the server did not answer the run's report ({status}): {report}", 1
            )
        return report  # type: ignore[no-any-return]

    async def _until_ended(self) -> dict[str, Any]:
        while True:
            report = await self._report(wait=30)
            if report["status"] != "running":
                return report

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self.progress is not None:
                self.progress.tick()

    async def _follow(self, events: WebSocketClientConnection) -> None:
        """Read the run's events: progress and, with ``--stream``, its outputs."""
        mine = set(self.entry_ids)
        while self._followed.ended != mine:
            text = await events.read_message()
            if text is None:
                return  # closed: the report's long poll still says when the run ends
            event = json.loads(text)
            if event.get("type") == "entry":
                self._on_entry(event["entry"])
            elif event.get("type") == "output" and event.get("run_id") == self.run_id:
                self._on_output(event["output"])

    def _on_entry(self, entry: dict[str, Any]) -> None:
        if entry.get("run_id") != self.run_id or entry["id"] in self._followed.ended:
            return
        progress = self.progress
        assert progress is not None
        name = self._followed.names.get(entry["id"], entry.get("cell_id") or "")
        state = entry["state"]
        if state in ("running", "awaiting_input"):
            progress.cell_started(name)
        elif state in ("done", "error", "cancelled"):
            self._followed.ended.add(entry["id"])
            status = {"done": "ok"}.get(state, state)
            if state == "cancelled" and (entry.get("reason") or "").startswith("skipped:"):
                status = "skipped"
            progress.clear()
            progress.cell_ended(name, status, entry.get("duration_ms"))

    def _on_output(self, output: dict[str, Any]) -> None:
        if not self.options.stream:
            return
        text = output.get("text")
        if text is None:
            data = output.get("data") or {}
            if "text/plain" in data:
                text = str(data["text/plain"]) + "\n"
            elif output.get("output_type") == "error":
                text = "\n".join(output.get("traceback") or []) + "\n"
            elif data:
                text = f"[{', '.join(sorted(data))}]\n"
        if text:
            if self.progress is not None:
                self.progress.clear()
            self.out.write(text)
            self.out.flush()

    def _catch_up(self, report: dict[str, Any]) -> None:
        """Count the cells whose end no event told us (a lost event, a cached cell)."""
        progress = self.progress
        assert progress is not None
        for result in report["cell_results"]:
            entry_id = result.get("entry_id", "")
            if entry_id in self._followed.ended:
                continue
            self._followed.ended.add(entry_id)
            progress.clear()
            progress.cell_ended(result["cell_name"], result["status"], result["duration_ms"])
        progress.clear()

    def _finish(self, report: dict[str, Any]) -> int:
        if self.options.json:
            self.out.write(json.dumps(report, indent=2) + "\n")
            self.out.flush()
        counts: dict[str, int] = {}
        for result in report["cell_results"]:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        seconds = report["total_duration_ms"] / 1000
        self.err.write(
            f"{self.options.path}: {report['status']} in {seconds:.2f} s ({summary}); "
            f"run {report['run_id']}\n"
        )
        for result in report["cell_results"]:
            if result["status"] == "error" and result.get("error"):
                error = result["error"]
                self.err.write(
                    f"  cell {result['cell_name']!r}: {error['ename']}: {error['evalue']}\n"
                )
        self.err.flush()
        return EXIT_OK if report["status"] == "ok" else EXIT_ERROR

    async def cancel(self) -> int:
        """Cancel what is left of the run on the server (Ctrl-C); how many entries."""
        if self.run_id is None:
            return 0
        cancelled = 0
        # Queued ones first, so none starts once the running one is interrupted.
        for entry_id in reversed(self.entry_ids):
            if entry_id in self._followed.ended:
                continue
            status, _ = await self.client.call("DELETE", f"api/queue/{api_path(entry_id)}")
            cancelled += status == 200
        return cancelled
