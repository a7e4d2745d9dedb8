"""Reach a notebook the way the rest of the server sees it.

:class:`SharedNotebooks` resolves an API path safely, gives a notebook's file id, finds the
notebook's *live* shared document (the Y document jupyter_server_ydoc serves to JupyterLab)
when it is open, and reads the cells from it or else from the contents manager. Other concerns
can reuse it (e.g. to read the source of a cell "from the live document when the notebook is
open, else from the file").

jupyter_server_ydoc and jupyter_server_fileid load after this extension (extensions load in
alphabetical order), so both are looked up when first needed, never at import or setup time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from logging import Logger
from typing import Any

from jupyter_server.utils import ensure_async
from pycrdt import Map, Text
from tornado import web

from ..base import normalize_path
from ..notebook.files import NotebookFiles

#: jupyter_server_ydoc names a notebook's room ``<format>:<type>:<file id>``.
NOTEBOOK_ROOM_PREFIX = "json:notebook:"


@dataclass(frozen=True)
class RawCell:
    """One notebook cell as read from the live document or the file."""

    id: str | None
    cell_type: str
    source: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class NotebookCells:
    """The cells of a notebook, and where they were read from."""

    path: str
    cells: list[RawCell]
    #: The live shared document (a ``jupyter_ydoc.YNotebook``) they were read from, or None.
    live: Any
    #: The file's ``last_modified`` when read from the file (None when read from ``live``).
    last_modified: Any


class CanvasUnavailable(web.HTTPError):
    """The server lacks what the canvas needs (jupyter_server_fileid)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "canvas layouts need the jupyter_server_fileid server extension: enable it "
            "(it comes with jupyter-collaboration)",
        )


class SharedNotebooks:
    """Notebook access that agrees with JupyterLab's collaborative document when there is one."""

    def __init__(self, serverapp: Any, log: Logger) -> None:
        self._serverapp = serverapp
        self.log = log
        #: The server's one owner of notebook files: every read and write of ours goes there.
        self.files = NotebookFiles.of(serverapp, log)

    # -- the server's services, looked up when needed -------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The tornado settings shared by every extension."""
        return self._serverapp.web_app.settings  # type: ignore[no-any-return]

    @property
    def contents_manager(self) -> Any:
        """The server's contents manager."""
        return self._serverapp.contents_manager

    @property
    def file_id_manager(self) -> Any:
        """jupyter_server_fileid's manager; :class:`CanvasUnavailable` when it is not enabled."""
        manager = self.settings.get("file_id_manager")
        if manager is None:
            raise CanvasUnavailable()
        return manager

    def ydoc_extension(self) -> Any | None:
        """jupyter_server_ydoc's extension app, or None when it is not enabled."""
        manager = getattr(self._serverapp, "extension_manager", None)
        if manager is None:
            return None
        for app in manager.extension_apps.get("jupyter_server_ydoc", ()):
            if hasattr(app, "get_document"):
                return app
        return None

    # -- paths and file ids ------------------------------------------------------------------

    async def resolve_notebook(self, path: str) -> str:
        """Check an API path names a notebook under the server root; return it normalized.

        Answers 400 for a path that is absolute, climbs with ``..`` or is not a notebook, and
        404 for a notebook that does not exist, is hidden, or leaves the root through a link.
        """
        normalized = normalize_path(path)
        cm = self.contents_manager
        try:
            model = await ensure_async(cm.get(normalized, content=False))
        except web.HTTPError as err:
            if err.status_code == 404:
                raise web.HTTPError(404, f"no notebook at {normalized!r}") from None
            raise
        if model.get("type") != "notebook":
            raise web.HTTPError(
                400, f"{normalized!r} is a {model.get('type')}, not a notebook (.ipynb)"
            )
        await self._check_inside_root(normalized)
        return normalized

    async def _check_inside_root(self, path: str) -> None:
        """Refuse a file that a symbolic link places outside a local contents root."""
        root = getattr(self.contents_manager, "root_dir", None)
        if not isinstance(root, str):
            return

        def inside() -> bool:
            if not os.path.isdir(root):  # not a local directory: nothing to check
                return True
            real_root = os.path.realpath(root)
            real = os.path.realpath(os.path.join(root, *path.split("/")))
            return os.path.commonpath([real_root, real]) == real_root

        if not await asyncio.to_thread(inside):
            raise web.HTTPError(404, f"no notebook at {path!r} under the server root")

    def file_id(self, path: str) -> str:
        """The notebook's file id (indexed on first use)."""
        file_id = self.file_id_manager.index(path)
        if not file_id:
            raise web.HTTPError(404, f"no file id for {path!r}")
        return str(file_id)

    def path_of(self, file_id: str) -> str | None:
        """The current path of a file id (it follows renames), or None."""
        path = self.file_id_manager.get_path(file_id)
        return None if path is None else str(path)

    # -- the live shared document --------------------------------------------------------------

    def live_room(self, file_id: str) -> Any | None:
        """jupyter_server_ydoc's room of the notebook, if it is open and loaded."""
        ydoc = self.ydoc_extension()
        server = getattr(ydoc, "ywebsocket_server", None)
        if server is None:
            return None
        room = server.rooms.get(NOTEBOOK_ROOM_PREFIX + file_id)
        # A room still loading must not be written to: its content would be merged twice.
        if room is None or not getattr(room, "ready", False):
            return None
        return room

    async def live_notebook(self, file_id: str) -> Any | None:
        """The live ``YNotebook`` of the notebook when it is open for collaboration, else None.

        Never opens a room: a notebook nobody has open is read and written through the
        contents manager instead.
        """
        if self.live_room(file_id) is None:
            return None
        ydoc = self.ydoc_extension()
        assert ydoc is not None
        try:
            return await ydoc.get_document(room_id=NOTEBOOK_ROOM_PREFIX + file_id, copy=False)
        except Exception as err:  # the room went away between the two looks
            self.log.debug("no live document for %s: %s", file_id, err)
            return None

    # -- reading cells -------------------------------------------------------------------------

    async def read_cells(self, path: str, file_id: str) -> NotebookCells:
        """The notebook's cells, from the live document when it is open, else from the file."""
        live = await self.live_notebook(file_id)
        if live is not None:
            return NotebookCells(path, cells_of_live_notebook(live), live, None)
        return cells_of_model(path, await self.files.read(path))

    async def last_modified(self, path: str) -> Any:
        """The file's ``last_modified`` (a cheap look, no content)."""
        return await self.files.last_modified(path)


def cells_of_model(path: str, model: dict[str, Any]) -> NotebookCells:
    """The cells of a notebook model from the contents manager (read from the file)."""
    cells = [
        RawCell(
            id=cell.get("id"),
            cell_type=str(cell.get("cell_type", "")),
            source=_joined(cell.get("source", "")),
            metadata=dict(cell.get("metadata") or {}),
        )
        for cell in model["content"].get("cells", [])
    ]
    return NotebookCells(path, cells, None, model.get("last_modified"))


def _joined(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


@contextmanager
def _transaction(live: Any, origin: Any = None) -> Iterator[None]:
    with live.ydoc.transaction(origin=origin):
        yield


def cells_of_live_notebook(live: Any) -> list[RawCell]:
    """Read every cell of a live ``YNotebook`` in one transaction (a consistent snapshot)."""
    cells: list[RawCell] = []
    with _transaction(live):
        for ycell in live.ycells:
            source = ycell.get("source", "")
            metadata = ycell.get("metadata")
            if isinstance(metadata, Map):
                metadata_py = metadata.to_py() or {}
            elif isinstance(metadata, dict):
                metadata_py = metadata
            else:
                metadata_py = {}
            cell_id = ycell.get("id")
            cells.append(
                RawCell(
                    id=None if cell_id is None else str(cell_id),
                    cell_type=str(ycell.get("cell_type", "")),
                    source=str(source) if isinstance(source, Text) else _joined(source),
                    metadata=metadata_py,
                )
            )
    return cells


def set_live_cell_metadata(
    live: Any, values: dict[str, Any], key: str, origin: Any = None
) -> set[str]:
    """Set ``metadata[key]`` of the cells named in ``values`` (cell id → JSON value).

    Only that key of each cell's metadata map is set: the cell's maps and texts are never
    replaced, so JupyterLab's views of the cell keep working. Returns the ids written.
    """
    written: set[str] = set()
    with _transaction(live, origin):
        for ycell in live.ycells:
            cell_id = ycell.get("id")
            if cell_id not in values:
                continue
            metadata = ycell.get("metadata")
            if not isinstance(metadata, Map):
                # Not the YNotebook schema: leave this cell alone rather than replace its map.
                continue
            if metadata.get(key) != values[cell_id]:
                metadata[key] = values[cell_id]
            written.add(str(cell_id))
    return written
