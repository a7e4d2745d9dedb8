"""Notebook cells run on the server: outputs reach the shared document and the file.

Every test runs twice: with jupyter_server_ydoc enabled and with it disabled (file only).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Provider
from test_canvas_support import (
    CANVAS_EXTENSIONS,
    ClientChannel,
    canvas_server_config,
    code,
    md,
    wait_until,
    write_notebook,
)
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from traitlets.config import Config

NOTEBOOK = "run.ipynb"


@pytest.fixture(params=["ydoc", "file"])
def mode(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def canvas_extensions(mode: str) -> dict[str, bool]:
    return dict(CANVAS_EXTENSIONS) if mode == "ydoc" else {"jupyter_canvas": True}


@pytest.fixture
def jp_server_config(jp_server_config: Any, jp_root_dir: Path, mode: str) -> Any:
    config = canvas_server_config(jp_server_config, jp_root_dir, {})
    config["NotebookService"] = Config({"file_flush_interval": 0.3})
    return config


def read_disk(root: Path, name: str = NOTEBOOK) -> dict[str, Any] | None:
    """The notebook on disk, or None while a save is writing it (the server does not write
    notebooks atomically: it writes in place and keeps a backup)."""
    try:
        return json.loads((root / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except ValueError:
        return None


def disk_cell(root: Path, cell_id: str, name: str = NOTEBOOK) -> dict[str, Any]:
    """A cell as on disk now (an empty cell while the file is being written)."""
    notebook = read_disk(root, name)
    if notebook is None:
        return {"outputs": [], "execution_count": None}
    for cell in notebook["cells"]:
        if cell["id"] == cell_id:
            return cell  # type: ignore[no-any-return]
    raise AssertionError(f"no cell {cell_id}")


async def saved_cell(root: Path, cell_id: str, name: str = NOTEBOOK) -> dict[str, Any]:
    """A cell as on disk once the file holds a whole notebook (waits without blocking)."""
    await wait_until(lambda: read_disk(root, name) is not None, 5, f"{name} readable")
    notebook = read_disk(root, name)
    assert notebook is not None
    for cell in notebook["cells"]:
        if cell["id"] == cell_id:
            return cell  # type: ignore[no-any-return]
    raise AssertionError(f"no cell {cell_id}")


async def run_cells(api: Any, **body: Any) -> list[dict[str, Any]]:
    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, **body})
    assert status == 202, data
    done = []
    for entry in data["entries"]:
        status, finished = await api("GET", "api", "queue", entry["id"], params={"wait": "60"})
        assert status == 200
        done.append(finished)
    return done


class NotebookPeer:
    """A pycrdt client of jupyter_server_ydoc's room of a notebook (what JupyterLab is)."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.notebook = YNotebook(doc)

    def cell(self, cell_id: str) -> dict[str, Any]:
        for ycell in self.notebook.ycells:
            if ycell.get("id") == cell_id:
                return ycell.to_py()  # type: ignore[no-any-return]
        raise AssertionError(f"no cell {cell_id}")

    def ycell(self, cell_id: str) -> Any:
        for ycell in self.notebook.ycells:
            if ycell.get("id") == cell_id:
                return ycell
        raise AssertionError(f"no cell {cell_id}")


@pytest.fixture
def ws_connect(jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: Any) -> Any:
    """Open a websocket on the test server without quoting the path (room ids hold ':')."""

    async def connect(path: str, params: dict[str, str]) -> Any:
        url = f"ws://localhost:{jp_http_port}{jp_base_url}{path}?{urlencode(params)}"
        return await websocket_connect(HTTPRequest(url, headers=jp_auth_header))

    return connect


@asynccontextmanager
async def notebook_peer(
    api: Any, ws_connect: Any, path: str = NOTEBOOK
) -> AsyncIterator[NotebookPeer]:
    """Join jupyter_server_ydoc's room of the notebook the way JupyterLab does."""
    status, session = await api(
        "PUT",
        "api",
        "collaboration",
        "session",
        path,
        body={"format": "json", "type": "notebook"},
    )
    assert status in (200, 201), session
    room = f"json:notebook:{session['fileId']}"
    connection = await ws_connect(
        f"api/collaboration/room/{room}", {"sessionId": session["sessionId"]}
    )
    doc: Doc[Any] = Doc()
    try:
        async with Provider(doc, ClientChannel(connection, room)) as provider:
            await asyncio.wait_for(provider.synced.wait(), 10)
            peer = NotebookPeer(doc)
            await wait_until(lambda: len(peer.notebook.ycells) > 0, what="notebook loaded")
            yield peer
    finally:
        connection.close()


@pytest.fixture
def notebook(jp_root_dir: Path) -> Path:
    return write_notebook(
        jp_root_dir,
        NOTEBOOK,
        [
            md("h1", "# Setup"),
            code("c1", "x = 20"),
            code("c2", "print('x is', x)\nx * 2"),
            md("h2", "## Plot"),
            code("c3", "import sys\nprint('err', file=sys.stderr)"),
            md("h3", "# Other"),
            code("c4", "'other'"),
        ],
    )


async def test_run_all_without_browser_reaches_disk(
    jp_serverapp: Any, api: Any, notebook: Path, jp_root_dir: Path
) -> None:
    entries = await run_cells(api, select="all")
    assert [e["cell_id"] for e in entries] == ["c1", "c2", "c3", "c4"]
    assert all(e["state"] == "done" for e in entries), [
        (e["state"], e["reason"], e["error"]) for e in entries
    ]
    assert entries[1]["code"] == "print('x is', x)\nx * 2"

    def saved() -> bool:
        cell = disk_cell(jp_root_dir, "c4")
        return cell["execution_count"] == 4 and cell["outputs"] != []

    await wait_until(saved, 5, "outputs on disk")
    c2 = await saved_cell(jp_root_dir, "c2")
    assert c2["execution_count"] == 2
    assert c2["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": ["x is 20\n"]},
        {
            "output_type": "execute_result",
            "execution_count": 2,
            "data": {"text/plain": ["40"]},
            "metadata": {},
        },
    ] or [nbformat.from_dict(o) for o in c2["outputs"]] == [
        {"output_type": "stream", "name": "stdout", "text": "x is 20\n"},
        {
            "output_type": "execute_result",
            "execution_count": 2,
            "data": {"text/plain": "40"},
            "metadata": {},
        },
    ]
    assert (await saved_cell(jp_root_dir, "c3"))["outputs"][0]["name"] == "stderr"
    nbformat.validate(nbformat.reads((jp_root_dir / NOTEBOOK).read_text(), 4))


async def test_select_from_and_group_and_cell_ids(
    jp_serverapp: Any, api: Any, notebook: Path
) -> None:
    entries = await run_cells(api, select={"from": "c2"}, stop_on_error=False)
    assert [e["cell_id"] for e in entries] == ["c2", "c3", "c4"]
    entries = await run_cells(api, select={"group": "h1"}, stop_on_error=False)
    assert [e["cell_id"] for e in entries] == ["c1", "c2", "c3"]
    entries = await run_cells(api, select={"group": "h2"})
    assert [e["cell_id"] for e in entries] == ["c3"]
    entries = await run_cells(api, cell_ids=["c4", "c1"])
    assert [e["cell_id"] for e in entries] == ["c4", "c1"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"path": "missing.ipynb", "select": "all"}, 404, "no notebook"),
        ({"path": "notes.txt", "select": "all"}, 400, "not a notebook"),
        ({"path": "../outside.ipynb", "select": "all"}, 400, ".."),
        ({"path": NOTEBOOK, "cell_ids": ["c1", "nope"]}, 404, "'nope'"),
        ({"path": NOTEBOOK, "cell_ids": ["h1"]}, 400, "not code cells"),
        ({"path": NOTEBOOK, "select": {"from": "nope"}}, 404, "'nope'"),
        ({"path": NOTEBOOK, "select": {"group": "c1"}}, 400, "not a markdown heading"),
        ({"path": NOTEBOOK, "code": "1", "cell_id": "nope"}, 404, "'nope'"),
        ({"path": NOTEBOOK, "select": "all", "kernel_id": "nope"}, 404, "no kernel"),
    ],
)
async def test_notebook_request_errors_queue_nothing(
    jp_serverapp: Any,
    api: Any,
    notebook: Path,
    jp_root_dir: Path,
    body: dict[str, Any],
    status: int,
    words: str,
) -> None:
    (jp_root_dir / "notes.txt").write_text("hello")
    code_, answer = await api("POST", "api", "queue", body=body)
    assert code_ == status, answer
    assert words in answer["message"]
    _, listing = await api("GET", "api", "queue")
    assert listing["entries"] == []


async def test_session_binding(jp_serverapp: Any, api: Any, notebook: Path) -> None:
    first = await run_cells(api, cell_ids=["c1"])
    _, sessions = await api("GET", "api", "sessions")
    mine = [s for s in sessions if s["path"] == NOTEBOOK]
    assert len(mine) == 1
    assert mine[0]["kernel"]["id"] == first[0]["kernel_id"]
    assert mine[0]["kernel"]["name"] == "python3"
    # The same kernel (and its state) serves the next request.
    second = await run_cells(api, cell_ids=["c2"])
    assert second[0]["kernel_id"] == first[0]["kernel_id"]
    assert second[0]["outputs"][0]["text"] == "x is 20\n"


async def test_concurrent_requests_bind_one_session(
    jp_serverapp: Any, api: Any, notebook: Path
) -> None:
    answers = await asyncio.gather(
        *(
            api("POST", "api", "queue", body={"path": NOTEBOOK, "cell_ids": ["c1"]})
            for _ in range(4)
        )
    )
    kernels = {data["entries"][0]["kernel_id"] for status, data in answers}
    assert len(kernels) == 1
    _, sessions = await api("GET", "api", "sessions")
    assert len([s for s in sessions if s["path"] == NOTEBOOK]) == 1


async def test_code_as_cell_runs_given_source(
    jp_serverapp: Any, api: Any, notebook: Path, jp_root_dir: Path
) -> None:
    (entry,) = await run_cells(api, code="print('edited in the browser')", cell_id="c4")
    assert entry["code"] == "print('edited in the browser')"
    await wait_until(lambda: disk_cell(jp_root_dir, "c4")["outputs"] != [], 5, "outputs on disk")
    assert (
        "".join((await saved_cell(jp_root_dir, "c4"))["outputs"][0]["text"])
        == "edited in the browser\n"
    )


async def test_rerun_replaces_outputs(
    jp_serverapp: Any, api: Any, notebook: Path, jp_root_dir: Path
) -> None:
    for _ in range(5):
        await run_cells(api, cell_ids=["c1", "c2"])
    await wait_until(lambda: disk_cell(jp_root_dir, "c2")["execution_count"] == 10, 5, "5th run")
    assert len((await saved_cell(jp_root_dir, "c2"))["outputs"]) == 2


async def test_output_fidelity(jp_serverapp: Any, api: Any, jp_root_dir: Path) -> None:
    write_notebook(
        jp_root_dir,
        NOTEBOOK,
        [
            code(
                "bar",
                "import sys\nfor i in range(101):\n    print(f'\\rprogress {i}%', end='')\n"
                "    sys.stdout.flush()\nprint()",
            ),
            code(
                "clear",
                "from IPython.display import clear_output\nimport time\n"
                "for i in range(3):\n    clear_output(wait=True)\n    print('step', i)\n"
                "    time.sleep(0.05)",
            ),
            code("update", "h = display('first', display_id=True)\nh.update('second')"),
            code("rich", "from IPython.display import HTML\nHTML('<b>bold</b>')"),
        ],
    )
    entries = await run_cells(api, select="all")
    assert all(e["state"] == "done" for e in entries), entries
    bar, clear, update, rich = (e["outputs"] for e in entries)
    assert bar == [{"output_type": "stream", "name": "stdout", "text": "progress 100%\n"}]
    assert clear == [{"output_type": "stream", "name": "stdout", "text": "step 2\n"}]
    assert len(update) == 1 and update[0]["data"]["text/plain"] == "'second'"
    assert rich[0]["data"]["text/html"] == "<b>bold</b>"
    assert "text/plain" in rich[0]["data"]

    def on_disk() -> bool:
        return disk_cell(jp_root_dir, "rich")["outputs"] != []

    await wait_until(on_disk, 5, "outputs on disk")
    assert (
        "".join((await saved_cell(jp_root_dir, "bar"))["outputs"][0]["text"]) == "progress 100%\n"
    )
    assert "".join((await saved_cell(jp_root_dir, "clear"))["outputs"][0]["text"]) == "step 2\n"
    assert len((await saved_cell(jp_root_dir, "update"))["outputs"]) == 1


async def test_large_output_is_capped_and_server_stays_responsive(
    jp_serverapp: Any, api: Any, jp_root_dir: Path, jp_fetch: Any
) -> None:
    write_notebook(
        jp_root_dir,
        NOTEBOOK,
        [
            code(
                "big",
                "import sys\nline = 'x' * 99 + '\\n'\n"
                # 50 MB printed as a program prints: in 100 kB writes, each flushed
                # (ipykernel sends what it buffered at each flush).
                "for i in range(500):\n    sys.stdout.write(line * 1000)\n"
                "    sys.stdout.flush()\n",
            )
        ],
    )
    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"})
    assert status == 202
    entry_id = data["entries"][0]["id"]
    latencies: list[float] = []
    while True:
        start = time.monotonic()
        status, entry = await api("GET", "api", "queue", entry_id)
        latencies.append(time.monotonic() - start)
        if entry["state"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert entry["state"] == "done"
    text = entry["outputs"][0]["text"]
    cap = jp_serverapp.web_app.settings["jupyter_canvas.services"].notebooks.stream_cap
    assert len(text) < cap + 500
    assert "characters of this stream were cut" in text
    assert text.endswith("x" * 99 + "\n")
    # What was cut is kept on the server, whole, where the note in the output says.
    assert f"GET api/queue/{entry_id}/streams/0" in text
    response = await jp_fetch("api", "queue", entry_id, "streams", "0", request_timeout=60)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert len(response.body) == 500 * 1000 * 100
    assert response.body.count(b"\n") == 500 * 1000
    status, missing = await api("GET", "api", "queue", entry_id, "streams", "1")
    assert status == 404 and "not cut" in missing["message"]
    status, bad = await api("GET", "api", "queue", entry_id, "streams", "-1")
    assert status == 400 and "whole number" in bad["message"]
    await wait_until(lambda: disk_cell(jp_root_dir, "big")["outputs"] != [], 10, "disk")
    assert (jp_root_dir / NOTEBOOK).stat().st_size < 2 * cap
    # Other requests keep being answered while 50 MB stream through: the typical answer
    # comes within 100 ms and none waits for the stream to end (the machine is shared, so
    # single answers can be late for reasons of its own).
    latencies.sort()
    median = latencies[len(latencies) // 2]
    assert len(latencies) >= 5, "the stream ended before the server was asked anything"
    assert median < 0.1, f"median answer {median * 1000:.0f} ms while 50 MB streamed"
    assert latencies[-1] < 1.0, f"an answer took {latencies[-1] * 1000:.0f} ms"


# -- with a live shared document -------------------------------------------------------------


class TestLiveDocument:
    """These need a shared document, so they run with jupyter_server_ydoc only."""

    @pytest.fixture
    def mode(self) -> str:
        return "ydoc"

    async def test_peer_sees_outputs_while_cell_runs(
        self,
        jp_serverapp: Any,
        api: Any,
        ws_connect: Any,
        notebook: Path,
        jp_root_dir: Path,
    ) -> None:
        write_notebook(
            jp_root_dir,
            NOTEBOOK,
            [
                code(
                    "slow",
                    "import time\nfor i in range(4):\n    print('tick', i, flush=True)\n"
                    "    time.sleep(0.5)",
                )
            ],
        )
        async with notebook_peer(api, ws_connect) as peer:
            status, data = await api(
                "POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"}
            )
            assert status == 202
            entry_id = data["entries"][0]["id"]
            await wait_until(
                lambda: peer.cell("slow").get("execution_state") == "running",
                10,
                "running state in the document",
            )
            await wait_until(lambda: "tick 1" in str(peer.cell("slow")["outputs"]), 10, "tick 1")
            _, entry = await api("GET", "api", "queue", entry_id)
            assert entry["state"] == "running"  # the output arrived while the cell still ran
            await api("GET", "api", "queue", entry_id, params={"wait": "30"})
            await wait_until(lambda: peer.cell("slow").get("execution_state") == "idle", 10, "idle")
            cell = peer.cell("slow")
            assert cell["execution_count"] == 1
            assert len(cell["outputs"]) == 1
            assert str(cell["outputs"][0]["text"]) == "".join(f"tick {i}\n" for i in range(4))
        await wait_until(
            lambda: disk_cell(jp_root_dir, "slow")["outputs"] != [], 10, "document autosave"
        )

    async def test_rerun_with_peers_has_no_duplicates(
        self,
        jp_serverapp: Any,
        api: Any,
        ws_connect: Any,
        notebook: Path,
        jp_root_dir: Path,
    ) -> None:
        async with notebook_peer(api, ws_connect) as one, notebook_peer(api, ws_connect) as two:
            for _ in range(5):
                await run_cells(api, cell_ids=["c1", "c2"])
            await wait_until(lambda: two.cell("c2").get("execution_count") == 10, 10, "5th run")
            for peer in (one, two):
                assert len(peer.cell("c2")["outputs"]) == 2
        await wait_until(lambda: disk_cell(jp_root_dir, "c2")["execution_count"] == 10, 10, "save")
        assert len((await saved_cell(jp_root_dir, "c2"))["outputs"]) == 2

    async def test_edit_in_shared_document_before_start_is_what_runs(
        self, jp_serverapp: Any, api: Any, ws_connect: Any, notebook: Path
    ) -> None:
        async with notebook_peer(api, ws_connect) as peer:
            kernel = (await run_cells(api, cell_ids=["c1"]))[0]["kernel_id"]
            status, _blocker = await api(
                "POST",
                "api",
                "queue",
                body={"kernel_id": kernel, "code": "import time; time.sleep(1)"},
            )
            status, queued = await api(
                "POST", "api", "queue", body={"path": NOTEBOOK, "cell_ids": ["c4"]}
            )
            assert status == 202
            source = peer.ycell("c4")["source"]
            with peer.doc.transaction():
                del source[:]
                source += "'edited while queued'"
            entry_id = queued["entries"][0]["id"]
            _, done = await api("GET", "api", "queue", entry_id, params={"wait": "30"})
            assert done["code"] == "'edited while queued'"
            assert done["outputs"][0]["data"]["text/plain"] == "'edited while queued'"
            await wait_until(
                lambda: "edited while queued" in str(peer.cell("c4")["outputs"]), 10, "output"
            )


class TestOutputsReachThePageAtOnce:
    """Shift-Enter to output: the first output is not held back on its way to the page."""

    @pytest.fixture
    def mode(self) -> str:
        return "ydoc"

    @pytest.fixture
    def jp_server_config(self, jp_server_config: Any) -> Any:
        # Outputs of a cell are written at most every 60 s: only the first may go at once.
        jp_server_config["NotebookService"]["doc_flush_interval"] = 60.0
        return jp_server_config

    async def test_first_output_is_written_at_once_and_rooms_send_without_delay(
        self,
        jp_serverapp: Any,
        api: Any,
        ws_connect: Any,
        jp_root_dir: Path,
    ) -> None:
        write_notebook(
            jp_root_dir,
            NOTEBOOK,
            [code("first", "import time\nprint('first', flush=True)\ntime.sleep(40)")],
        )
        async with notebook_peer(api, ws_connect) as peer:
            # The room's websocket (outputs reach JupyterLab on it) has TCP_NODELAY.
            (ydoc_app,) = jp_serverapp.extension_manager.extension_apps["jupyter_server_ydoc"]
            options = [
                handler.ws_connection.stream.socket.getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for room in ydoc_app.ywebsocket_server.rooms.values()
                for handler in room.clients
            ]
            assert options and all(options), options
            status, data = await api(
                "POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"}
            )
            assert status == 202
            # Clearing the cell at its start does not count as a write of its outputs: the
            # first output is in the document while the cell runs (else 60 s later).
            await wait_until(lambda: "first" in str(peer.cell("first")["outputs"]), 20, "first")
            await api("DELETE", "api", "queue", data["entries"][0]["id"])
