"""The canvas rooms of the server: created on demand, freed when idle, saved on stop.

Rooms are hosted in a pycrdt-websocket ``WebsocketServer`` of our own rather than in the one
jupyter_server_ydoc runs: a room in that server would also be reachable through
``/api/collaboration/room/<name>``, which checks neither the Origin header nor write
permission, and that server stops its rooms without letting them save first.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from pycrdt import Channel
from pycrdt.websocket import WebsocketServer
from tornado import web
from traitlets import Float
from traitlets.config import LoggingConfigurable

from .layout import PlaceDefaults, build_graphs, initial_places, layout_json
from .room import CanvasRoom, RoomTiming, log_exception
from .shared_notebook import SharedNotebooks
from .store import LayoutStore


class CanvasRoomManager(LoggingConfigurable):
    """Creates, serves and frees the canvas rooms (one per notebook, keyed by file id)."""

    save_delay = Float(
        1.0,
        config=True,
        help="Seconds without a move before a room's moves are written to the notebook.",
    )
    max_save_delay = Float(
        5.0,
        config=True,
        help="Longest time (seconds) a move waits to be written while moves keep coming.",
    )
    idle_timeout = Float(
        60.0,
        config=True,
        help="Seconds a room stays open with no peer before it is saved and freed.",
    )
    poll_interval = Float(
        2.0,
        config=True,
        help="Seconds between looks at an open room's notebook file for out-of-band changes "
        "(0: never look).",
    )
    default_width = Float(600.0, config=True, help="Width of a cell that has no stored place.")
    default_height = Float(120.0, config=True, help="Height of a cell that has no stored place.")
    default_gap = Float(
        20.0, config=True, help="Vertical gap between stacked cells that have no stored place."
    )

    def __init__(self, serverapp: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared = SharedNotebooks(serverapp, self.log)
        self.defaults = PlaceDefaults(self.default_width, self.default_height, self.default_gap)
        self.store = LayoutStore(self.shared, self.defaults, self.log)
        self.timing = RoomTiming(
            save_delay=self.save_delay,
            max_save_delay=self.max_save_delay,
            poll_interval=self.poll_interval,
        )
        self.rooms: dict[str, CanvasRoom] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._server: WebsocketServer | None = None
        self._server_task: asyncio.Task[Any] | None = None
        self._stopping = False

    # -- the websocket server -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the websocket server the rooms run in (done on first use if not before)."""
        if self._stopping:
            return
        if self._server is not None:
            await self._server.started.wait()
            return
        self._server = WebsocketServer(
            rooms_ready=True,
            auto_clean_rooms=False,
            exception_handler=log_exception,
            log=self.log,
        )
        self._server_task = asyncio.create_task(self._server.start())
        await self._server.started.wait()

    async def stop(self) -> None:
        """Save every room's pending moves, then free the rooms and stop the server."""
        self._stopping = True
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        rooms = list(self.rooms.items())
        # Peers learn at once that the server is going (1001: going away), and send no more
        # moves while the rooms save.
        for _, room in rooms:
            for channel in list(room.peers):
                close = getattr(channel, "close_connection", None)
                if close is not None:
                    close(1001, "the server is stopping")
        results = await asyncio.gather(
            *(room.flush(final=True) for _, room in rooms), return_exceptions=True
        )
        for (file_id, _), result in zip(rooms, results, strict=True):
            if isinstance(result, BaseException):
                self.log.error("canvas: could not save room %s", file_id, exc_info=result)
        for file_id, _ in rooms:
            await self._free(file_id, save=False)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.stop(), 5)
            except Exception as err:
                self.log.debug("canvas: websocket server stop: %s", err)
            self._server = None

    # -- rooms ------------------------------------------------------------------------------------

    async def room_path(self, file_id: str) -> str:
        """The notebook path of a file id, checked like any path (404/400 otherwise)."""
        path = self.shared.path_of(file_id)
        if path is None:
            raise web.HTTPError(404, f"no notebook has the file id {file_id!r}")
        return await self.shared.resolve_notebook(path)

    async def get_room(self, file_id: str) -> CanvasRoom:
        """The notebook's room, created and loaded on first use."""
        async with self._locks[file_id]:
            return await self._get_room_locked(file_id)

    async def _get_room_locked(self, file_id: str) -> CanvasRoom:
        await self.start()
        if self._stopping or self._server is None:
            raise web.HTTPError(503, "the canvas is stopping with the server")
        room = self.rooms.get(file_id)
        if room is not None:
            return room
        room = CanvasRoom(file_id, self.store, self.timing, self.log)
        await room.load()
        self._server.rooms[f"canvas:{file_id}"] = room
        await self._server.start_room(room)
        self.rooms[file_id] = room
        self.log.info("canvas: opened the room of %s", room.path)
        self._schedule_idle(file_id)
        return room

    async def join(self, file_id: str, channel: Channel) -> CanvasRoom:
        """Attach a peer to the notebook's room (the room cannot be freed in between)."""
        async with self._locks[file_id]:
            room = await self._get_room_locked(file_id)
            room.peers.add(channel)
            timer = self._idle_timers.pop(file_id, None)
            if timer is not None:
                timer.cancel()
            return room

    def leave(self, room: CanvasRoom, channel: Channel) -> None:
        """Detach a peer; the room is freed once it has had none for ``idle_timeout``."""
        room.peers.discard(channel)
        if not room.peers and self.rooms.get(room.file_id) is room:
            self._schedule_idle(room.file_id)

    def _schedule_idle(self, file_id: str) -> None:
        if self._stopping:
            return
        previous = self._idle_timers.pop(file_id, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._idle_timers[file_id] = loop.call_later(
            self.idle_timeout, lambda: asyncio.ensure_future(self._free_if_idle(file_id))
        )

    async def _free_if_idle(self, file_id: str) -> None:
        async with self._locks[file_id]:
            self._idle_timers.pop(file_id, None)
            room = self.rooms.get(file_id)
            if room is None or room.peers:
                return
            await self._free_locked(file_id, save=True)

    async def _free(self, file_id: str, *, save: bool) -> None:
        async with self._locks[file_id]:
            await self._free_locked(file_id, save=save)

    async def _free_locked(self, file_id: str, *, save: bool) -> None:
        room = self.rooms.get(file_id)
        if room is None:
            return
        try:
            # Saved before it leaves ``rooms``: until then GET answers from the room, not
            # from a file that does not have the last moves yet.
            await room.close(save=save)
        finally:
            self.rooms.pop(file_id, None)
            if self._server is not None:
                self._server.rooms.pop(f"canvas:{file_id}", None)
            try:
                await room.stop()
            except RuntimeError:  # never started
                pass
        self.log.info("canvas: freed the room of %s", room.path)

    # -- REST -------------------------------------------------------------------------------------

    async def layout(self, path: str) -> dict[str, Any]:
        """The layout of a notebook (from its room when one is open)."""
        path = await self.shared.resolve_notebook(path)
        file_id = self.shared.file_id(path)
        room = self.rooms.get(file_id)
        if room is not None:
            return room.layout()
        snapshot = await self.store.load(file_id)
        places = initial_places(snapshot.cells, self.defaults)
        np_graph, pc_graph = build_graphs((c.id, c.heading_level) for c in snapshot.cells)
        return layout_json(snapshot.path, file_id, places, np_graph, pc_graph)

    async def move(self, path: str, moves: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Apply moves through the notebook's room (so its peers see them); the new layout."""
        path = await self.shared.resolve_notebook(path)
        file_id = self.shared.file_id(path)
        room = await self.get_room(file_id)
        unknown = [cell_id for cell_id in moves if not room.has_cell(cell_id)]
        if unknown:
            await room.refresh()  # the notebook may have gained the cell a moment ago
            unknown = [cell_id for cell_id in moves if not room.has_cell(cell_id)]
        if unknown:
            raise web.HTTPError(
                404, f"{path!r} has no cell with id {', '.join(repr(c) for c in unknown)}"
            )
        room.move(moves)
        return room.layout()
