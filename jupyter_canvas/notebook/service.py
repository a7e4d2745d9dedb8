"""Notebook cells queued on the server: which cells, which kernel, which source.

:class:`NotebookService` turns a ``POST /api/queue`` with ``path`` into entries (all or
nothing), binds the notebook to the kernel of its session (starting one when there is none,
so JupyterLab attaches to the same kernel later), reads each cell's source when its entry
starts, and hands the outputs to a :class:`~jupyter_canvas.notebook.writer.NotebookWriter`.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections import defaultdict
from typing import Any

from jupyter_server.utils import ensure_async
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..canvas.layout import build_graphs, descendants, heading_level
from ..canvas.shared_notebook import NotebookCells, RawCell, SharedNotebooks, cells_of_model
from ..outputs import OutputList
from ..queue.engine import ExecutionQueue, QueueError
from ..queue.models import Entry
from .writer import NotebookWriter


class NotebookRequestError(QueueError):
    """A notebook request that cannot be honoured; carries its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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

    def __init__(self, serverapp: Any, queue: ExecutionQueue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.serverapp = serverapp
        self.queue = queue
        self.notebooks = SharedNotebooks(serverapp, self.log)
        self.writer = NotebookWriter(self)
        self._session_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: The server's one owner of notebook files (shared with the canvas).
        self.files = self.notebooks.files

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
        notebook = await self.read_cells(path)
        chosen = self._choose_cells(path, notebook.cells, code, cell_id, cell_ids, select)
        if kernel_id is None:
            kernel_id = await self.kernel_for(path)
        self.queue.check_capacity(kernel_id, max(1, len(chosen)))
        if code is not None:
            return [self._entry(kernel_id, owner, path, cell_id, code, stop_on_error, False)]
        return [
            self._entry(kernel_id, owner, path, cell.id, cell.source, stop_on_error, True)
            for cell in chosen
        ]

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

    # -- the queue's CellBridge ---------
    async def resolve_source(self, entry: Entry) -> str:
        """The cell's source as it is now: live document when open, else the file."""
        assert entry.path is not None
        notebook = await self.read_cells(entry.path)
        for cell in notebook.cells:
            if cell.id == entry.cell_id:
                return cell.source
        raise NotebookRequestError(404, f"cell {entry.cell_id!r} is no longer in {entry.path!r}")

    async def cell_started(self, entry: Entry) -> None:
        """Clear the cell's outputs, mark it running and follow its outputs."""
        if entry.cell_id is not None:
            await self.writer.cell_started(entry)

    async def cell_finished(self, entry: Entry) -> None:
        """Write the cell's final outputs, execution count and idle state."""
        if entry.cell_id is not None:
            await self.writer.cell_finished(entry)

    async def close(self) -> None:
        """Flush everything pending to the notebooks."""
        await self.writer.flush_all()
