"""The canvas room of one notebook: a Y document kept in step with the notebook's cells.

The document (see docs/canvas.md) holds:

- ``cells``: cell id → a Y map ``{x, y, width, height, collapsed}`` (peers write here);
- ``np_graph`` and ``pc_graph``: cell id → list of cell ids (the server writes these);
- ``notebook``: ``{path, order}``, the notebook's path and its cell ids in notebook order.

Peers move cells by setting keys of the maps in ``cells``; the room persists those moves into
the cells' metadata (debounced). The room follows the notebook: cells added, removed, moved or
turned into headings change ``cells`` and the graphs, and places changed in the notebook (a
file changed on disk, a peer of the notebook editing metadata) are loaded into the room.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from logging import Logger
from typing import Any

from pycrdt import Channel, Map, Subscription
from pycrdt.websocket import YRoom
from tornado import web

from .debounce import Debouncer
from .layout import (
    CellPlace,
    Graph,
    NotebookCell,
    PlaceDefaults,
    build_graphs,
    choose_place,
    default_places,
    layout_json,
)
from .store import LIVE_ORIGIN, LayoutSnapshot, LayoutStore

#: The origin of the room's own transactions: they are not moves to persist.
SERVER_ORIGIN = "jupyter_canvas.server"
#: The origin of moves made through ``PATCH /api/canvas/layout``.
REST_ORIGIN = "jupyter_canvas.rest"

#: Changes of a live notebook that cannot change the layout (outputs while a cell runs…).
_IRRELEVANT_CELL_KEYS = frozenset({"outputs", "execution_count", "execution_state", "attachments"})


@dataclass(frozen=True)
class RoomTiming:
    """How a room paces its work (seconds)."""

    save_delay: float = 1.0
    max_save_delay: float = 5.0
    poll_interval: float = 2.0
    notebook_settle: float = 0.2


def log_exception(exception: Exception, log: Logger) -> bool:
    """pycrdt-websocket exception handler: log and keep the room alive."""
    log.error("canvas room error", exc_info=exception)
    return True


class CanvasRoom(YRoom):
    """One notebook's canvas: its Y document, its peers, and its link to the notebook."""

    def __init__(
        self,
        file_id: str,
        store: LayoutStore,
        timing: RoomTiming,
        log: Logger,
    ) -> None:
        super().__init__(ready=True, log=log, exception_handler=log_exception)
        self.file_id = file_id
        self.store = store
        self.defaults: PlaceDefaults = store.defaults
        self.timing = timing
        self.path = ""
        #: Channels attached to the room (counted from the handshake, before ``serve``).
        self.peers: set[Channel] = set()
        self.cells_map = self.ydoc.get("cells", type=Map)
        self.np_map = self.ydoc.get("np_graph", type=Map)
        self.pc_map = self.ydoc.get("pc_graph", type=Map)
        self.notebook_map = self.ydoc.get("notebook", type=Map)

        self._order: list[str] = []
        self._np_graph: Graph = {}
        self._pc_graph: Graph = {}
        #: The place each cell's metadata held when last read or written (None: none stored).
        self._stored: dict[str, CellPlace | None] = {}
        #: The last valid place of each cell in the room (peers may write junk; it is ignored).
        self._places: dict[str, CellPlace] = {}
        #: Cells moved in the room and not yet persisted.
        self._moved: set[str] = set()
        #: Cells whose x or y a peer changed without saying ``placed``: placed on persisting.
        self._positioned: set[str] = set()
        self._last_modified: Any = None
        self._live: Any = None
        self._live_subscription: Subscription | None = None
        self._sync_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._persist = Debouncer(
            self._persist_moves, timing.save_delay, timing.max_save_delay, log
        )
        self._follow_notebook = Debouncer(
            self.refresh, timing.notebook_settle, timing.notebook_settle * 5, log
        )
        self._cells_subscription = self.cells_map.observe_deep(self._on_cells_changed)
        # The graphs and ``notebook`` belong to the server: a peer's edit is undone.
        self._server_owned = [
            (shared, shared.observe(self._on_server_owned_changed))
            for shared in (self.np_map, self.pc_map, self.notebook_map)
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Fill the document from the notebook and start following it."""
        await self.refresh()
        if self.timing.poll_interval > 0:
            self._watcher = asyncio.create_task(self._watch_notebook())

    async def close(self, *, save: bool = True) -> None:
        """Persist what is pending (with ``save``) and stop following the notebook."""
        if save:
            await self.flush()
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        await self._follow_notebook.settle()
        self._attach_live(None)
        self.cells_map.unobserve(self._cells_subscription)
        for shared, subscription in self._server_owned:
            shared.unobserve(subscription)

    async def flush(self, *, final: bool = False) -> None:
        """Persist pending moves now (``final``: the server is stopping)."""
        await self._persist.settle()
        await self._persist_moves(final=final)

    @property
    def has_unsaved_moves(self) -> bool:
        """Whether some moves have not reached the notebook yet."""
        return bool(self._moved) or self._persist.pending

    # -- the layout -----------------------------------------------------------------------------

    def layout(self) -> dict[str, Any]:
        """The contract's layout model, as the room holds it now."""
        places = {}
        for cell_id in self._order:
            place = self._place_in_room(cell_id)
            if place is not None:
                places[cell_id] = place
        return layout_json(self.path, self.file_id, places, self._np_graph, self._pc_graph)

    def has_cell(self, cell_id: str) -> bool:
        """Whether the notebook (as last read) has this cell."""
        return cell_id in self._places

    def move(self, moves: dict[str, dict[str, Any]]) -> None:
        """Apply moves (cell id → fields) as one change that every peer sees."""
        with self.ydoc.transaction(origin=REST_ORIGIN):
            for cell_id, fields in moves.items():
                entry = self.cells_map.get(cell_id)
                current = self._place_in_room(cell_id) or self.defaults.first()
                if ("x" in fields or "y" in fields) and "placed" not in fields:
                    fields = {**fields, "placed": True}  # moved: no longer a default place
                values = current.merged(fields).to_y()
                if isinstance(entry, Map):
                    _update_map(entry, {k: values[k] for k in fields})
                else:
                    self.cells_map[cell_id] = Map(values)

    def _place_in_room(self, cell_id: str) -> CellPlace | None:
        """The cell's place in the document, keeping the last valid value of each field."""
        base = self._places.get(cell_id)
        if base is None:
            return None
        entry = self.cells_map.get(cell_id)
        if isinstance(entry, Map):
            values = entry.to_py() or {}
        elif isinstance(entry, dict):
            values = entry
        else:
            return base
        place = base.merged(values)
        self._places[cell_id] = place
        return place

    # -- peers' moves -> the notebook ---------------------------------------------------------

    def _on_cells_changed(self, events: list[Any]) -> None:
        if not events or events[0].transaction.origin == SERVER_ORIGIN:
            return
        for event in events:
            path = getattr(event, "path", None) or []
            keys = set(getattr(event, "keys", {}))
            if path:
                self._moved.add(str(path[0]))
                if keys & {"x", "y"} and "placed" not in keys:
                    # A peer that does not know ``placed`` moved the cell: a chosen place.
                    self._positioned.add(str(path[0]))
            else:
                self._moved.update(str(key) for key in keys)
        self._persist.touch()

    def _on_server_owned_changed(self, event: Any) -> None:
        if event.transaction.origin != SERVER_ORIGIN:
            self._follow_notebook.touch()

    async def _persist_moves(self, *, final: bool = False) -> None:
        async with self._sync_lock:
            self._mark_placed()
            moved, self._moved = self._moved, set()
            places: dict[str, CellPlace] = {}
            for cell_id in moved:
                place = self._place_in_room(cell_id)
                if place is not None and place != self._stored.get(cell_id):
                    places[cell_id] = place
            if not places:
                return
            try:
                result = await self.store.write_places(self.file_id, places, final=final)
            except Exception as err:
                # Keep them: the next move, the room's release or the server's stop retries.
                self._moved |= set(places)
                if isinstance(err, web.HTTPError) and err.status_code == 404:
                    self.log.warning("canvas: %s is gone; moves not saved", self.path)
                    self._moved.clear()
                else:
                    self.log.error("canvas: could not save moves in %s", self.path, exc_info=err)
                return
            for cell_id in result.written:
                self._stored[cell_id] = places[cell_id]
            if result.last_modified is not None:
                self._last_modified = result.last_modified

    def _mark_placed(self) -> None:
        """Mark the cells peers moved without ``placed`` as placed, for every peer."""
        positioned, self._positioned = self._positioned, set()
        with self.ydoc.transaction(origin=SERVER_ORIGIN):
            for cell_id in positioned:
                entry = self.cells_map.get(cell_id)
                place = self._place_in_room(cell_id)
                if isinstance(entry, Map) and place is not None and not place.placed:
                    entry["placed"] = True
                    self._places[cell_id] = replace(place, placed=True)

    # -- the notebook -> the room -------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the notebook again and bring the room in line with it."""
        async with self._sync_lock:
            snapshot = await self.store.load(self.file_id)
            self._attach_live(snapshot.live)
            self._apply(snapshot)

    def _apply(self, snapshot: LayoutSnapshot) -> None:
        cells = snapshot.cells
        present = {cell.id for cell in cells}
        np_graph, pc_graph = build_graphs((cell.id, cell.heading_level) for cell in cells)
        order = [cell.id for cell in cells]
        with self.ydoc.transaction(origin=SERVER_ORIGIN):
            for cell_id in list(self.cells_map.keys()):
                if cell_id not in present:
                    del self.cells_map[cell_id]
            for cell_id in set(self._places) - present:
                self._places.pop(cell_id, None)
                self._stored.pop(cell_id, None)
                self._moved.discard(cell_id)
            fallback = default_places(
                [(cell.id, cell.heading_level) for cell in cells], self.defaults
            )
            for cell in cells:
                self._apply_cell(cell, fallback[cell.id])
            _update_graph(self.np_map, np_graph)
            _update_graph(self.pc_map, pc_graph)
            if self.notebook_map.get("path") != snapshot.path:
                self.notebook_map["path"] = snapshot.path
            if self.notebook_map.get("order") != order:
                self.notebook_map["order"] = order
        self.path = snapshot.path
        self._order = order
        self._np_graph, self._pc_graph = np_graph, pc_graph
        if snapshot.live is None:
            self._last_modified = snapshot.last_modified

    def _apply_cell(self, cell: NotebookCell, fallback: CellPlace) -> None:
        entry = self.cells_map.get(cell.id)
        if cell.id not in self._places or not isinstance(entry, Map):
            # A cell new to the room: its stored place, Ganimede's, or a default one (which
            # is not written to the notebook until the cell is moved).
            place = choose_place(cell, fallback)
            if isinstance(entry, Map):
                _update_map(entry, place.to_y())
            else:
                self.cells_map[cell.id] = Map(place.to_y())
            self._places[cell.id] = place
            self._stored[cell.id] = cell.stored
            return
        if cell.stored != self._stored.get(cell.id):
            # The metadata changed outside the room (file edited, notebook peer): it wins.
            self._stored[cell.id] = cell.stored
            if cell.stored is not None:
                chosen = choose_place(cell, fallback)
                _update_map(entry, chosen.to_y())
                self._places[cell.id] = chosen
                self._moved.discard(cell.id)
                return
        current = self._place_in_room(cell.id)
        if current is not None and not current.placed and cell.id not in self._moved:
            # A default place follows the notebook (a heading added above it moves it).
            _update_map(entry, {"x": fallback.x, "y": fallback.y})
            self._places[cell.id] = replace(current, x=fallback.x, y=fallback.y)

    def _attach_live(self, live: Any) -> None:
        """Follow the live notebook document (or stop following one)."""
        if live is self._live:
            return
        if self._live is not None and self._live_subscription is not None:
            try:
                self._live.ycells.unobserve(self._live_subscription)
            except Exception:  # its document is already gone
                pass
        self._live, self._live_subscription = live, None
        if live is not None:
            self._live_subscription = live.ycells.observe_deep(self._on_notebook_changed)

    def _on_notebook_changed(self, events: list[Any]) -> None:
        if events and events[0].transaction.origin == LIVE_ORIGIN:
            return  # our own writes of places: they change nothing the room shows
        for event in events:
            path = getattr(event, "path", None) or []
            if len(path) >= 2 and path[1] in _IRRELEVANT_CELL_KEYS:
                continue
            if len(path) == 1 and set(getattr(event, "keys", {})) <= _IRRELEVANT_CELL_KEYS:
                continue
            self._follow_notebook.touch()
            return

    async def _watch_notebook(self) -> None:
        """Notice the notebook opening or closing for collaboration, and out-of-band edits of
        its file (nothing announces those: the file's ``last_modified`` is looked at)."""
        while True:
            await asyncio.sleep(self.timing.poll_interval)
            try:
                live = await self.store.shared.live_notebook(self.file_id)
                if live is not self._live:
                    await self.refresh()
                elif live is None and not self._sync_lock.locked():
                    modified = await self.store.last_modified(self.file_id)
                    if modified != self._last_modified:
                        self.log.info("canvas: %s changed on disk; reloading its layout", self.path)
                        await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.log.debug("canvas: watching %s: %s", self.file_id, err)


def _update_map(target: Map, values: dict[str, Any]) -> None:
    """Set the keys whose value differs (never replace the map: peers hold it)."""
    for key, value in values.items():
        if target.get(key) != value:
            target[key] = value


def _update_graph(target: Map, graph: Graph) -> None:
    for key in list(target.keys()):
        if key not in graph:
            del target[key]
    for key, value in graph.items():
        if target.get(key) != value:
            target[key] = value
