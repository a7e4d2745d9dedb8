"""Results outlive the server: the journal, a graceful stop, and a killed server."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import nbformat
from server_process import ServerProcess, servers_fixture, start  # noqa: F401  (fixture)


async def wait_entry(server: ServerProcess, entry_id: str, timeout: float = 60) -> dict:
    code, entry = await server.request("GET", f"api/queue/{entry_id}?wait={timeout}")
    assert code == 200, entry
    return entry  # type: ignore[no-any-return]


async def wait_output(server: ServerProcess, entry_id: str) -> dict:
    for _ in range(300):
        _code, entry = await server.request("GET", f"api/queue/{entry_id}")
        if entry["outputs"]:
            return entry  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"entry {entry_id} printed nothing")


def write_notebook(root: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import time\nprint('before stop', flush=True)\ntime.sleep(60)", id="long"
            ),
            nbformat.v4.new_code_cell("'after'", id="after"),
        ]
    )
    (root / "work.ipynb").write_text(nbformat.writes(notebook), encoding="utf-8")


async def test_sigterm_mid_run_then_restart(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = await start(servers, tmp_path)
    write_notebook(server.root)
    code, kernel = await server.request("POST", "api/kernels", {"name": "python3"})
    assert code == 201
    code, done = await server.request(
        "POST", "api/queue", {"kernel_id": kernel["id"], "code": "print('done before')"}
    )
    done_id = done["entries"][0]["id"]
    assert (await wait_entry(server, done_id))["state"] == "done"
    code, run = await server.request("POST", "api/queue", {"path": "work.ipynb", "select": "all"})
    assert code == 202, run
    long_id, after_id = (e["id"] for e in run["entries"])
    await wait_output(server, long_id)

    assert await server.stop(signal.SIGTERM) == 0

    # Outputs printed before the stop are in the notebook on disk.
    on_disk = json.loads((server.root / "work.ipynb").read_text())
    long_cell = next(c for c in on_disk["cells"] if c["id"] == "long")
    assert "".join(long_cell["outputs"][0]["text"]) == "before stop\n"

    again = await start(servers, tmp_path)
    entry = await wait_entry(again, done_id, 1)
    assert entry["state"] == "done"
    assert entry["outputs"][0]["text"] == "done before\n"
    for entry_id in (long_id, after_id):
        code, entry = await again.request("GET", f"api/queue/{entry_id}")
        assert code == 200
        assert entry["state"] == "cancelled" and entry["reason"] == "server stopped"
    code, entry = await again.request("GET", f"api/queue/{long_id}")
    assert entry["outputs"][0]["text"] == "before stop\n"
    code, body = await again.request("DELETE", f"api/queue/{long_id}")
    assert code == 409 and "already cancelled" in body["message"]
    code, _ = await again.request("GET", "api/queue/never-was")
    assert code == 404


async def test_killed_server_leaves_no_entry_open(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = await start(servers, tmp_path)
    _, kernel = await server.request("POST", "api/kernels", {"name": "python3"})
    _, done = await server.request("POST", "api/queue", {"kernel_id": kernel["id"], "code": "1"})
    done_id = done["entries"][0]["id"]
    await wait_entry(server, done_id)
    code, running = await server.request(
        "POST",
        "api/queue",
        {"kernel_id": kernel["id"], "code": "import time\nprint('x', flush=True)\ntime.sleep(60)"},
    )
    code, queued = await server.request(
        "POST", "api/queue", {"kernel_id": kernel["id"], "code": "2"}
    )
    running_id, queued_id = running["entries"][0]["id"], queued["entries"][0]["id"]
    await wait_output(server, running_id)
    await asyncio.sleep(0.5)  # the journal writes in batches of 0.1 s

    await server.stop(signal.SIGKILL)
    server.kill_children()

    again = await start(servers, tmp_path)
    assert (await wait_entry(again, done_id, 1))["state"] == "done"
    for entry_id in (running_id, queued_id):
        code, entry = await again.request("GET", f"api/queue/{entry_id}")
        assert code == 200, entry
        assert entry["state"] == "cancelled" and entry["reason"] == "server stopped"


async def test_journal_is_bounded_like_retention(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    bound = "--CanvasApp.retain_finished=3"
    server = await start(servers, tmp_path, bound)
    _, kernel = await server.request("POST", "api/kernels", {"name": "python3"})
    ids = []
    for i in range(6):
        _code, posted = await server.request(
            "POST", "api/queue", {"kernel_id": kernel["id"], "code": str(i)}
        )
        ids.append(posted["entries"][0]["id"])
        await wait_entry(server, ids[-1])
    await server.stop(signal.SIGTERM)
    again = await start(servers, tmp_path, bound)
    answers = [(await again.request("GET", f"api/queue/{entry_id}"))[0] for entry_id in ids]
    assert answers == [404, 404, 404, 200, 200, 200]


async def test_journal_location_is_configurable(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    journal = tmp_path / "elsewhere" / "journal.sqlite"
    server = await start(servers, tmp_path, f"--CanvasApp.journal_path={journal}")
    _, kernel = await server.request("POST", "api/kernels", {"name": "python3"})
    _code, posted = await server.request(
        "POST", "api/queue", {"kernel_id": kernel["id"], "code": "1"}
    )
    await wait_entry(server, posted["entries"][0]["id"])
    await server.stop(signal.SIGTERM)
    assert journal.exists()
