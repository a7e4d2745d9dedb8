"""A large output is kept once on disk for the API, yet the notebook gets it whole: in the
file (nobody has it open) and in the live document (a JupyterLab peer has it open)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_blobs import THRESHOLD, display_code, expected_output
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

from jupyter_canvas.queue.blobs import reference_of


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    return {"blob_threshold_bytes": THRESHOLD}


def whole(output: dict[str, Any]) -> dict[str, Any]:
    """An output as nbformat reads it from disk (multi-line strings joined)."""
    return json.loads(json.dumps(nbformat.from_dict(output)))


async def test_notebook_gets_the_whole_output(
    jp_serverapp: Any,
    api: Any,
    ws_connect: Any,  # noqa: F811
    jp_root_dir: Path,
    mode: str,  # noqa: F811
) -> None:
    write_notebook(jp_root_dir, NOTEBOOK, [code("big", display_code("kl")), code("after", "1")])
    expected = expected_output("kl")
    if mode == "ydoc":
        async with notebook_peer(api, ws_connect) as peer:
            (done, _after) = await run_cells(api, select="all")

            def shown() -> bool:
                outputs = peer.cell("big").get("outputs") or []
                return bool(outputs) and outputs[0].get("data", {}) == expected["data"]

            await wait_until(shown, 10, "the whole output in the live document")
    else:
        (done, _after) = await run_cells(api, select="all")
    assert reference_of(done["outputs"][0]) is not None, done["outputs"]

    def saved() -> bool:
        notebook = read_disk(jp_root_dir)
        if notebook is None:
            return False
        cell = next(c for c in notebook["cells"] if c["id"] == "big")
        return bool(cell["outputs"]) and cell["execution_count"] is not None

    await wait_until(saved, 15, "the output on disk")
    notebook = nbformat.reads((jp_root_dir / NOTEBOOK).read_text(), 4)
    nbformat.validate(notebook)
    cell = next(c for c in notebook.cells if c.id == "big")
    (output,) = cell.outputs
    assert output.output_type == "display_data"
    assert dict(output.data) == expected["data"]
    assert "jupyter_canvas" not in output.metadata
