"""ipywidgets: Output-widget capture, and the widget state saved into the notebook.

The server plays the front end for the cells it runs, as nbclient does: what ``with out:``
captures goes into the Output widget's model (never the cell), ``clear_output`` clears the
widget, and ``metadata.widgets`` is written at the end of a run in nbclient's format.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Map
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

from jupyter_canvas.queue.widgets import WIDGET_STATE_MIMETYPE, WidgetTracker

# -- the pure tracker ---------------------------------------------------------------------------

OUTPUT_STATE = {
    "_model_module": "@jupyter-widgets/output",
    "_model_name": "OutputModel",
    "_model_module_version": "1.0.0",
    "msg_id": "",
    "outputs": [],
}


def iopub(msg_type: str, content: dict[str, Any], buffers: list[bytes] | None = None) -> Any:
    return {"header": {"msg_type": msg_type}, "content": content, "buffers": buffers or []}


def opened(comm_id: str, state: dict[str, Any]) -> Any:
    return iopub(
        "comm_open",
        {"comm_id": comm_id, "target_name": "jupyter.widget", "data": {"state": state}},
    )


def update(comm_id: str, state: dict[str, Any], method: str = "update", **data: Any) -> Any:
    return iopub(
        "comm_msg", {"comm_id": comm_id, "data": {"method": method, "state": state, **data}}
    )


class Tracker:
    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.timers: list[Any] = []
        self.widgets = WidgetTracker(
            lambda content, parent: self.sent.append((content, parent)),
            max_bytes=max_bytes,
            schedule=lambda delay, callback: self.timers.append(callback),
        )

    def flush(self) -> None:
        timers, self.timers = self.timers, []
        for callback in timers:
            callback()


def stream(text: str) -> dict[str, Any]:
    return {"name": "stdout", "text": text}


def test_output_widget_captures_and_clears() -> None:
    t = Tracker()
    w = t.widgets
    w.observe(opened("out", OUTPUT_STATE))
    assert not w.capture("m1", "stream", stream("cell\n"), {})  # not capturing yet
    w.observe(update("out", {"msg_id": "m1"}))
    assert w.capture("m1", "stream", stream("a\n"), {"msg_id": "m1"})
    assert w.capture("m1", "stream", stream("b\n"), {"msg_id": "m1"})
    assert not w.capture("other", "stream", stream("x\n"), {})
    t.flush()
    # One update for the burst, sent as a front end sends it, with the execution as parent.
    assert len(t.sent) == 1
    content, parent = t.sent[0]
    assert parent == {"msg_id": "m1"}
    assert content["data"]["method"] == "update"
    assert content["data"]["state"]["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"}
    ]
    # clear_output(wait=True) waits for the next output; the echo of our update is ignored.
    w.observe(update("out", {"outputs": content["data"]["state"]["outputs"]}, "echo_update"))
    assert w.capture("m1", "clear_output", {"wait": True}, {})
    assert w.capture("m1", "stream", stream("c\n"), {})
    w.observe(update("out", {"msg_id": ""}))
    assert not w.capture("m1", "stream", stream("after\n"), {})
    state = w.state()
    assert state is not None
    saved = state[WIDGET_STATE_MIMETYPE]
    assert saved["version_major"] == 2 and saved["version_minor"] == 0
    model = saved["state"]["out"]
    assert model["model_name"] == "OutputModel"
    assert model["state"]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "c\n"}]
    assert model["state"]["msg_id"] == ""
    # clear_output without wait clears at once and is sent.
    w.observe(update("out", {"msg_id": "m2"}))
    w.capture("m2", "clear_output", {"wait": False}, {})
    t.flush()
    assert t.sent[-1][0]["data"]["state"]["outputs"] == []


def test_nested_output_widgets_innermost_wins() -> None:
    t = Tracker()
    w = t.widgets
    w.observe(opened("inner", OUTPUT_STATE))
    w.observe(opened("outer", OUTPUT_STATE))
    w.observe(update("inner", {"msg_id": "m"}))
    w.capture("m", "stream", stream("in inner\n"), {})
    w.observe(update("outer", {"msg_id": "m"}))
    w.capture("m", "stream", stream("in outer\n"), {})
    w.observe(update("outer", {"msg_id": ""}))
    w.capture("m", "stream", stream("also in inner\n"), {})
    w.observe(update("inner", {"msg_id": ""}))
    state = w.state()
    assert state is not None
    models = state[WIDGET_STATE_MIMETYPE]["state"]
    assert models["inner"]["state"]["outputs"][0]["text"] == "in inner\nalso in inner\n"
    assert models["outer"]["state"]["outputs"][0]["text"] == "in outer\n"


def test_state_buffers_close_and_budget() -> None:
    t = Tracker(max_bytes=2000)
    w = t.widgets
    w.observe(opened("s", {"_model_name": "IntSliderModel", "value": 1}))
    w.observe(update("s", {"value": 5}))
    w.observe(
        update("s", {}, buffer_paths=[["data"]]) | {"buffers": [b"\x00\x01"]}
    )  # buffers of the message
    w.observe(iopub("comm_msg", {"comm_id": "s", "data": {"method": "custom"}}))
    w.observe(opened("plain", {"no": "model name"}))  # not saved (nbclient keeps only models)
    state = w.state()
    assert state is not None
    models = state[WIDGET_STATE_MIMETYPE]["state"]
    assert list(models) == ["s"]
    assert models["s"]["state"]["value"] == 5
    assert models["s"]["buffers"] == [{"data": "AAE=", "encoding": "base64", "path": ["data"]}]
    # Past the budget, new state is not kept; what is kept stays.
    w.observe(update("s", {"big": "x" * 5000}))
    assert "big" not in w.state()[WIDGET_STATE_MIMETYPE]["state"]["s"]["state"]  # type: ignore[index]
    assert w.bytes <= 2000
    w.observe(iopub("comm_close", {"comm_id": "s"}))
    w.observe(iopub("comm_close", {"comm_id": "plain"}))
    assert w.state() is None and len(w) == 0 and w.bytes == 0


# -- through the server, against nbclient --------------------------------------------------------

CELLS = [
    code(
        "make",
        "import ipywidgets as widgets\nfrom IPython.display import clear_output, display\n"
        "out = widgets.Output()\nout",
    ),
    code("print", "print('hi')\nwith out:\n    print('in output')"),
    code(
        "clear",
        "print('hi2')\nwith out:\n    print('hello')\n    clear_output(wait=True)\n"
        "    print('world')",
    ),
    code(
        "nested",
        "inner = widgets.Output()\nouter = widgets.Output()\ndisplay(inner, outer)\n"
        "with inner:\n    print('in inner')\n    with outer:\n        print('in outer')\n"
        "    print('also in inner')",
    ),
    code("cleared", "out2 = widgets.Output()\nwith out2:\n    print('gone')\n    clear_output()"),
    code("slider", "s = widgets.IntSlider(3)\ns.value = 7\ns"),
    # The kernel's model got the captured outputs from us, as a front end sends them.
    code("kernel_side", "[o['text'] for o in out.outputs + inner.outputs]"),
]

_MODEL_ID = re.compile(r"[0-9a-f]{32}")


def _joined(output: dict[str, Any]) -> dict[str, Any]:
    output = dict(output)
    if isinstance(output.get("text"), list):
        output["text"] = "".join(output["text"])
    if "data" in output:
        output["data"] = {
            k: "".join(v) if isinstance(v, list) else v for k, v in output["data"].items()
        }
    return output


def normalised(notebook: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Cells' outputs and the widget models, each model id replaced by a name made of its
    model's name and what it shows (ids are random per run); models sorted."""
    state = notebook["metadata"].get("widgets", {}).get(WIDGET_STATE_MIMETYPE, {})
    models = state.get("state", {})
    assert state == {} or (state["version_major"], state["version_minor"]) == (2, 0)
    names = {model_id: model["model_name"] for model_id, model in models.items()}

    def rename(match: re.Match[str]) -> str:
        return names.get(match.group(0), "unknown")

    outputs = [[_joined(o) for o in cell.get("outputs", [])] for cell in notebook["cells"]]
    for model in models.values():
        model["state"]["outputs"] = [_joined(o) for o in model["state"].get("outputs", [])]
    text = _MODEL_ID.sub(rename, json.dumps(outputs, sort_keys=True))
    saved = sorted(
        _MODEL_ID.sub(rename, json.dumps(model, sort_keys=True)) for model in models.values()
    )
    return json.loads(text), saved


NBCLIENT = """
import sys, nbformat
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from nbclient_support import run_nbclient
notebook, raised = run_nbclient(Path(sys.argv[1]), allow_errors=False, options={})
assert not raised, raised
nbformat.write(notebook, sys.argv[2])
"""


async def nbclient_run(path: Path, tmp: Path) -> dict[str, Any]:
    """What nbclient makes of the same notebook (in a process of its own, same environment;
    its kernel on IPC sockets, started again if it does not start, as the conformance suite
    runs it: on TCP a port picked by two kernels at once hung this test once)."""
    result = tmp / "nbclient.ipynb"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NBCLIENT, str(path), str(result), str(Path(__file__).parent)
    )
    assert await asyncio.wait_for(process.wait(), 240) == 0
    return json.loads(result.read_text())  # type: ignore[no-any-return]


@pytest.mark.timeout(300)  # two kernels run the notebook: give a loaded machine time
async def test_output_widgets_and_state_match_nbclient(
    jp_serverapp: Any,
    api: Any,
    jp_root_dir: Path,
    tmp_path: Path,
    ws_connect: Any,  # noqa: F811
    mode: str,  # noqa: F811
) -> None:
    write_notebook(jp_root_dir, NOTEBOOK, CELLS)
    expected = await nbclient_run(jp_root_dir / NOTEBOOK, tmp_path)

    async def run() -> list[dict[str, Any]]:
        return await run_cells(api, select="all")

    if mode == "ydoc":
        async with notebook_peer(api, ws_connect) as peer:
            done = await run()
            await wait_until(
                lambda: "widgets" in peer.doc.get("meta", type=Map).to_py().get("metadata", {}),
                10,
                "widget state in the live document",
            )
    else:
        done = await run()
    assert [e["state"] for e in done] == ["done"] * len(CELLS)
    # What the widgets captured is not in the cells.
    by_cell = {e["cell_id"]: e for e in done}
    assert [o["text"] for o in by_cell["print"]["outputs"]] == ["hi\n"]
    assert [o["text"] for o in by_cell["clear"]["outputs"]] == ["hi2\n"]
    assert by_cell["cleared"]["outputs"] == []
    (answer,) = by_cell["kernel_side"]["outputs"]
    assert answer["data"]["text/plain"] == "['world\\n', 'in inner\\nalso in inner\\n']"

    def saved() -> dict[str, Any] | None:
        notebook = read_disk(jp_root_dir)
        if notebook is None or "widgets" not in notebook["metadata"]:
            return None
        if not notebook["cells"][-1]["outputs"]:
            return None  # the last cell's outputs not written yet
        return notebook

    await wait_until(lambda: saved() is not None, 20, "metadata.widgets on disk")
    ours = saved()
    assert ours is not None
    our_outputs, our_state = normalised(ours)
    their_outputs, their_state = normalised(expected)
    assert our_outputs == their_outputs
    assert our_state == their_state
