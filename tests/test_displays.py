"""Display ids across the notebook: an update reaches every output shown with its id.

As JupyterLab's kernel connection and nbclient do: ``update_display_data`` (and a new
``display_data`` with an id already shown) changes the outputs of *earlier* cells run on the
same kernel, in the entries, the events websocket, the live document and the file.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from pathlib import Path
from typing import Any

from test_canvas_support import code, wait_until, write_notebook
from test_notebook_run import (  # noqa: F401  (fixtures used by name)
    NOTEBOOK,
    canvas_extensions,
    jp_server_config,
    mode,
    notebook_peer,
    read_disk,
    run_cells,
    ws_connect,
)

from jupyter_canvas.outputs import OutputList
from jupyter_canvas.queue.displays import DisplayRegistry, display_id_of
from jupyter_canvas.queue.models import Entry
from jupyter_canvas.queue.routing import KernelOutputs
from jupyter_canvas.queue.widgets import WidgetTracker


def plain(output: dict[str, Any]) -> str:
    text = output["data"]["text/plain"]
    return "".join(text) if isinstance(text, list) else str(text)


def shown(name: str, value: str, msg_type: str = "display_data") -> dict[str, Any]:
    return {"data": {"text/plain": value}, "metadata": {}, "transient": {"display_id": name}}


# -- the pure parts -----------------------------------------------------------------------------


def test_registry_holds_entries_weakly() -> None:
    registry = DisplayRegistry()
    first, second = Entry("k", "", "me"), Entry("k", "", "me")
    registry.shown("d", first)
    registry.shown("d", second)
    assert set(registry.holders("d")) == {first, second}
    del first
    gc.collect()
    assert registry.holders("d") == [second]
    del second
    gc.collect()
    assert registry.holders("d") == []
    assert len(registry) == 0


def test_display_id_of_ignores_missing_or_null_transient() -> None:
    assert display_id_of("display_data", {"transient": None}) is None
    assert display_id_of("stream", {"transient": {"display_id": "x"}}) is None
    assert display_id_of("execute_result", {"transient": {"display_id": "x"}}) == "x"


def test_update_reaches_earlier_entries_and_is_published() -> None:
    published: list[tuple[str, str, str]] = []
    widgets = WidgetTracker(lambda c, p: None, schedule=lambda d, c: None)
    routes = KernelOutputs(lambda e, t, c: published.append((e.id, t, plain(c))), widgets)
    first = Entry("k", "", "me", outputs=OutputList())
    second = Entry("k", "", "me", outputs=OutputList())
    routes.apply(first, "display_data", shown("here", "1"))
    routes.apply(second, "display_data", shown("here", "2"))
    routes.apply(second, "update_display_data", shown("here", "3"))
    assert [plain(o) for o in first.outputs.to_json()] == ["3"]
    assert [plain(o) for o in second.outputs.to_json()] == ["3"]
    assert (first.id, "update_display_data", "3") in published
    # A cleared entry no longer shows the id: nothing to update there.
    first.outputs.clear()
    routes.apply(second, "update_display_data", shown("here", "4"))
    assert first.outputs.to_json() == []
    assert [plain(o) for o in second.outputs.to_json()] == ["4"]


# -- through the server -------------------------------------------------------------------------

CELLS = [
    code("show", "from IPython.display import display\nh = display('one', display_id='d1')"),
    code("update", "h.update('two')\nprint('updated')"),
    code("again", "_ = display('three', display_id='d1')"),
]


async def read_event(ws: Any, predicate: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no such event"
        text = await asyncio.wait_for(ws.read_message(), remaining)
        assert text is not None
        event = json.loads(text)
        if predicate(event):
            return event  # type: ignore[no-any-return]


def disk_outputs(root: Path, cell_id: str) -> list[str] | None:
    notebook = read_disk(root)
    if notebook is None:
        return None
    for cell in notebook["cells"]:
        if cell["id"] == cell_id:
            return [plain(o) for o in cell["outputs"] if "data" in o]
    raise AssertionError(cell_id)


async def test_display_update_across_cells(
    jp_serverapp: Any,
    api: Any,
    jp_root_dir: Path,
    jp_ws_fetch: Any,
    ws_connect: Any,  # noqa: F811
    mode: str,  # noqa: F811
) -> None:
    write_notebook(jp_root_dir, NOTEBOOK, CELLS)
    events = await jp_ws_fetch("api", "queue", "events", params={"path": NOTEBOOK})

    async def run_and_check(peer: Any) -> None:
        done = await run_cells(api, cell_ids=["show"])
        # Written and settled before the update comes from another cell.
        await wait_until(lambda: disk_outputs(jp_root_dir, "show") == ["'one'"], 20, "on disk")
        done += await run_cells(api, cell_ids=["update", "again"])
        assert [e["state"] for e in done] == ["done"] * 3
        show_id = done[0]["id"]
        _status, entry = await api("GET", "api", "queue", show_id)
        assert [plain(o) for o in entry["outputs"]] == ["'three'"]
        event = await read_event(
            events,
            lambda e: (
                e["type"] == "output"
                and e["entry_id"] == show_id
                and e["output"]["output_type"] == "update_display_data"
            ),
        )
        assert event["cell_id"] == "show"
        assert plain(event["output"]) == "'two'"  # the first update, sent while 'update' ran
        if peer is not None:
            await wait_until(
                lambda: [plain(o) for o in peer.cell("show")["outputs"]] == ["'three'"],
                10,
                "the update in the live document",
            )
            assert [plain(o) for o in peer.cell("again")["outputs"]] == ["'three'"]
        await wait_until(
            lambda: disk_outputs(jp_root_dir, "show") == ["'three'"], 20, "the update on disk"
        )

    if mode == "ydoc":
        async with notebook_peer(api, ws_connect) as peer:
            await run_and_check(peer)
    else:
        await run_and_check(None)
    events.close()


async def test_rerun_cell_shows_its_latest_run_updated(
    jp_serverapp: Any,
    api: Any,
    jp_root_dir: Path,
    mode: str,  # noqa: F811
) -> None:
    """A cell run again owns new outputs: an update of the old run's id leaves it alone."""
    write_notebook(jp_root_dir, NOTEBOOK, CELLS)
    await run_cells(api, cell_ids=["show"])
    await run_cells(api, cell_ids=["show"])  # a new h, a new output with d1, same id
    await run_cells(api, code="print('x')", cell_id="again")
    done = await run_cells(api, cell_ids=["update"])
    assert done[0]["state"] == "done"
    await wait_until(lambda: disk_outputs(jp_root_dir, "show") == ["'two'"], 20, "on disk")
