"""Notebook cells queued on the server: which cells, which kernel, which source.

:class:`NotebookService` turns a ``POST /api/queue`` with ``path`` into entries (all or
nothing), binds the notebook to the kernel of its session (starting one when there is none,
so JupyterLab attaches to the same kernel later), reads each cell's source when its entry
starts, and hands the outputs to a :class:`~jupyter_canvas.notebook.writer.NotebookWriter`.

Before anything is queued, every cell of the notebook gets a stable id (see
:mod:`~jupyter_canvas.notebook.cell_ids`), written to the live document or the file, so an
entry always finds its own cell again. When an entry starts, its cell is read afresh: a cell
that is gone, no longer code or tagged ``skip-execution`` does not run (the entry ends
cancelled, see :class:`~jupyter_canvas.queue.engine.CellNotRun`); ``raises-exception`` lets
its error leave the queue going. The first cell of a request to start also refreshes the
notebook's ``language_info`` and kernelspec from the kernel's ``kernel_info_reply``.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import defaultdict
from typing import Any

from jupyter_server.utils import ensure_async
from tornado import web
from traitlets import Bool, Float, Int
from traitlets.config import LoggingConfigurable

from ..canvas.layout import build_graphs, descendants, heading_level
from ..canvas.shared_notebook import NotebookCells, RawCell, SharedNotebooks, cells_of_model
from ..outputs import OutputList
from ..queue.engine import CellNotRun, ExecutionQueue, QueueError
from ..queue.models import Entry, EntryState
from .cell_ids import normalize_live_ids
from .writer import WRITER_ORIGIN, NotebookWriter

#: A cell with this tag is not run (as nbclient and papermill do): its entry ends cancelled.
SKIP_TAG = "skip-execution"
#: A cell with this tag may fail: its error does not stop the queue (as nbclient does).
RAISES_TAG = "raises-exception"
#: Seconds to wait for the kernel's kernel_info_reply before running without it.
KERNEL_INFO_TIMEOUT = 10.0

#: States of an entry that has not finished (its run goes on).
UNFINISHED = (EntryState.QUEUED, EntryState.RUNNING, EntryState.AWAITING_INPUT)


class NotebookRequestError(QueueError):
    """A notebook request that cannot be honoured; carries its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotebookGone(CellNotRun):
    """The notebook of an entry that has not started was deleted: it ends cancelled."""


class NotebookService(LoggingConfigurable):
    """Queues notebook cells and keeps the notebook in step with their execution."""

    stream_cap = Int(
        256 * 1024,
        config=True,
        help="Characters of one stream output kept in the notebook (head and tail); the rest "
        "is cut with a note and kept in full on the server (GET api/queue/<id>/streams/<i>).",
    )
    file_flush_interval = Float(
        1.0,
        config=True,
        help="Seconds between writes of outputs to a notebook file that nobody has open for "
        "collaboration (outputs are batched).",
    )
    doc_flush_interval = Float(
        0.05,
        config=True,
        help="Least seconds between two writes of one cell's outputs into the shared document.",
    )

    record_timing = Bool(
        True,
        config=True,
        help="Write JupyterLab's recordTiming keys into each run cell's metadata.execution "
        "(iopub.status.busy, iopub.execute_input, shell.execute_reply.started, "
        "shell.execute_reply, iopub.status.idle), from the dates in the kernel's messages.",
    )

    def __init__(self, serverapp: Any, queue: ExecutionQueue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.serverapp = serverapp
        self.queue = queue
        self.notebooks = SharedNotebooks(serverapp, self.log)
        self.writer = NotebookWriter(self)
        self._session_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: The server's one owner of notebook files (shared with the canvas).
        self.files = self.notebooks.files
        #: Notebooks (path, kernel id) whose metadata the next cell to start refreshes.
        self._metadata_due: set[tuple[str, str]] = set()

    async def read_file(self, path: str) -> Any:
        """The notebook model from the file."""
        return await self.files.read(path)

    # -- the live document, when there is one ------------------------------------------------
    def file_id_or_none(self, path: str) -> str | None:
        """The notebook's file id when jupyter_server_fileid is enabled, else None."""
        if self.notebooks.settings.get("file_id_manager") is None:
            return None
        try:
            return self.notebooks.file_id(path)
        except Exception:
            return None

    async def live_document(self, path: str) -> Any | None:
        """The notebook's live ``YNotebook`` when it is open for collaboration, else None."""
        if self.notebooks.ydoc_extension() is None:
            return None
        file_id = self.file_id_or_none(path)
        if file_id is None:
            return None
        return await self.notebooks.live_notebook(file_id)

    async def read_cells(self, path: str) -> NotebookCells:
        """The notebook's cells, from the live document when it is open, else from the file."""
        live = await self.live_document(path)
        if live is not None:
            file_id = self.file_id_or_none(path)
            assert file_id is not None
            return await self.notebooks.read_cells(path, file_id)
        return cells_of_model(path, await self.read_file(path))

    # -- planning a request ---------
    async def plan(
        self,
        *,
        owner: str,
        path: str,
        kernel_id: str | None,
        code: str | None,
        cell_id: str | None,
        cell_ids: list[str] | None,
        select: Any,
        stop_on_error: bool,
    ) -> list[Entry]:
        """Resolve a notebook request into entries, binding a kernel; queue nothing yet."""
        path = await self.notebooks.resolve_notebook(path)
        notebook = await self.cells_with_ids(path)
        chosen = self._choose_cells(path, notebook.cells, code, cell_id, cell_ids, select)
        if kernel_id is None:
            kernel_id = await self.kernel_for(path)
        self.queue.check_capacity(kernel_id, max(1, len(chosen)))
        self._metadata_due.add((path, kernel_id))
        if code is not None:
            entries = [self._entry(kernel_id, owner, path, cell_id, code, stop_on_error, False)]
        else:
            entries = []
            for cell in chosen:
                entry = self._entry(
                    kernel_id, owner, path, cell.id, cell.source, stop_on_error, True
                )
                entry.error_expected = RAISES_TAG in _tags(cell)
                entries.append(entry)
        file_id = self.file_id_or_none(path)
        for entry in entries:
            entry.file_id = file_id
        return entries

    async def cells_with_ids(self, path: str) -> NotebookCells:
        """The notebook's cells once every one has a stable id (written where it is read)."""
        live = await self.live_document(path)
        if live is not None:
            stale = await self.writer.file_needs_ids(path)
            if normalize_live_ids(live, origin=WRITER_ORIGIN, force_save=stale):
                self.log.info("jupyter_canvas: gave the cells of %s stable ids (live)", path)
            return await self.read_cells(path)
        return await self.writer.upgrade_file_ids(path)

    def _entry(
        self,
        kernel_id: str,
        owner: str,
        path: str,
        cell_id: str | None,
        code: str,
        stop_on_error: bool,
        from_notebook: bool,
    ) -> Entry:
        return Entry(
            kernel_id=kernel_id,
            code=code,
            owner=owner,
            path=path,
            cell_id=cell_id,
            stop_on_error=stop_on_error,
            source_from_notebook=from_notebook,
            outputs=OutputList(stream_cap=self.stream_cap),
        )

    @staticmethod
    def _choose_cells(
        path: str,
        cells: list[RawCell],
        code: str | None,
        cell_id: str | None,
        cell_ids: list[str] | None,
        select: Any,
    ) -> list[RawCell]:
        by_id = {cell.id: cell for cell in cells if cell.id}

        def known(ids: list[str]) -> list[RawCell]:
            unknown = [c for c in ids if c not in by_id]
            if unknown:
                raise NotebookRequestError(
                    404, f"no cell with id {', '.join(map(repr, unknown))} in {path!r}"
                )
            return [by_id[c] for c in ids]

        def code_only(chosen: list[RawCell], what: str) -> list[RawCell]:
            kept = [cell for cell in chosen if cell.cell_type == "code"]
            if not kept:
                raise NotebookRequestError(400, f"{what} in {path!r} holds no code cell to run")
            return kept

        if code is not None:
            if cell_id is None:
                return []
            (cell,) = known([cell_id])
            if cell.cell_type != "code":
                raise NotebookRequestError(
                    400, f"cell {cell_id!r} is a {cell.cell_type} cell; only code cells run"
                )
            return [cell]
        if cell_ids is not None:
            chosen = known(cell_ids)
            not_code = [c.id for c in chosen if c.cell_type != "code"]
            if not_code:
                raise NotebookRequestError(
                    400, f"cell(s) {', '.join(map(repr, not_code))} are not code cells"
                )
            return chosen
        if select == "all":
            return code_only(cells, "the notebook")
        ((kind, target),) = select.items()
        (start,) = known([target])
        if kind == "from":
            index = cells.index(start)
            return code_only(cells[index:], f"from cell {target!r} to the end")
        levels = [(c.id or "", heading_level(c.cell_type, c.source)) for c in cells]
        if heading_level(start.cell_type, start.source) is None:
            raise NotebookRequestError(
                400, f"cell {target!r} is not a markdown heading, so it has no group"
            )
        _np, pc_graph = build_graphs(levels)
        members = set(descendants(pc_graph, target))
        return code_only([c for c in cells if c.id in members], f"the group of {target!r}")

    # -- kernel binding ---------
    async def kernel_for(self, path: str) -> str:
        """The kernel of the notebook's session; start a session when there is none."""
        sm = self.serverapp.session_manager
        async with self._session_locks[path]:
            for session in await ensure_async(sm.list_sessions()):
                if session.get("path") == path and session.get("kernel"):
                    return str(session["kernel"]["id"])
            kernel_name = await self._kernelspec_name(path)
            model = await ensure_async(
                sm.create_session(
                    path=path,
                    name=posixpath.basename(path),
                    type="notebook",
                    kernel_name=kernel_name,
                )
            )
            self.log.info("jupyter_canvas: started kernel %s for %s", kernel_name, path)
            return str(model["kernel"]["id"])

    async def _kernelspec_name(self, path: str) -> str:
        km = self.serverapp.kernel_manager
        try:
            model = await self.read_file(path)
            name = (model["content"].get("metadata") or {}).get("kernelspec", {}).get("name")
        except Exception:
            name = None
        if name:
            specs = await ensure_async(self.serverapp.kernel_spec_manager.get_all_specs())
            if name in specs:
                return str(name)
            raise NotebookRequestError(
                400,
                f"{path!r} asks for kernel {name!r}, which is not installed here "
                f"(installed: {', '.join(sorted(specs))}); pass kernel_id to choose one",
            )
        return str(km.default_kernel_name)

    # -- following the notebook when it moves or goes ---------
    async def on_contents_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        """jupyter_server's contents events: a notebook renamed, moved or deleted."""
        action = data.get("action")
        try:
            if action == "rename" and data.get("source_path") and data.get("path"):
                self.renamed(str(data["source_path"]).strip("/"), str(data["path"]).strip("/"))
            elif action == "delete" and data.get("path"):
                self.deleted(str(data["path"]).strip("/"))
        except Exception:
            self.log.exception("jupyter_canvas: could not follow %s of %s", action, data)

    def renamed(self, old: str, new: str) -> None:
        """Entries and writers of ``old`` (a notebook or a folder) follow it to ``new``."""
        if old == new:
            return
        moved = self.queue.repath(old, new)
        self.writer.repath(old, new)
        if moved:
            self.log.info(
                "jupyter_canvas: %s moved to %s; %d entries follow it", old, new, len(moved)
            )

    def deleted(self, path: str) -> None:
        """Queued entries of a deleted notebook (or folder) end ``cancelled``."""
        cancelled = self.queue.withdraw_path(path, f"notebook {path!r} was deleted")
        if cancelled:
            self.log.info("jupyter_canvas: %s deleted; %d entries cancelled", path, len(cancelled))

    def follow(self, entry: Entry) -> str:
        """The entry's notebook path now, found by its file id (moves made outside the
        contents API too); :class:`NotebookGone` when the notebook no longer exists."""
        assert entry.path is not None
        if entry.file_id is None:
            return entry.path
        try:
            path = self.notebooks.path_of(entry.file_id)
        except Exception:  # jupyter_server_fileid went away: keep the path we know
            return entry.path
        if path is None:
            if self.files.exists(entry.path):
                return entry.path  # the id lost track of it (a new inode), not the file
            raise NotebookGone(f"notebook {entry.path!r} was deleted")
        if path != entry.path:
            self.renamed(entry.path, path)
        return path

    # -- the queue's CellBridge ---------
    async def resolve_source(self, entry: Entry) -> str:
        """The cell's source as it is now: live document when open, else the file."""
        path = self.follow(entry)
        try:
            notebook = await self.read_cells(path)
        except web.HTTPError as err:
            if err.status_code == 404:
                raise NotebookGone(f"notebook {path!r} was deleted") from None
            raise
        for cell in notebook.cells:
            if cell.id != entry.cell_id:
                continue
            if cell.cell_type != "code":
                raise CellNotRun(
                    f"not run: cell {entry.cell_id!r} is now a {cell.cell_type} cell, not code"
                )
            tags = _tags(cell)
            if SKIP_TAG in tags:
                raise CellNotRun(f"skipped: tagged {SKIP_TAG}")
            entry.error_expected = RAISES_TAG in tags
            return cell.source
        raise CellNotRun(f"not run: cell {entry.cell_id!r} is no longer in {entry.path!r}")

    async def cell_started(self, entry: Entry) -> None:
        """Refresh the notebook's metadata at a run's first cell; clear the cell's outputs,
        mark it running and follow its outputs."""
        assert entry.path is not None
        self.follow(entry)
        due = (entry.path, entry.kernel_id)
        if due in self._metadata_due:
            self._metadata_due.discard(due)
            await self.refresh_metadata(entry.path, entry.kernel_id)
        if entry.cell_id is not None:
            await self.writer.cell_started(entry)

    async def refresh_metadata(self, path: str, kernel_id: str) -> None:
        """Write the kernel's ``language_info`` and kernelspec into the notebook's metadata,
        as nbclient and JupyterLab do when they start running a notebook."""
        try:
            info = await self.queue.kernel_info(kernel_id, KERNEL_INFO_TIMEOUT)
        except Exception as err:
            self.log.warning(
                "jupyter_canvas: no kernel_info_reply from kernel %s (%s); the metadata of %s "
                "is left as it is",
                kernel_id,
                err,
                path,
            )
            return
        values: dict[str, Any] = {}
        language_info = info.get("language_info")
        if isinstance(language_info, dict):
            values["language_info"] = language_info
        kernelspec = await self._kernelspec_of(kernel_id)
        if kernelspec:
            values["kernelspec"] = kernelspec
        if values:
            try:
                await self.writer.update_notebook_metadata(path, values)
            except Exception:
                self.log.exception("jupyter_canvas: could not write the metadata of %s", path)

    async def _kernelspec_of(self, kernel_id: str) -> dict[str, str]:
        """``{name, display_name, language}`` of a kernel's spec, as JupyterLab writes it."""
        try:
            name = self.serverapp.kernel_manager.get_kernel(kernel_id).kernel_name
            spec = await ensure_async(self.serverapp.kernel_spec_manager.get_kernel_spec(name))
        except Exception:
            return {}
        if isinstance(spec, dict):  # a gateway's kernelspec manager answers the REST model
            spec = spec.get("spec") or {}
            display_name, language = spec.get("display_name"), spec.get("language")
        else:
            display_name, language = spec.display_name, spec.language
        return {"name": str(name), "display_name": str(display_name), "language": str(language)}

    async def cell_finished(self, entry: Entry) -> None:
        """Write the cell's final outputs, execution count and idle state; at the end of a
        run (nothing more queued for the notebook on that kernel), its widget state."""
        if entry.cell_id is not None:
            await self.writer.cell_finished(entry)
        if entry.path is not None and not self.queue.list_entries(
            kernel_id=entry.kernel_id, path=entry.path, states=UNFINISHED
        ):
            await self.writer.store_widgets(entry.path, entry.kernel_id)

    async def close(self) -> None:
        """Flush everything pending to the notebooks."""
        await self.writer.flush_all()


def _tags(cell: RawCell) -> list[str]:
    tags = cell.metadata.get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []
