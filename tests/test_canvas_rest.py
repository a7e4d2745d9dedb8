"""GET and PATCH /api/canvas/layout/<path>: answers, errors, and moves reaching the file."""

# Fixtures are imported from test_canvas_support, so their names are "redefined" here.

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_canvas_support import (  # noqa: F401  (fixtures)
    code,
    jp_server_config,
    md,
    sections_notebook,
    stored_places,
    wait_until,
    write_notebook,
)


@pytest.fixture
def notebook(jp_root_dir: Path) -> Path:
    return sections_notebook(jp_root_dir, "sub dir/analysis.ipynb", "## B\nsome text")


async def test_get_layout_defaults_and_graphs(api: Any, notebook: Path) -> None:
    status, layout = await api("GET", "api", "canvas", "layout", "sub dir/analysis.ipynb")
    assert status == 200, layout
    assert layout["path"] == "sub dir/analysis.ipynb"
    assert layout["file_id"]
    assert layout["room"] == f"api/canvas/room/{layout['file_id']}"
    assert list(layout["cells"]) == ["A", "x", "B", "y", "C", "z"]
    # No stored place: a column per top-level heading group, 600 x 120, 20 apart, with room
    # for the frames (B's group nests in A's); none of them placed by anyone.
    places = {c: (p["x"], p["y"]) for c, p in layout["cells"].items()}
    assert places == {
        "A": (20, 20),
        "x": (20, 160),
        "B": (40, 320),
        "y": (40, 460),
        "C": (780, 20),
        "z": (780, 160),
    }
    assert layout["cells"]["A"] == {
        "x": 20,
        "y": 20,
        "width": 600,
        "height": 120,
        "collapsed": False,
        "placed": False,
    }
    assert layout["pc_graph"] == {"A": ["x", "B"], "B": ["y"], "C": ["z"]}
    assert layout["np_graph"] == {"A": ["C"], "C": []}
    # Reading does not write anything.
    assert stored_places(notebook) == {}


async def test_get_layout_reads_ganimede_metadata(api: Any, jp_root_dir: Path) -> None:
    write_notebook(
        jp_root_dir,
        "gm.ipynb",
        [
            code("a", gm={"top": 40, "left": 300, "width": 500, "height": 90}),
            code("b", gm={"top": 1, "left": 1}, jupyter_canvas={"x": 9, "y": 8, "collapsed": True}),
            code("c", gm={"left": "nope"}),
        ],
    )
    status, layout = await api("GET", "api", "canvas", "layout", "gm.ipynb")
    assert status == 200, layout
    cells = layout["cells"]
    assert cells["a"] == {
        "x": 300,
        "y": 40,
        "width": 500,
        "height": 90,
        "collapsed": False,
        "placed": True,
    }
    assert cells["b"] == {
        "x": 9,
        "y": 8,
        "width": 600,
        "height": 120,
        "collapsed": True,
        "placed": True,
    }
    # Unreadable Ganimede metadata: a default place (third in the column of unheaded cells).
    assert cells["c"] == {
        "x": 0,
        "y": 280,
        "width": 600,
        "height": 120,
        "collapsed": False,
        "placed": False,
    }


async def test_get_layout_errors(api: Any, jp_root_dir: Path, tmp_path: Path) -> None:
    (jp_root_dir / "notes.txt").write_text("hello")
    (jp_root_dir / "folder").mkdir()
    outside = write_notebook(tmp_path, "outside.ipynb", [code("a")])
    os.symlink(outside, jp_root_dir / "link.ipynb")

    status, body = await api("GET", "api", "canvas", "layout", "missing.ipynb")
    assert status == 404 and "no notebook at 'missing.ipynb'" in body["message"]
    status, body = await api("GET", "api", "canvas", "layout", "notes.txt")
    assert status == 400 and "not a notebook" in body["message"]
    status, body = await api("GET", "api", "canvas", "layout", "folder")
    assert status == 400 and "not a notebook" in body["message"]
    status, body = await api("GET", "api", "canvas", "layout", "link.ipynb")
    assert status == 404, body
    status, body = await api("GET", "api/canvas/layout/../outside.ipynb")
    assert status == 400 and "'..'" in body["message"], body
    status, body = await api("GET", "api/canvas/layout/x/../../outside.ipynb")
    assert status == 400 and "'..'" in body["message"], body
    status, body = await api("GET", "api/canvas/layout/" + str(outside))
    assert status == 400 and "relative to the server root" in body["message"], body


async def test_unauthenticated_and_read_only_requests(api: Any, notebook: Path) -> None:
    path = ("api", "canvas", "layout", "sub dir/analysis.ipynb")
    status, _ = await api("GET", *path, headers={"Authorization": ""})
    assert status == 403
    status, _ = await api("GET", *path, headers={"X-Canvas-Role": "reader"})
    assert status == 200
    status, _ = await api(
        "PATCH", *path, body={"cells": {"x": {"x": 1}}}, headers={"X-Canvas-Role": "reader"}
    )
    assert status == 403


async def test_patch_moves_reach_the_file(api: Any, notebook: Path) -> None:
    path = ("api", "canvas", "layout", "sub dir/analysis.ipynb")
    status, layout = await api(
        "PATCH", *path, body={"cells": {"x": {"x": 40, "y": 320}, "B": {"collapsed": True}}}
    )
    assert status == 200, layout
    assert layout["cells"]["x"] == {
        "x": 40,
        "y": 320,
        "width": 600,
        "height": 120,
        "collapsed": False,
        "placed": True,  # moved: placed by someone, laid out by no one
    }
    assert layout["cells"]["B"]["collapsed"] is True
    assert layout["cells"]["B"]["placed"] is False  # folded, not moved
    # GET answers from the open room.
    status, again = await api("GET", *path)
    assert again["cells"] == layout["cells"]
    await wait_until(lambda: set(stored_places(notebook)) == {"x", "B"}, what="moves on disk")
    stored = stored_places(notebook)
    assert stored["x"] == {"x": 40, "y": 320, "width": 600, "height": 120, "collapsed": False}
    # A default place is stored with "placed": false (a moved one without the field).
    assert stored["B"] == {
        "x": 40,
        "y": 320,
        "width": 600,
        "height": 120,
        "collapsed": True,
        "placed": False,
    }


async def test_patch_errors_change_nothing(api: Any, notebook: Path) -> None:
    path = ("api", "canvas", "layout", "sub dir/analysis.ipynb")
    status, body = await api("PATCH", *path, body={"cells": {"x": {"x": 1}, "nope": {"x": 2}}})
    assert status == 404 and "'nope'" in body["message"], body
    status, body = await api("PATCH", *path, body={"cells": {"x": {"width": -3}}})
    assert status == 400 and "width must be a number" in body["message"], body
    status, body = await api("PATCH", *path, body="not json")
    assert status == 400, body
    status, body = await api(
        "PATCH", "api", "canvas", "layout", "gone.ipynb", body={"cells": {"a": {"x": 1}}}
    )
    assert status == 404, body
    status, layout = await api("GET", *path)
    assert (layout["cells"]["x"]["x"], layout["cells"]["x"]["placed"]) == (20, False)
    assert stored_places(notebook) == {}
