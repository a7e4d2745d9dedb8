"""Warm kernels (``CanvasApp.kernel_pool``): sessions take a ready kernel, the pool refills,
pooled kernels are real managed kernels and stop with the server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from server_process import ServerProcess, servers_fixture, start
from test_canvas_support import code, wait_until, write_notebook

SERVICES_KEY = "jupyter_canvas.services"

servers = servers_fixture


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    return {"kernel_pool": {"python3": 1}}


def pool_of(app: Any) -> Any:
    return app.web_app.settings[SERVICES_KEY].kernel_pool


async def test_sessions_take_pooled_kernels_and_the_pool_refills(
    jp_serverapp: Any, canvas_api: Any, jp_root_dir: Path
) -> None:
    pool = pool_of(jp_serverapp)
    await wait_until(lambda: len(pool.ready("python3")) == 1, 60, "a pooled kernel")
    (first,) = pool.ready("python3")
    status, kernels = await canvas_api("GET", "api", "kernels")
    assert [k["id"] for k in kernels] == [first]  # a real managed kernel, listed as any

    # The queue starts the notebook's session: it takes the pooled kernel, which runs in the
    # notebook's folder as a kernel started for it would.
    write_notebook(jp_root_dir / "sub", "nb.ipynb", [code("a", "import os\nprint(os.getcwd())")])
    status, answer = await canvas_api(
        "POST", "api", "queue", body={"path": "sub/nb.ipynb", "select": "all"}
    )
    assert status == 202, answer
    assert answer["entries"][0]["kernel_id"] == first
    status, entry = await canvas_api(
        "GET", "api", "queue", answer["entries"][0]["id"], params={"wait": "60"}
    )
    assert entry["state"] == "done", entry
    assert entry["outputs"][0]["text"] == f"{(jp_root_dir / 'sub').resolve()}\n"
    assert pool.taken == 1

    # The pool refilled in the background with another kernel.
    await wait_until(lambda: len(pool.ready("python3")) == 1, 60, "the pool refilled")
    (second,) = pool.ready("python3")
    assert second != first

    # JupyterLab's way (POST /api/sessions) takes it too.
    status, session = await canvas_api(
        "POST",
        "api",
        "sessions",
        body={
            "path": "lab.ipynb",
            "type": "notebook",
            "name": "lab.ipynb",
            "kernel": {"name": "python3"},
        },
    )
    assert status == 201, session
    assert session["kernel"]["id"] == second
    assert pool.taken == 2


def kernel_processes(runtime: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if str(runtime) in cmdline and "ipykernel" in cmdline:
            found.append(proc)
    return found


async def test_pooled_kernels_stop_with_the_server(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = await start(servers, tmp_path, "--CanvasApp.kernel_pool={'python3': 2}")
    deadline = time.monotonic() + 90
    kernels: list[Any] = []
    while len(kernels) < 2:
        assert time.monotonic() < deadline, "the pool never filled"
        await asyncio.sleep(0.3)
        _, kernels = await server.request("GET", "api/kernels")
    await wait_until(lambda: len(kernel_processes(tmp_path / "runtime")) == 2, 60, "2 kernels")
    assert await server.stop() == 0
    await wait_until(lambda: not kernel_processes(tmp_path / "runtime"), 30, "kernels gone")
