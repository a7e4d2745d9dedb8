"""Writes the outputs of server-run cells into their notebook.

When the notebook is open for collaboration, outputs go into jupyter_server_ydoc's live
shared document (every JupyterLab peer sees them as they arrive; the document's own autosave
puts them on disk). When it is not, they go to the file through the contents manager, in
batches. The choice is made again at every write, so a notebook opened or closed in the
middle of a run keeps every output.

The shared document is edited in place: outputs are cleared with ``del outputs[:]``, stream
text grows inside its ``Text``, display updates change keys of the existing output map;
nothing nested is replaced (JupyterLab can render a half-replaced cell as empty).

A finished cell whose outputs carry a display id stays followed while its entry is retained:
an ``update_display_data`` sent while another cell runs changes it in the document or the
file too, unless the cell was run again or its outputs changed under us meanwhile.

Besides outputs and execution counts, the same two paths carry a cell's
``metadata.execution`` (the kernel's timing, see ``NotebookService.record_timing``), the
cell ids given to a notebook before it runs, and the notebook's ``language_info`` and
kernelspec. Every change to the file goes through
:class:`~jupyter_canvas.notebook.files.NotebookFiles` (one lock per file, atomic writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import nbformat
from jupyter_ydoc.utils import cast_all
from pycrdt import Array, Map, Text
from tornado import web

from ..canvas.shared_notebook import NotebookCells, cells_of_model
from ..outputs import OutputChange
from ..queue.blobs import reference_of
from ..queue.models import Entry
from .cell_ids import normalize_model_ids, raw_needs_ids

if TYPE_CHECKING:
    from .service import NotebookService

#: How many files' sound cell ids are remembered (each a path and a date).
_IDS_CHECKED_CAP = 1024

#: Transaction origin of our writes into the shared document.
WRITER_ORIGIN = "jupyter_canvas.notebook"


class CellSync:
    """Keeps one notebook cell in step with one running entry."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        assert entry.path is not None and entry.cell_id is not None
        self.path: str = entry.path
        self.cell_id: str = entry.cell_id
        self.execution_state = "running"
        #: The live document the cell was last written to (None: the file).
        self.target: Any = None
        #: The outputs as last written to ``target``.
        self.written: list[dict[str, Any]] = []
        self.reset = True
        self.finished = False
        self.index_hint = -1
        self.handle: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task[None] | None = None
        self.again = False
        self.last_flush = 0.0
        self.listener: Any = None
        #: The final state was written; only display updates can change the cell now.
        self.settled = False

    def on_change(self, change: OutputChange) -> None:
        """An output changed: remember whether everything must be rewritten."""
        if change.kind == "clear":
            self.reset = True


class NotebookWriter:
    """Writes running cells' state into notebooks (live document or file)."""

    def __init__(self, service: NotebookService) -> None:
        self.service = service
        self.log = service.log
        self._cells: dict[tuple[str, str], CellSync] = {}
        self._file_dirty: defaultdict[str, dict[str, CellSync]] = defaultdict(dict)
        self._file_tasks: dict[str, asyncio.Task[None]] = {}
        #: Notebooks whose widget state is due in the file: path → kernel id.
        self._widgets_due: dict[str, str] = {}
        #: Finished cells still followed for display updates (weak: gone with their entry).
        self._shown: weakref.WeakValueDictionary[tuple[str, str], CellSync] = (
            weakref.WeakValueDictionary()
        )
        #: Files whose stored cell ids were found sound: path -> last_modified then.
        self._ids_checked: dict[str, Any] = {}

    # -- what the queue tells us ---------
    async def cell_started(self, entry: Entry) -> None:
        """Clear the cell's outputs, mark it running, follow the entry's outputs."""
        sync = CellSync(entry)
        key = (sync.path, sync.cell_id)
        for previous in (self._cells.get(key), self._shown.pop(key, None)):
            if previous is not None:
                self._detach(previous)
        self._cells[key] = sync

        def changed(change: OutputChange) -> None:
            sync.on_change(change)
            self._schedule(sync)

        sync.listener = changed
        entry.outputs.add_listener(changed)
        await self._flush(sync)
        # The first output goes out at once: doc_flush_interval spaces writes of outputs
        # (a burst of them), and clearing the cell at its start is not one. Counted, it
        # held the first output of every cell back by up to the whole interval (50 ms),
        # which is most of Shift-Enter-to-output.
        sync.last_flush = 0.0

    async def cell_finished(self, entry: Entry) -> None:
        """Write the final outputs, execution count and idle state of the cell."""
        assert entry.path is not None and entry.cell_id is not None
        sync = self._cells.get((entry.path, entry.cell_id))
        if sync is None or sync.entry is not entry:
            return
        sync.execution_state = "idle"
        sync.finished = True
        key = (sync.path, sync.cell_id)
        if entry.outputs.shows_display_ids:
            # A later cell may update these outputs by display id: keep following them.
            self._shown[key] = sync
        else:
            self._detach(sync)
        await self._flush(sync)
        sync.settled = True
        if self._cells.get(key) is sync and sync.target is not None:
            del self._cells[key]

    def _detach(self, sync: CellSync) -> None:
        if sync.listener is not None:
            sync.entry.outputs.remove_listener(sync.listener)
            sync.listener = None
        if sync.handle is not None:
            sync.handle.cancel()
            sync.handle = None

    # -- scheduling ---------
    def _schedule(self, sync: CellSync) -> None:
        if sync.flushing is not None:
            sync.again = True
            return
        if sync.handle is not None:
            return
        loop = asyncio.get_running_loop()
        interval = self.service.doc_flush_interval
        if sync.entry.outputs.truncated:
            interval = max(interval, 1.0)  # a capped stream rewrites its tail: slow down
        delay = max(0.0, sync.last_flush + interval - loop.time())
        sync.handle = loop.call_later(delay, self._start_flush, sync)

    def _start_flush(self, sync: CellSync) -> None:
        sync.handle = None
        sync.flushing = asyncio.get_running_loop().create_task(self._flush(sync))

    def _superseded(self, sync: CellSync) -> bool:
        """Whether a finished cell's entry no longer owns the cell (it ran again since)."""
        key = (sync.path, sync.cell_id)
        owner = self._shown.get(key) or self._cells.get(key)
        return sync.settled and owner is not sync

    async def _flush(self, sync: CellSync) -> None:
        if self._superseded(sync):
            return
        try:
            live = await self.service.live_document(sync.path)
            sync.last_flush = asyncio.get_running_loop().time()
            if live is not None:
                if live is not sync.target:
                    sync.target = live
                    sync.reset = True
                self._file_dirty[sync.path].pop(sync.cell_id, None)
                whole = await self._whole_outputs(sync, live)
                try:
                    self._write_live(live, sync, whole)
                except Exception:
                    self.log.exception("jupyter_canvas: could not write cell %s", sync.cell_id)
            else:
                if sync.target is not None:
                    sync.target = None
                    sync.reset = True
                self._file_dirty[sync.path][sync.cell_id] = sync
                self._ensure_file_flush(sync.path, soon=sync.finished and not sync.settled)
        finally:
            if sync.flushing is asyncio.current_task():
                sync.flushing = None
                if sync.again and (not sync.finished or sync.listener is not None):
                    sync.again = False
                    self._schedule(sync)

    async def _whole(self, output: dict[str, Any]) -> dict[str, Any]:
        """The whole output a blob reference stands for (the output itself otherwise)."""
        blobs = self.service.queue.blobs
        if blobs is None or reference_of(output) is None:
            return output
        return await blobs.whole(output)

    async def _whole_outputs(self, sync: CellSync, live: Any) -> dict[int, dict[str, Any]]:
        """The whole outputs, by index, of the references among the cell's outputs that
        the next live write may write (read from the blob store before the write)."""
        outputs = sync.entry.outputs.to_json()
        rewrite = sync.reset or live is not sync.target
        written = sync.written
        whole: dict[int, dict[str, Any]] = {}
        for index, output in enumerate(outputs):
            if reference_of(output) is None:
                continue
            if not rewrite and index < len(written) and written[index] is output:
                continue
            whole[index] = await self._whole(output)
        return whole

    # -- the live document ---------
    def _find_cell(self, live: Any, sync: CellSync) -> Map | None:
        cells = live.ycells
        hint = sync.index_hint
        if 0 <= hint < len(cells) and cells[hint].get("id") == sync.cell_id:
            return cells[hint]  # type: ignore[no-any-return]
        for index, ycell in enumerate(cells):
            if ycell.get("id") == sync.cell_id:
                sync.index_hint = index
                return ycell  # type: ignore[no-any-return]
        return None

    def _write_live(
        self, live: Any, sync: CellSync, whole: dict[int, dict[str, Any]] | None = None
    ) -> None:
        entry = sync.entry
        outputs = entry.outputs.to_json()
        whole = whole or {}
        with live.ydoc.transaction(origin=WRITER_ORIGIN):
            ycell = self._find_cell(live, sync)
            if ycell is None:
                self.log.warning(
                    "jupyter_canvas: cell %s left %s while it ran", sync.cell_id, sync.path
                )
                return
            youtputs = ycell.get("outputs")
            if sync.settled:
                self._update_settled(sync, youtputs, outputs, whole)
                return
            if not isinstance(youtputs, Array):
                youtputs = ycell["outputs"] = Array()
            if sync.reset or len(youtputs) != len(sync.written):
                # Also when a peer changed the outputs under us: write them all again.
                del youtputs[:]
                sync.written = []
                sync.reset = False
            written = sync.written
            for index, output in enumerate(outputs):
                if index < len(written):
                    if output is written[index]:
                        continue
                    _update_youtput(youtputs[index], written[index], whole.get(index, output))
                else:
                    youtputs.append(_make_youtput(whole.get(index, output)))
            sync.written = outputs
            if ycell.get("execution_count") != entry.execution_count:
                ycell["execution_count"] = entry.execution_count
            if ycell.get("execution_state") != sync.execution_state:
                ycell["execution_state"] = sync.execution_state
            timing = self._timing(entry)
            ymetadata = ycell.get("metadata")
            if timing is not None and isinstance(ymetadata, Map):
                if ymetadata.get("execution") != timing:
                    ymetadata["execution"] = timing

    def _update_settled(
        self,
        sync: CellSync,
        youtputs: Any,
        outputs: list[dict[str, Any]],
        whole: dict[int, dict[str, Any]],
    ) -> None:
        """Apply display updates to a finished cell's outputs, in place."""
        if not isinstance(youtputs, Array) or len(youtputs) != len(outputs):
            # A peer cleared or changed the outputs: they are theirs now; stop following.
            self._detach(sync)
            if self._shown.get((sync.path, sync.cell_id)) is sync:
                del self._shown[(sync.path, sync.cell_id)]
            return
        written = sync.written if len(sync.written) == len(outputs) else []
        for index, output in enumerate(outputs):
            if output.get("output_type") == "stream":
                continue  # only display outputs change once the cell finished
            if index < len(written) and output is written[index]:
                continue
            _update_youtput(youtputs[index], output, whole.get(index, output))
        sync.written = outputs

    # -- widget state ---------
    async def store_widgets(self, path: str, kernel_id: str) -> None:
        """Write the kernel's widget state into ``metadata.widgets`` (a run ended)."""
        widgets = self.service.queue.widget_state(kernel_id)
        if widgets is None:
            return
        live = await self.service.live_document(path)
        if live is None:
            self._widgets_due[path] = kernel_id
            self._ensure_file_flush(path, soon=True)
            return
        value = copy.deepcopy(widgets)
        cast_all(value, int, float)  # numbers are floats in the shared document
        with live.ydoc.transaction(origin=WRITER_ORIGIN):
            ymeta = live.ydoc.get("meta", type=Map)
            metadata = ymeta.get("metadata")
            if isinstance(metadata, Map):
                metadata["widgets"] = value
            else:
                ymeta["metadata"] = Map({"widgets": value})

    # -- the file ---------
    def _ensure_file_flush(self, path: str, soon: bool) -> None:
        task = self._file_tasks.get(path)
        if task is not None and not task.done():
            return
        delay = 0.05 if soon else self.service.file_flush_interval
        self._file_tasks[path] = asyncio.get_running_loop().create_task(
            self._flush_file_later(path, delay)
        )

    async def _flush_file_later(self, path: str, delay: float) -> None:
        await asyncio.sleep(delay)
        while self._file_dirty.get(path) or path in self._widgets_due:
            try:
                await self._write_file(path)
            except Exception:
                self.log.exception("jupyter_canvas: could not save outputs into %s", path)
                await asyncio.sleep(self.service.file_flush_interval)
                continue
            if self._file_dirty.get(path) or path in self._widgets_due:
                await asyncio.sleep(self.service.file_flush_interval)
        self._file_tasks.pop(path, None)

    def _timing(self, entry: Entry) -> dict[str, str] | None:
        """The ``metadata.execution`` to write for the entry's cell (None: leave it)."""
        if not self.service.record_timing or not entry.timing:
            return None
        return dict(entry.timing)

    async def upgrade_file_ids(self, path: str) -> NotebookCells:
        """Give the cells of a notebook file stable ids (saved when any was missing)."""
        stale = await self.file_needs_ids(path)
        upgraded: list[Any] = []

        def apply(notebook: Any) -> bool:
            upgraded[:] = [notebook]
            return normalize_model_ids(notebook) or stale

        result = await self.service.files.update(path, apply)
        if result.saved:
            self.log.info("jupyter_canvas: gave the cells of %s stable ids", path)
        return cells_of_model(path, {"content": upgraded[0], "last_modified": result.last_modified})

    async def file_needs_ids(self, path: str) -> bool:
        """Whether the file as stored lacks cell ids or repeats one (read as text: the
        notebook model hides repeated ids behind random new ones, different at each read)."""
        files = self.service.files
        last_modified = await files.last_modified(path)
        if last_modified is not None and self._ids_checked.get(path) == last_modified:
            return False
        needs = raw_needs_ids(await files.read_text(path))
        self._ids_checked.pop(path, None)
        if not needs and last_modified is not None:
            self._ids_checked[path] = last_modified
            while len(self._ids_checked) > _IDS_CHECKED_CAP:
                self._ids_checked.pop(next(iter(self._ids_checked)))
        return needs

    async def update_notebook_metadata(self, path: str, values: dict[str, Any]) -> None:
        """Set top-level keys of the notebook's metadata (live document, else the file)."""
        live = await self.service.live_document(path)
        if live is not None:
            with live.ydoc.transaction(origin=WRITER_ORIGIN):
                ymetadata = live._ymeta.get("metadata")
                if isinstance(ymetadata, Map):
                    for key, value in values.items():
                        if ymetadata.get(key) != value:
                            ymetadata[key] = value
                    return

        def apply(notebook: Any) -> bool:
            metadata = notebook.setdefault("metadata", nbformat.NotebookNode())
            if all(metadata.get(key) == value for key, value in values.items()):
                return False
            metadata.update(nbformat.from_dict(values))
            return True

        await self.service.files.update(path, apply)

    async def _write_file(self, path: str) -> None:
        dirty = self._file_dirty.pop(path, {})
        kernel_id = self._widgets_due.pop(path, None)
        if kernel_id is None and dirty:
            kernel_id = next(iter(dirty.values())).entry.kernel_id
        if kernel_id is None:
            return
        # Each save of a notebook nobody has open carries its kernel's widgets, as nbclient's.
        widgets = self.service.queue.widget_state(kernel_id)

        async def apply(notebook: Any) -> bool:
            # Applied by cell id onto the notebook as it is on disk now (again when it
            # changed under us): a cell deleted meanwhile keeps its outputs only in the API.
            changed = False
            for cell in notebook.cells:
                sync = dirty.get(cell.get("id"))
                if sync is None or cell.cell_type != "code":
                    continue
                # Large outputs are kept whole only in the blob store: the file gets them whole.
                outputs = [await self._whole(o) for o in sync.entry.outputs.to_json()]
                cell.outputs = [nbformat.from_dict(o) for o in outputs]
                cell.execution_count = sync.entry.execution_count
                timing = self._timing(sync.entry)
                if timing is not None:
                    cell.setdefault("metadata", nbformat.NotebookNode())["execution"] = timing
                changed = True
            if widgets is not None and notebook.metadata.get("widgets") != widgets:
                notebook.metadata["widgets"] = widgets
                changed = True
            return changed

        try:
            await self.service.files.update(path, apply)
        except web.HTTPError as err:
            if err.status_code != 404:
                self._keep_dirty(path, dirty, kernel_id)
                raise
            self._gone(path, dirty)
        except BaseException:
            self._keep_dirty(path, dirty, kernel_id)
            raise
        for sync in dirty.values():
            if sync.finished and self._cells.get((sync.path, sync.cell_id)) is sync:
                del self._cells[(sync.path, sync.cell_id)]

    def _gone(self, path: str, dirty: dict[str, CellSync]) -> None:
        """The notebook is no longer at ``path``: moved (follow it) or deleted."""
        moved_to: str | None = None
        for sync in dirty.values():
            try:
                moved_to = self.service.follow(sync.entry)
            except Exception:
                moved_to = None
            if moved_to is not None and moved_to != path:
                break
        if moved_to is not None and moved_to != path:
            # Renamed under our write: the syncs were moved by ``repath``; keep them pending.
            kernel_id = next(iter(dirty.values())).entry.kernel_id
            self._keep_dirty(moved_to, {sync.cell_id: sync for sync in dirty.values()}, kernel_id)
            self._ensure_file_flush(moved_to, soon=True)
            return
        self.log.warning(
            "jupyter_canvas: %s is gone; outputs of %d cell(s) kept only in the API",
            path,
            len(dirty),
        )

    def repath(self, old: str, new: str) -> None:
        """Cells of the notebook ``old`` (or of a folder) are now written to ``new``."""

        def moved(path: str) -> str | None:
            if path == old:
                return new
            if path.startswith(old + "/"):
                return new + path[len(old) :]
            return None

        for table in (self._cells, self._shown):
            for key, sync in list(table.items()):
                target = moved(key[0])
                if target is None:
                    continue
                del table[key]
                sync.path = target
                table[(target, sync.cell_id)] = sync
        for path in list(self._widgets_due):
            target = moved(path)
            if target is not None:
                self._widgets_due.setdefault(target, self._widgets_due.pop(path))
        for path in list(self._file_dirty):
            target = moved(path)
            if target is None:
                continue
            dirty = self._file_dirty.pop(path)
            if dirty:
                self._keep_dirty(target, dirty, next(iter(dirty.values())).entry.kernel_id)
            self._ensure_file_flush(target, soon=True)

    def _keep_dirty(self, path: str, dirty: dict[str, CellSync], kernel_id: str) -> None:
        """Not written: keep them pending (newer changes of the same cells win)."""
        self._widgets_due.setdefault(path, kernel_id)
        pending = self._file_dirty[path]
        for cell_id, sync in dirty.items():
            pending.setdefault(cell_id, sync)

    async def flush_all(self) -> None:
        """Write everything pending now (the server is stopping)."""
        for sync in list(self._cells.values()):
            if sync.handle is not None:
                sync.handle.cancel()
                sync.handle = None
            with contextlib.suppress(Exception):
                await self._flush(sync)
        for path in list(self._file_dirty):
            task = self._file_tasks.pop(path, None)
            if task is not None:
                task.cancel()
            with contextlib.suppress(Exception):
                await self._write_file(path)

    @property
    def pending_files(self) -> int:
        """How many notebooks have outputs waiting to be written to their file."""
        return sum(1 for dirty in self._file_dirty.values() if dirty)


def _make_youtput(output: dict[str, Any]) -> Map:
    value = dict(output)
    if value.get("output_type") == "stream":
        value["text"] = Text(str(value.get("text", "")))
    return Map(value)


def _update_youtput(ymap: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    if (
        new.get("output_type") == "stream"
        and old.get("output_type") == "stream"
        and isinstance(ymap.get("text"), Text)
    ):
        ytext: Text = ymap["text"]
        old_text, new_text = str(old.get("text", "")), str(new.get("text", ""))
        if new_text.startswith(old_text):
            ytext += new_text[len(old_text) :]
            return
        common = _common_prefix(old_text, new_text)
        # pycrdt indexes text by UTF-8 byte.
        del ytext[len(old_text[:common].encode()) :]
        ytext += new_text[common:]
        return
    for key, value in new.items():
        if key != "output_type" and ymap.get(key) != value:
            ymap[key] = value


def _common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    index = 0
    step = 4096
    while index + step <= limit and a[index : index + step] == b[index : index + step]:
        index += step
    while index < limit and a[index] == b[index]:
        index += 1
    return index
