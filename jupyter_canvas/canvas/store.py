"""Where canvas places are persisted: ``metadata.jupyter_canvas`` of each notebook cell.

A write goes through the notebook's live shared document when the notebook is open for
collaboration (jupyter_server_ydoc then saves it with its own autosave, so the two never
fight over the file), else into the file through
:class:`~jupyter_canvas.notebook.files.NotebookFiles` (locked, atomic, never clobbering).
"""

from __future__ import annotations

from dataclasses import dataclass
from logging import Logger
from typing import Any

from tornado import web

from .layout import CANVAS_METADATA_KEY, CellPlace, NotebookCell, PlaceDefaults
from .shared_notebook import SharedNotebooks, set_live_cell_metadata

#: The origin of the transactions the canvas makes in a notebook's live document.
LIVE_ORIGIN = "jupyter_canvas"


@dataclass(frozen=True)
class LayoutSnapshot:
    """A notebook's cells as the canvas sees them, at one moment."""

    path: str
    cells: list[NotebookCell]
    #: The live ``YNotebook`` the cells came from, or None when they came from the file.
    live: Any
    last_modified: Any


@dataclass(frozen=True)
class WriteResult:
    """What a write of places did."""

    #: The cells whose metadata now holds the place (cells no longer in the notebook are not).
    written: set[str]
    #: The file's ``last_modified`` after a write through the contents manager, else None.
    last_modified: Any
    #: Whether the write went into the live document (the file follows with its autosave).
    live: bool


class LayoutStore:
    """Loads a notebook's cells and writes places into their metadata."""

    def __init__(self, shared: SharedNotebooks, defaults: PlaceDefaults, log: Logger) -> None:
        self.shared = shared
        self.defaults = defaults
        self.log = log

    def path_of(self, file_id: str) -> str:
        """The notebook's current path (renames are followed), or 404."""
        path = self.shared.path_of(file_id)
        if path is None:
            raise web.HTTPError(404, f"no notebook has the file id {file_id!r}")
        return path

    async def load(self, file_id: str) -> LayoutSnapshot:
        """Read the notebook's cells (live document first, else the file)."""
        path = self.path_of(file_id)
        read = await self.shared.read_cells(path, file_id)
        cells: list[NotebookCell] = []
        seen: set[str] = set()
        for index, raw in enumerate(read.cells):
            # nbformat < 4.5 has no cell ids: such cells get a positional key and their
            # moves are not persisted (there is no id to find them by in the file).
            cell_id = raw.id or f"cell-{index}"
            if cell_id in seen:
                continue
            seen.add(cell_id)
            cells.append(
                NotebookCell.from_parts(
                    cell_id, raw.cell_type, raw.source, raw.metadata, self.defaults
                )
            )
        return LayoutSnapshot(path, cells, read.live, read.last_modified)

    async def last_modified(self, file_id: str) -> Any:
        """The file's ``last_modified``, to notice changes made out of band."""
        return await self.shared.last_modified(self.path_of(file_id))

    async def write_places(
        self, file_id: str, places: dict[str, CellPlace], *, final: bool = False
    ) -> WriteResult:
        """Store ``places`` in the cells' ``metadata.jupyter_canvas``.

        With ``final`` (the server is stopping) a write into the live document is also saved
        to the file at once: jupyter_server_ydoc stops its rooms without a last save.
        """
        live = await self.shared.live_notebook(file_id)
        if live is not None:
            values = {cell_id: place.to_metadata(y=True) for cell_id, place in places.items()}
            written = set_live_cell_metadata(live, values, CANVAS_METADATA_KEY, LIVE_ORIGIN)
            if final and not await self._save_live_now(file_id, live):
                # jupyter_server_ydoc is already gone: write the places into the file ourselves.
                return await self._write_file(file_id, places, live_allowed=False)
            return WriteResult(written, None, True)
        return await self._write_file(file_id, places)

    async def _write_file(
        self, file_id: str, places: dict[str, CellPlace], *, live_allowed: bool = True
    ) -> WriteResult:
        path = self.path_of(file_id)
        opened: list[Any] = []

        async def apply(notebook: Any) -> set[str]:
            written: set[str] = set()
            for cell in notebook.get("cells", []):
                cell_id = cell.get("id")
                if cell_id in places:
                    metadata = cell.setdefault("metadata", {})
                    value = places[cell_id].to_metadata()
                    if metadata.get(CANVAS_METADATA_KEY) != value:
                        metadata[CANVAS_METADATA_KEY] = value
                    written.add(cell_id)
            # The notebook may have been opened for collaboration while we read it: then its
            # room owns the file, and the places go into the live document instead.
            live = await self.shared.live_notebook(file_id) if written and live_allowed else None
            if live is not None:
                opened[:] = [live, written]
                return set()
            return written

        result = await self.shared.files.update(path, apply)
        if opened:
            live, cells = opened
            values = {cell_id: places[cell_id].to_metadata(y=True) for cell_id in cells}
            done = set_live_cell_metadata(live, values, CANVAS_METADATA_KEY, LIVE_ORIGIN)
            return WriteResult(done, None, True)
        if result.saved:
            self.log.debug("canvas: wrote %d place(s) to %s", len(result.value), path)
        return WriteResult(result.value, result.last_modified, False)

    async def _save_live_now(self, file_id: str, live: Any) -> bool:
        """Save the live document through jupyter_server_ydoc's own file loader.

        Its loader keeps track of the file's ``last_modified``, so saving through it does not
        look like an out-of-band change to the room. Returns whether the file was saved.
        """
        ydoc = self.shared.ydoc_extension()
        loaders = getattr(ydoc, "file_loaders", None)
        # Asking the mapping for a loader it no longer has would create one (and its poller).
        if loaders is None or file_id not in loaders:
            return False
        try:
            saved = await loaders[file_id].maybe_save_content(
                {"format": "json", "type": "notebook", "content": await live.aget()}
            )
        except Exception as err:  # out-of-band changes, file gone: let the caller write it
            self.log.warning(
                "canvas: could not save %s through its shared document: %s", file_id, err
            )
            return False
        return saved is not None
