"""The canvas and a notebook open for collaboration (jupyter_server_ydoc's live document)."""

# Fixtures are imported from test_canvas_support, so their names are "redefined" here.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Map
from test_canvas_support import (  # noqa: F401  (fixtures)
    canvas_manager,
    code,
    file_saves,
    jp_server_config,
    md,
    room_peer,
    sections_notebook,
    stored_places,
    wait_until,
    write_notebook,
)


@pytest.fixture
def notebook(jp_root_dir: Path) -> Path:
    return sections_notebook(jp_root_dir, "live.ipynb")


@pytest.fixture
def file_id(canvas_manager: Any, notebook: Path) -> str:
    return str(canvas_manager.shared.file_id("live.ipynb"))


async def open_live(canvas_manager: Any) -> Any:
    """Open the notebook for collaboration, as JupyterLab does, and return its YNotebook."""
    ydoc = canvas_manager.shared.ydoc_extension()
    assert ydoc is not None, "jupyter_server_ydoc is not loaded"
    live = await ydoc.get_document(
        path="live.ipynb", content_type="notebook", file_format="json", copy=False, create=True
    )
    assert live is not None
    return live


def live_cell(live: Any, cell_id: str) -> Any:
    for ycell in live.ycells:
        if ycell.get("id") == cell_id:
            return ycell
    return None


def live_place(live: Any, cell_id: str) -> Any:
    ycell = live_cell(live, cell_id)
    return None if ycell is None else ycell["metadata"].get("jupyter_canvas")


async def test_move_goes_through_the_live_document(
    jp_ws_fetch: Any, file_id: str, notebook: Path, canvas_manager: Any, file_saves: list
) -> None:
    live = await open_live(canvas_manager)
    changes: list[tuple[list, set]] = []
    live.ycells.observe_deep(
        lambda events: changes.extend((list(e.path), set(getattr(e, "keys", {}))) for e in events)
    )
    metadata_before = live_cell(live, "x")["metadata"]
    async with room_peer(jp_ws_fetch, file_id) as peer:
        peer.move("x", x=123, y=45)
        await wait_until(lambda: live_place(live, "x") is not None, what="the live metadata")
        assert live_place(live, "x") == {
            "x": 123.0,
            "y": 45.0,
            "width": 600.0,
            "height": 120.0,
            "collapsed": False,
        }
        # Only the jupyter_canvas key of the cell's metadata map was set: no map or text of
        # the cell was replaced, so JupyterLab's views of the cell keep working.
        assert changes == [([1, "metadata"], {"jupyter_canvas"})]
        metadata_after = live_cell(live, "x")["metadata"]
        assert isinstance(metadata_after, Map)
        metadata_before["probe"] = 1  # the map held before the move is still the cell's map
        assert metadata_after.get("probe") == 1
        del metadata_before["probe"]
        # jupyter_server_ydoc's autosave writes the file.
        await wait_until(lambda: "x" in stored_places(notebook), timeout=10, what="disk")
    assert stored_places(notebook)["x"] == {
        "x": 123,
        "y": 45,
        "width": 600,
        "height": 120,
        "collapsed": False,
    }


async def test_room_follows_live_edits(jp_ws_fetch: Any, file_id: str, canvas_manager: Any) -> None:
    live = await open_live(canvas_manager)
    async with room_peer(jp_ws_fetch, file_id) as peer:
        assert peer.graph("pc_graph") == {"A": ["x", "B"], "B": ["y"], "C": ["z"]}
        # A cell added at the end: a level-2 heading under C.
        live.append_cell({"cell_type": "markdown", "source": "## N", "id": "N", "metadata": {}})
        await wait_until(lambda: peer.place("N") is not None, what="the added cell")
        assert peer.graph("pc_graph") == {"A": ["x", "B"], "B": ["y"], "C": ["z", "N"], "N": []}
        # Its default place: in C's column, nested in C's frame.
        assert peer.place("N") == {
            "x": 800,
            "y": 320,
            "width": 600,
            "height": 120,
            "collapsed": False,
            "placed": False,
        }
        # A cell removed.
        del live.ycells[1]
        await wait_until(lambda: peer.place("x") is None, what="the removed cell")
        assert peer.graph("pc_graph")["A"] == ["B"]
        # A heading changes level: B becomes a top-level heading.
        live.set_cell(1, source="# B")
        await wait_until(lambda: "B" in peer.graph("np_graph"), what="the new heading level")
        assert peer.graph("pc_graph") == {"A": [], "B": ["y"], "C": ["z", "N"], "N": []}
        assert peer.graph("np_graph") == {"A": ["B"], "B": ["C"], "C": []}
        # A notebook peer edits the cell's metadata: the room takes the new place.
        y_metadata = live_cell(live, "y")["metadata"]
        y_metadata["jupyter_canvas"] = {"x": 7.0, "y": 8.0, "width": 9.0, "height": 10.0}
        await wait_until(lambda: peer.place("y")["x"] == 7, what="the metadata edit")
        assert peer.place("y") == {
            "x": 7,
            "y": 8,
            "width": 9,
            "height": 10,
            "collapsed": False,
            "placed": True,
        }
        assert peer.notebook.get("order") == ["A", "B", "y", "C", "z", "N"]


@pytest.mark.parametrize("canvas_room_config", [{"poll_interval": 0.2}])
async def test_notebook_opened_after_the_room(
    jp_ws_fetch: Any, file_id: str, notebook: Path, canvas_manager: Any, file_saves: list
) -> None:
    async with room_peer(jp_ws_fetch, file_id) as peer:
        peer.move("z", x=1)
        await wait_until(lambda: "z" in stored_places(notebook), what="the move in the file")
        live = await open_live(canvas_manager)
        assert live_place(live, "z")["x"] == 1
        saves_before = len(file_saves)
        # From now on moves go into the live document, and the room follows it.
        peer.move("z", x=2)
        await wait_until(lambda: live_place(live, "z")["x"] == 2, what="the move in the live doc")
        await wait_until(
            lambda: stored_places(notebook).get("z", {}).get("x") == 2, what="autosave"
        )
        live.append_cell({"cell_type": "code", "source": "", "id": "late", "metadata": {}})
        await wait_until(lambda: peer.place("late") is not None, what="the live cell")
        await asyncio.sleep(1)
        # Only jupyter_server_ydoc wrote the file (once per burst of changes), never both.
        assert 1 <= len(file_saves) - saves_before <= 3


@pytest.mark.parametrize("canvas_room_config", [{"save_delay": 30, "max_save_delay": 60}])
@pytest.mark.parametrize("canvas_ydoc_config", [{"document_save_delay": None}])
async def test_stop_saves_moves_of_a_live_notebook(
    jp_ws_fetch: Any, file_id: str, notebook: Path, canvas_manager: Any
) -> None:
    """Neither debounce fires here (ours is 30 s, the notebook's autosave is off): the moves
    reach the file because the canvas saves when the server stops."""
    live = await open_live(canvas_manager)
    async with room_peer(jp_ws_fetch, file_id) as peer:
        peer.move("y", x=-300)
        await wait_until(lambda: canvas_manager.rooms[file_id].has_unsaved_moves, what="move")
    await canvas_manager.stop()
    assert live_place(live, "y")["x"] == -300
    assert stored_places(notebook)["y"]["x"] == -300
