"""Nothing the user wrote is lost: our notebook writes are atomic and never clobber.

In-process server (jupyter_server_fileid on, jupyter_server_ydoc off: every output goes to
the file). Readers race the server's saves of a notebook of a few MB (20 MB with --long).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_canvas_support import canvas_server_config, code, md, write_notebook
from traitlets.config import Config

NOTEBOOK = "big.ipynb"
LINES = 30


@pytest.fixture
def canvas_extensions() -> dict[str, bool]:
    return {"jupyter_canvas": True, "jupyter_server_fileid": True}


@pytest.fixture
def file_id_manager_class() -> str:
    return "jupyter_server_fileid.manager.ArbitraryFileIdManager"


@pytest.fixture
def jp_server_config(jp_server_config: Any, jp_root_dir: Path, file_id_manager_class: str) -> Any:
    config = canvas_server_config(jp_server_config, jp_root_dir, {"poll_interval": 0.2})
    config["NotebookService"] = Config({"file_flush_interval": 0.05})
    config["FileIdExtension"] = Config({"file_id_manager_class": file_id_manager_class})
    return config


def big_notebook(root: Path, megabytes: int) -> Path:
    """A notebook of about ``megabytes`` MB: a large markdown cell, then the cell we run."""
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n") * (megabytes * 1024 * 1024 // 1081)
    return write_notebook(
        root,
        NOTEBOOK,
        [
            md("big", filler),
            code(
                "run",
                f"import time\nfor i in range({LINES}):\n    print('line', i, flush=True)\n"
                "    time.sleep(0.05)",
            ),
            md("after", "# after"),
        ],
    )


class DiskReader(threading.Thread):
    """Reads the notebook file from disk in a loop, as git or an editor would."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.reads = 0
        self.torn: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                self.torn.append("missing")
                continue
            self.reads += 1
            try:
                json.loads(data)
            except ValueError:
                self.torn.append(f"{len(data)} bytes")


async def run_and_race(api: Any, root: Path, megabytes: int) -> dict[str, Any]:
    """Run the cell while readers race the saves; returns what they saw."""
    path = big_notebook(root, megabytes)
    reader = DiskReader(path)
    statuses: list[int] = []
    done = asyncio.Event()

    async def http_reader(*parts: str) -> None:
        while not done.is_set():
            status, _ = await api("GET", *parts)
            statuses.append(status)

    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, "cell_ids": ["run"]})
    assert status == 202, data
    entry_id = data["entries"][0]["id"]
    reader.start()
    readers = [
        asyncio.ensure_future(http_reader("api", "contents", NOTEBOOK)),
        asyncio.ensure_future(http_reader("api", "canvas", "layout", NOTEBOOK)),
    ]
    try:
        for _ in range(4):
            status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
            if entry["state"] not in ("queued", "running"):
                break
        assert status == 200 and entry["state"] == "done", entry
        # Let the last save land while the readers still race it.
        await asyncio.sleep(1.0)
    finally:
        done.set()
        await asyncio.gather(*readers)
        reader.stop.set()
        reader.join()
    return {"reader": reader, "statuses": statuses, "path": path}


@pytest.mark.parametrize("megabytes", [4, pytest.param(20, marks=pytest.mark.long)])
async def test_racing_readers_never_see_a_torn_or_missing_notebook(
    jp_serverapp: Any, api: Any, jp_root_dir: Path, megabytes: int
) -> None:
    seen = await run_and_race(api, jp_root_dir, megabytes)
    reader: DiskReader = seen["reader"]
    assert reader.reads > 20
    assert reader.torn == [], f"{len(reader.torn)} of {reader.reads} disk reads were torn"
    assert seen["statuses"] and set(seen["statuses"]) == {200}
    names = sorted(os.listdir(jp_root_dir))
    assert not [name for name in names if name.endswith(".invalid")]
    notebook = nbformat.read(seen["path"], as_version=4)
    (cell,) = [c for c in notebook.cells if c.id == "run"]
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert text.count("line ") == LINES
    # No temporary file is left next to the notebook.
    assert [name for name in names if name.startswith(".~")] == []


async def test_external_edit_during_a_write_survives(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    """Someone edits the file between our read and our write: the edit is kept and our
    outputs are applied onto it by cell id."""
    path = write_notebook(
        jp_root_dir, NOTEBOOK, [md("title", "# Title"), code("run", "print('hello')")]
    )
    cm = jp_serverapp.contents_manager
    edits: list[str] = []

    def edit_once(model: Any, path: str, contents_manager: Any, **kwargs: Any) -> None:
        # Runs inside the save, after the notebook was read: the worst moment for an edit.
        if edits or not path.endswith(NOTEBOOK):
            return
        on_disk = nbformat.read(jp_root_dir / NOTEBOOK, as_version=4)
        on_disk.cells[0].source = "# Title, edited elsewhere"
        on_disk.cells.insert(1, nbformat.v4.new_markdown_cell("new", id="added"))
        nbformat.write(on_disk, jp_root_dir / NOTEBOOK)
        edits.append(path)

    cm.register_pre_save_hook(edit_once)
    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, "cell_ids": ["run"]})
    assert status == 202, data
    status, entry = await api(
        "GET", "api", "queue", data["entries"][0]["id"], params={"wait": "60"}
    )
    assert entry["state"] == "done"

    def saved() -> Any:
        notebook = nbformat.read(path, as_version=4)
        (cell,) = [c for c in notebook.cells if c.id == "run"]
        return notebook, cell

    for _ in range(200):
        notebook, cell = saved()
        if cell.outputs:
            break
        await asyncio.sleep(0.05)
    assert edits
    assert [c.id for c in notebook.cells] == ["title", "added", "run"]
    assert notebook.cells[0].source == "# Title, edited elsewhere"
    assert cell.outputs[0]["text"] == "hello\n"


def follow_notebook(root: Path) -> Path:
    return write_notebook(
        root,
        NOTEBOOK,
        [
            code(
                "run",
                "import time\nfor i in range(40):\n    print('line', i, flush=True)\n"
                "    time.sleep(0.05)",
            ),
            code("next", "print('next ran')"),
        ],
    )


async def start_and_wait_for_line(api: Any, line: str) -> list[str]:
    status, data = await api(
        "POST", "api", "queue", body={"path": NOTEBOOK, "cell_ids": ["run", "next"]}
    )
    assert status == 202, data
    ids = [e["id"] for e in data["entries"]]
    for _ in range(600):
        _, entry = await api("GET", "api", "queue", ids[0])
        if line in "".join(o.get("text", "") for o in entry["outputs"]):
            return ids
        await asyncio.sleep(0.02)
    raise AssertionError(f"never printed {line!r}")


async def finished(api: Any, entry_id: str) -> dict[str, Any]:
    status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
    assert status == 200, entry
    return entry  # type: ignore[no-any-return]


async def test_rename_mid_run_keeps_writing_to_the_new_path(
    jp_serverapp: Any, api: Any, jp_root_dir: Path, jp_ws_fetch: Any
) -> None:
    follow_notebook(jp_root_dir)
    events = await jp_ws_fetch("api", "queue", "events")
    ids = await start_and_wait_for_line(api, "line 5")
    status, model = await api(
        "PATCH", "api", "contents", NOTEBOOK, body={"path": "moved/renamed.ipynb"}
    )
    assert status == 404 or status == 200, model
    if status == 404:  # the folder must exist first
        await api("PUT", "api", "contents", "moved", body={"type": "directory"})
        status, model = await api(
            "PATCH", "api", "contents", NOTEBOOK, body={"path": "moved/renamed.ipynb"}
        )
    assert status == 200, model
    run, after = [await finished(api, entry_id) for entry_id in ids]
    assert run["state"] == "done" and after["state"] == "done", (run, after)
    assert run["path"] == after["path"] == "moved/renamed.ipynb"
    # An entry event told the events websocket about the new path.
    seen: list[dict[str, Any]] = []
    while not any(
        e.get("type") == "entry"
        and e["entry"]["id"] == ids[1]
        and e["entry"]["path"] == "moved/renamed.ipynb"
        and e["entry"]["state"] == "queued"
        for e in seen
    ):
        seen.append(json.loads(await asyncio.wait_for(events.read_message(), 10)))
    events.close()

    def on_disk() -> Any:
        return nbformat.read(jp_root_dir / "moved" / "renamed.ipynb", as_version=4)

    for _ in range(200):
        cells = {c.id: c for c in on_disk().cells}
        if cells["next"].outputs:
            break
        await asyncio.sleep(0.05)
    text = "".join(o.get("text", "") for o in cells["run"].outputs)
    assert [f"line {i}" for i in range(40)] == text.splitlines()
    assert cells["next"].outputs[0]["text"] == "next ran\n"
    assert not (jp_root_dir / NOTEBOOK).exists()  # never re-created at the old path


async def test_delete_mid_run_cancels_the_queued_cells(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    jp_serverapp.contents_manager.delete_to_trash = False
    follow_notebook(jp_root_dir)
    ids = await start_and_wait_for_line(api, "line 5")
    status, _ = await api("DELETE", "api", "contents", NOTEBOOK)
    assert status == 204
    run, after = [await finished(api, entry_id) for entry_id in ids]
    assert after["state"] == "cancelled" and "deleted" in after["reason"], after
    # The running cell finished into the API only; the notebook is not re-created.
    assert run["state"] == "done"
    text = "".join(o.get("text", "") for o in run["outputs"])
    assert text.count("line ") == 40
    await asyncio.sleep(0.5)
    assert not (jp_root_dir / NOTEBOOK).exists()


@pytest.mark.parametrize(
    "file_id_manager_class", ["jupyter_server_fileid.manager.LocalFileIdManager"]
)
async def test_atomic_saves_keep_the_file_id_of_an_inode_tracking_manager(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    """Our rename gives the file a new inode; LocalFileIdManager keeps its id anyway."""
    follow_notebook(jp_root_dir)
    manager = jp_serverapp.web_app.settings["file_id_manager"]
    assert type(manager).__name__ == "LocalFileIdManager"
    file_id = manager.index(NOTEBOOK)
    inode = (jp_root_dir / NOTEBOOK).stat().st_ino
    ids = await start_and_wait_for_line(api, "line 5")
    for entry_id in ids:
        assert (await finished(api, entry_id))["state"] == "done"
    await asyncio.sleep(0.5)
    assert (jp_root_dir / NOTEBOOK).stat().st_ino != inode  # written by rename
    assert manager.get_path(file_id) == NOTEBOOK
    assert manager.index(NOTEBOOK) == file_id
