"""Shared pieces of the canvas tests: server config, notebooks on disk, a pycrdt room client.

No tests here; the canvas test modules import what they need.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.auth.authorizer import Authorizer
from pycrdt import Doc, Map, Provider
from tornado.websocket import WebSocketClientConnection
from traitlets.config import Config

CANVAS_EXTENSIONS = {
    "jupyter_canvas": True,
    "jupyter_server_fileid": True,
    "jupyter_server_ydoc": True,
}


class HeaderRoleAuthorizer(Authorizer):
    """Test authorizer: a request with ``X-Canvas-Role: reader`` may only read."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """Readers read; everyone else may do anything."""
        role = handler.request.headers.get("X-Canvas-Role")
        return not (role == "reader" and action != "read")


def canvas_server_config(
    base: Any, root: Path, rooms: dict[str, Any], ydoc: dict[str, Any] | None = None
) -> Any:
    """Extend the shared server config with what the canvas tests need.

    The collaboration stores live outside the root so they never show up as contents.
    """
    config = base
    config["ServerApp"]["authorizer_class"] = HeaderRoleAuthorizer
    config["CanvasRoomManager"] = Config(rooms)
    config["SQLiteYStore"] = Config({"db_path": str(root.parent / "ystore.db")})
    config["BaseFileIdManager"] = Config(
        {
            "root_dir": str(root),
            "db_path": str(root.parent / "fileid.db"),
            "db_journal_mode": "OFF",
        }
    )
    config["YDocExtension"] = Config({"document_save_delay": 0.5, **(ydoc or {})})
    return config


def md(cell_id: str, source: str, **metadata: Any) -> Any:
    """A markdown cell with an id."""
    return nbformat.v4.new_markdown_cell(source, id=cell_id, metadata=metadata)


def code(cell_id: str, source: str = "pass", **metadata: Any) -> Any:
    """A code cell with an id."""
    return nbformat.v4.new_code_cell(source, id=cell_id, metadata=metadata)


def sections_notebook(root: Path, name: str, section_b: str = "## B") -> Path:
    """The notebook most canvas tests use: headings A, B (a subsection), C, each with a code
    cell (x, y, z); ``section_b`` is B's markdown.
    """
    return write_notebook(
        root,
        name,
        [md("A", "# A"), code("x"), md("B", section_b), code("y"), md("C", "# C"), code("z")],
    )


def write_notebook(root: Path, name: str, cells: list[Any]) -> Path:
    """Write an nbformat 4.5 notebook with these cells under the root."""
    notebook = nbformat.v4.new_notebook(cells=cells)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(notebook), encoding="utf-8")
    return path


def stored_places(path: Path) -> dict[str, Any]:
    """Cell id → ``metadata.jupyter_canvas`` of the cells that have one, read from disk.

    The contents manager rewrites the file in place, so a read can catch it half written:
    that reads as no places (callers wait for what they expect).
    """
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {
        cell["id"]: cell["metadata"]["jupyter_canvas"]
        for cell in notebook["cells"]
        if "jupyter_canvas" in cell.get("metadata", {})
    }


async def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> float:
    """Wait until ``predicate()`` is true; return the seconds it took (fails at the timeout)."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class ClientChannel:
    """A pycrdt ``Channel`` over a tornado websocket client connection."""

    def __init__(self, connection: WebSocketClientConnection, path: str) -> None:
        self.connection = connection
        self._path = path
        #: Messages that are not sync or awareness (e.g. the auth "permission denied").
        self.other_messages: list[bytes] = []

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> ClientChannel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            message = await self.connection.read_message()
            if message is None:
                raise StopAsyncIteration
            data = message.encode() if isinstance(message, str) else bytes(message)
            if data and data[0] > 1:
                self.other_messages.append(data)
                continue
            return data

    async def recv(self) -> bytes:
        return await self.__anext__()

    async def send(self, message: bytes) -> None:
        try:
            await self.connection.write_message(message, binary=True)
        except Exception:
            pass


class CanvasPeer:
    """A pycrdt client of a canvas room."""

    def __init__(self, doc: Doc, channel: ClientChannel) -> None:
        self.doc = doc
        self.channel = channel
        self.cells = doc.get("cells", type=Map)
        self.np_graph = doc.get("np_graph", type=Map)
        self.pc_graph = doc.get("pc_graph", type=Map)
        self.notebook = doc.get("notebook", type=Map)

    def move(self, cell_id: str, **fields: Any) -> None:
        """Set fields of a cell's place, as a canvas front end does when dragging."""
        entry = self.cells[cell_id]
        with self.doc.transaction():
            for name, value in fields.items():
                entry[name] = value if isinstance(value, bool) else float(value)

    def place(self, cell_id: str) -> Any:
        """The cell's place (a dict), or None when the room has none for it."""
        entry = self.cells.get(cell_id)
        return None if entry is None else entry.to_py()

    def graph(self, name: str) -> dict[str, list[str]]:
        return getattr(self, name).to_py() or {}


@asynccontextmanager
async def room_peer(
    ws_fetch: Callable[..., Any], file_id: str, headers: dict[str, str] | None = None
) -> AsyncIterator[CanvasPeer]:
    """Join a canvas room with pycrdt's provider; leaves on exit."""
    connection = await ws_fetch("api", "canvas", "room", file_id, headers=headers or {})
    async with peer_on(connection, file_id) as peer:
        yield peer


@asynccontextmanager
async def peer_on(connection: WebSocketClientConnection, file_id: str) -> AsyncIterator[CanvasPeer]:
    """A pycrdt client of the canvas room open on ``connection``; closes it on exit."""
    channel = ClientChannel(connection, file_id)
    doc: Doc[Any] = Doc()
    try:
        async with Provider(doc, channel) as provider:
            await asyncio.wait_for(provider.synced.wait(), 10)
            yield CanvasPeer(doc, channel)
    finally:
        connection.close()


@pytest.fixture
def jp_server_config(
    jp_server_config: Any, jp_root_dir: Path, canvas_room_config: Any, canvas_ydoc_config: Any
) -> Any:
    """The shared config plus the extensions and settings of the canvas, and collaboration
    stores outside the root.

    A canvas test module imports this fixture (and those it uses below); the
    ``canvas_room_config`` and ``canvas_ydoc_config`` it reads are in conftest.py.
    """
    config = canvas_server_config(
        jp_server_config, jp_root_dir, canvas_room_config, canvas_ydoc_config
    )
    # The canvas needs jupyter_server_fileid (file ids) and jupyter_server_ydoc (live docs).
    config["ServerApp"]["jpserver_extensions"] = dict(CANVAS_EXTENSIONS)
    return config


@pytest.fixture
def canvas_manager(jp_serverapp: Any) -> Any:
    """The server's canvas room manager."""
    from jupyter_canvas.base import SERVICES_KEY

    return jp_serverapp.web_app.settings[SERVICES_KEY].extras["canvas"]


@pytest.fixture
def file_saves(jp_serverapp: Any) -> list[tuple[float, str]]:
    """Every save through the contents manager: ``(monotonic time, path)``."""
    saves: list[tuple[float, str]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if data.get("action") == "save":
            saves.append((time.monotonic(), data.get("path", "")))

    jp_serverapp.event_logger.add_listener(
        schema_id="https://events.jupyter.org/jupyter_server/contents_service/v1",
        listener=listener,
    )
    return saves
