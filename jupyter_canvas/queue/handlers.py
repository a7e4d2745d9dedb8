"""REST handlers of the execution queue: parse and validate, call the engine, write JSON."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ..base import CanvasAPIHandler, normalize_path
from .blobs import encode, reference_of
from .engine import EntryNotFound, QueueError
from .models import Entry, EntryState
from .runs import RunNotFound, cell_names

AUTH_RESOURCE = "kernels"

POST_FIELDS = (
    "kernel_id",
    "path",
    "code",
    "cell_id",
    "cell_ids",
    "select",
    "stop_on_error",
    "allow_stdin",
    "timeout",
)
#: The longest per-cell time limit a request may ask for (seconds; 30 days).
MAX_TIMEOUT = 30 * 24 * 3600.0


class QueueAPIHandler(CanvasAPIHandler):
    """Shared by the queue handlers: the resource they are authorized against."""

    auth_resource = AUTH_RESOURCE

    def raise_queue_error(self, err: QueueError) -> None:
        """Turn an engine refusal into the HTTP error it stands for."""
        raise web.HTTPError(err.status, err.message) from None

    async def journaled(self, entry_id: str, err: QueueError) -> dict[str, Any]:
        """An entry the server no longer holds in memory, from the journal; else ``err``."""
        journal = self.services.queue.journal
        model = await journal.lookup(entry_id) if journal is not None else None
        if model is None:
            self.raise_queue_error(err)
        assert model is not None
        return model

    def path_filter(self) -> str | None:
        """The ``path`` query filter, normalized as ``POST`` normalizes paths (400 if bad)."""
        path = self.get_query_argument("path", None) or None
        return None if path is None else normalize_path(path)

    def entry_json(self, entry: Entry, with_outputs: bool = True) -> dict[str, Any]:
        """The contract's model of an entry, with its current queue position."""
        queue = self.services.queue
        return entry.to_json(queue.position(entry), with_outputs=with_outputs)


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise web.HTTPError(400, f"{name} must be a non-empty string, got {value!r}")
    return value


def validate_post(body: dict[str, Any], max_code_bytes: int) -> dict[str, Any]:
    """Check a ``POST /api/queue`` body against the contract; return the clean request."""
    unknown = sorted(set(body) - set(POST_FIELDS))
    if unknown:
        raise web.HTTPError(
            400, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(POST_FIELDS)}"
        )
    kernel_id = _optional_str(body, "kernel_id")
    path = _optional_str(body, "path")
    cell_id = _optional_str(body, "cell_id")
    code = body.get("code")
    cell_ids = body.get("cell_ids")
    select = body.get("select")
    stop_on_error = body.get("stop_on_error", True)

    given = [name for name in ("code", "cell_ids", "select") if body.get(name) is not None]
    if len(given) != 1:
        raise web.HTTPError(
            400,
            "give exactly one of code, cell_ids or select"
            + (f" (got {', '.join(given)})" if given else ""),
        )
    if not isinstance(stop_on_error, bool):
        raise web.HTTPError(400, f"stop_on_error must be true or false, got {stop_on_error!r}")
    allow_stdin = body.get("allow_stdin", True)
    if not isinstance(allow_stdin, bool):
        raise web.HTTPError(400, f"allow_stdin must be true or false, got {allow_stdin!r}")
    timeout = _timeout(body.get("timeout"))
    if code is not None:
        if not isinstance(code, str):
            raise web.HTTPError(400, f"code must be a string, got {type(code).__name__}")
        size = len(code.encode("utf-8", "surrogatepass"))
        if max_code_bytes and size > max_code_bytes:
            raise web.HTTPError(
                413,
                f"code is {size} bytes; the limit is {max_code_bytes} (CanvasApp.max_code_bytes)",
            )
    if cell_id is not None and (code is None or path is None):
        raise web.HTTPError(
            400, "cell_id goes with code and path: it names the cell the code runs as"
        )
    if cell_ids is not None:
        if not isinstance(cell_ids, list) or not cell_ids:
            raise web.HTTPError(400, "cell_ids must be a non-empty list of cell id strings")
        if not all(isinstance(c, str) and c for c in cell_ids):
            raise web.HTTPError(400, "cell_ids must hold only non-empty strings")
    if select is not None:
        ok = select == "all" or (
            isinstance(select, dict)
            and len(select) == 1
            and next(iter(select)) in ("from", "group")
            and isinstance(next(iter(select.values())), str)
            and next(iter(select.values()))
        )
        if not ok:
            raise web.HTTPError(
                400,
                'select must be "all", {"from": "<cell id>"} or {"group": "<heading cell id>"}, '
                f"got {select!r}",
            )
    if (cell_ids is not None or select is not None) and path is None:
        raise web.HTTPError(400, f"{given[0]} needs path: the notebook whose cells to run")
    if path is None and kernel_id is None:
        raise web.HTTPError(400, "kernel_id is required to queue code that is not from a notebook")
    return {
        "kernel_id": kernel_id,
        "path": path,
        "code": code,
        "cell_id": cell_id,
        "cell_ids": cell_ids,
        "select": select,
        "stop_on_error": stop_on_error,
        "allow_stdin": allow_stdin,
        "timeout": timeout,
    }


def _timeout(value: Any) -> float | None:
    """A per-cell time limit in seconds (null: none), or answer 400."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise web.HTTPError(
            400, f"timeout must be a number of seconds (or null for none), got {value!r}"
        )
    if not 0 < value <= MAX_TIMEOUT:  # also refuses NaN
        raise web.HTTPError(
            400, f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {value!r}"
        )
    return float(value)


def parse_states(raw: str | None) -> list[EntryState] | None:
    """Parse the ``state`` query filter (comma-separated), or answer 400."""
    if not raw:
        return None
    states = []
    for part in raw.split(","):
        part = part.strip()
        try:
            states.append(EntryState(part))
        except ValueError:
            allowed = ", ".join(s.value for s in EntryState)
            raise web.HTTPError(400, f"unknown state {part!r}; use one of {allowed}") from None
    return states


class QueueHandler(QueueAPIHandler):
    """``/api/queue``: queue code, list entries, clear a queue."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        """Queue a snippet or notebook cells; answer 202 with the entries."""
        request = validate_post(self.json_body(), self.services.config.max_code_bytes)
        limits = {"allow_stdin": request.pop("allow_stdin"), "timeout": request.pop("timeout")}
        services = self.services
        owner = self.user_name()
        try:
            if request["path"] is not None:
                notebooks = services.notebooks
                if notebooks is None:
                    raise web.HTTPError(
                        400,
                        "notebook requests (path) are not available: the notebook service "
                        "did not load",
                    )
                entries = await notebooks.plan(owner=owner, **request)
            else:
                kernel_id = request["kernel_id"]
                services.queue.check_capacity(kernel_id, 1)
                entries = [
                    Entry(
                        kernel_id=kernel_id,
                        code=request["code"],
                        owner=owner,
                        stop_on_error=request["stop_on_error"],
                    )
                ]
            owner_name = self.user_display_name()
            for entry in entries:
                entry.owner_name = owner_name
                entry.allow_stdin = limits["allow_stdin"]
                entry.timeout = limits["timeout"]
            names = None
            if request["path"] is not None and request["code"] is None:
                names = cell_names((await services.notebooks.read_cells(entries[0].path)).cells)
            run = services.runs.start(entries, notebook=entries[0].path, names=names)
            try:
                services.queue.submit(entries)
            except QueueError:
                services.runs.forget(run)
                raise
        except QueueError as err:
            self.raise_queue_error(err)
        # One turn of the event loop: an idle kernel's worker sends the first entry to the
        # kernel now, before this answer is written, so the kernel starts that much sooner.
        await asyncio.sleep(0)
        first = entries[0].id
        self.set_header("Location", url_path_join(self.base_url, "api/queue", first))
        self.write_json(
            {"run_id": run.run_id, "entries": [self.entry_json(e) for e in entries]}, status=202
        )

    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        """List entries: running and queued first, in run order, then finished, newest first."""
        states = parse_states(self.get_query_argument("state", None))
        kernel_id = self.get_query_argument("kernel_id", None) or None
        path = self.path_filter()
        listed = self.services.queue.list_entries(kernel_id=kernel_id, path=path, states=states)
        self.write_json(
            {"entries": [entry.to_json(pos, with_outputs=False) for entry, pos in listed]}
        )

    @web.authenticated
    @authorized("execute")
    async def delete(self) -> None:
        """Clear the queue of one kernel or one notebook."""
        kernel_id = self.get_query_argument("kernel_id", None) or None
        path = self.path_filter()
        if kernel_id is None and path is None:
            raise web.HTTPError(
                400,
                "say which queue to clear: DELETE /api/queue?kernel_id=<id> or ?path=<notebook>",
            )
        queue = self.services.queue
        if (
            kernel_id is not None
            and not queue.has_kernel(kernel_id)
            and not queue.list_entries(kernel_id=kernel_id)
        ):
            raise web.HTTPError(404, f"no kernel with id {kernel_id!r}")
        cancelled = await queue.clear(self.user_display_name(), kernel_id=kernel_id, path=path)
        self.write_json({"cancelled": cancelled})


class LongPoll(QueueAPIHandler):
    """A handler that can hold its answer (``?wait=``) until something has ended."""

    _waiter: asyncio.Future[bool] | None = None

    async def hold(self, waiter: asyncio.Future[bool]) -> bool:
        """Wait for ``waiter``; False when the client went away meanwhile (answer nothing)."""
        self._waiter = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            return False
        finally:
            self._waiter = None
        return True

    def on_connection_close(self) -> None:
        """Stop waiting for a client that disconnected during a long poll."""
        if self._waiter is not None:
            self._waiter.cancel()
        super().on_connection_close()


class EntryHandler(LongPoll):
    """``/api/queue/<id>``: read (optionally waiting for the end) or cancel one entry."""

    @web.authenticated
    @authorized("read")
    async def get(self, entry_id: str) -> None:
        """Answer the entry; with ``?wait=`` hold the answer until it is terminal."""
        wait = self.float_argument("wait", self.services.config.max_wait_seconds)
        queue = self.services.queue
        try:
            entry = queue.get(entry_id)
        except EntryNotFound as err:
            self.write_json(await self.journaled(entry_id, err))  # finished before a restart
            return
        if wait and not entry.terminal and not await self.hold(entry.finished_waiter(wait)):
            return
        self.write_json(self.entry_json(entry))

    @web.authenticated
    @authorized("execute")
    async def delete(self, entry_id: str) -> None:
        """Cancel the entry (a running one's kernel is interrupted)."""
        try:
            entry = await self.services.queue.cancel(entry_id, self.user_display_name())
        except EntryNotFound as err:
            model = await self.journaled(entry_id, err)
            raise web.HTTPError(
                409,
                f"entry {entry_id} is already {model['state']}; only queued or running "
                "entries can be cancelled",
            ) from None
        except QueueError as err:
            self.raise_queue_error(err)
        self.write_json(self.entry_json(entry))


class InputHandler(QueueAPIHandler):
    """``/api/queue/<id>/input``: answer the ``input()`` an entry waits on."""

    @web.authenticated
    @authorized("execute")
    async def post(self, entry_id: str) -> None:
        """Send ``{"value": "text"}`` to the kernel as the answer."""
        body = self.json_body()
        value = body.get("value")
        if not isinstance(value, str) or set(body) - {"value"}:
            raise web.HTTPError(400, 'send {"value": "<text>"}: value must be a string')
        try:
            entry = await self.services.queue.send_input(entry_id, value)
        except QueueError as err:
            self.raise_queue_error(err)
        self.write_json(self.entry_json(entry))


class StreamHandler(QueueAPIHandler):
    """``/api/queue/<id>/streams/<index>``: the whole text of a stream output that was cut."""

    @web.authenticated
    @authorized("read")
    async def get(self, entry_id: str, index: str) -> None:
        """Answer the stream's whole text (``text/plain``), as received from the kernel."""
        services = self.services
        try:
            services.queue.get(entry_id)
        except QueueError as err:
            self.raise_queue_error(err)
        if not index.isdigit():
            raise web.HTTPError(
                400, f"the output index must be a whole number from 0, got {index!r}"
            )
        spills = services.queue.spills
        spill = spills.get(entry_id, int(index)) if spills is not None else None
        if spill is None:
            raise web.HTTPError(
                404,
                f"output {index} of entry {entry_id} was not cut: its whole text is in the "
                "entry's outputs",
            )
        await spill.drain()
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        with await asyncio.to_thread(spill.path.open, "rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


class OutputHandler(QueueAPIHandler):
    """``/api/queue/<id>/outputs/<index>``: one output of an entry, whole.

    A large output is kept once on disk (see :mod:`jupyter_canvas.queue.blobs`) and the
    entry holds a reference to it: this answers the whole output, as stored.
    """

    @web.authenticated
    @authorized("read")
    async def get(self, entry_id: str, index: str) -> None:
        """Answer the output (nbformat JSON), its large MIME values whole."""
        if not index.isdigit():
            raise web.HTTPError(
                400, f"the output index must be a whole number from 0, got {index!r}"
            )
        queue = self.services.queue
        try:
            outputs = queue.get(entry_id).outputs.to_json()
        except EntryNotFound as err:
            outputs = (await self.journaled(entry_id, err)).get("outputs") or []
        position = int(index)
        if position >= len(outputs):
            raise web.HTTPError(
                404, f"entry {entry_id} has {len(outputs)} output(s): there is no output {index}"
            )
        output = outputs[position]
        self.set_header("Content-Type", "application/json")
        ref = reference_of(output)
        if ref is None:
            self.finish(encode(output))
            return
        blobs = queue.blobs
        path = await blobs.path_of(ref["blob"]) if blobs is not None else None
        if path is None:
            raise web.HTTPError(
                404,
                f"output {index} of entry {entry_id} is no longer kept: the server run that "
                "stored it stopped, or the blob store removed it to stay within "
                "CanvasApp.blob_store_bytes",
            )
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except OSError:
            raise web.HTTPError(
                404, f"output {index} of entry {entry_id} is no longer kept"
            ) from None
        with handle:
            while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


class RunHandler(LongPoll):
    """``/api/queue/runs/<run_id>``: the RunReport of one request (see ``queue/runs.py``)."""

    @web.authenticated
    @authorized("read")
    async def get(self, run_id: str) -> None:
        """Answer the report; with ``?wait=`` hold the answer until the run has ended."""
        wait = self.float_argument("wait", self.services.config.max_wait_seconds)
        runs = self.services.runs
        try:
            run = runs.get(run_id)
        except RunNotFound as err:
            report = await runs.journaled(run_id)  # a run of an earlier server
            if report is None:
                raise web.HTTPError(404, str(err)) from None
            self.write_json(report)
            return
        if wait and not run.finished and not await self.hold(run.finished_waiter(wait)):
            return
        self.write_json(run.report())


_ENTRY = r"(?P<entry_id>(?!events/?$)[^/]+)"

default_handlers = [
    (r"/api/queue/?", QueueHandler),
    (r"/api/queue/runs/(?P<run_id>[^/]+)/?", RunHandler),
    (rf"/api/queue/{_ENTRY}/input/?", InputHandler),
    (rf"/api/queue/{_ENTRY}/streams/(?P<index>[^/]+)/?", StreamHandler),
    (rf"/api/queue/{_ENTRY}/outputs/(?P<index>[^/]+)/?", OutputHandler),
    (rf"/api/queue/{_ENTRY}/?", EntryHandler),
]
