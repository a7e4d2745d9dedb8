"""Canvas moves survive a server restart: real `jupyter server` processes on one root."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from server_process import free_port
from test_canvas_support import (
    CanvasPeer,
    code,
    md,
    peer_on,
    stored_places,
    wait_until,
    write_notebook,
)
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = "canvas-restart-test"


@pytest.fixture
def server_home(tmp_path: Path) -> dict[str, Any]:
    """A root, an isolated Jupyter environment and a config shared by both server runs."""
    root = tmp_path / "root"
    root.mkdir()
    dirs = {name: tmp_path / name for name in ("home", "config", "data", "runtime")}
    for path in dirs.values():
        path.mkdir()
    config = {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_canvas": True,
                "jupyter_server_fileid": True,
                "jupyter_server_ydoc": True,
            },
            "root_dir": str(root),
            "open_browser": False,
        },
        "IdentityProvider": {"token": TOKEN},
        # A long debounce: the second move is only written by the shutdown's save.
        "CanvasRoomManager": {"save_delay": 30, "max_save_delay": 60},
        "SQLiteYStore": {"db_path": str(tmp_path / "ystore.db")},
        "BaseFileIdManager": {"db_path": str(tmp_path / "fileid.db")},
    }
    (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "HOME": str(dirs["home"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    return {"root": root, "env": env}


@asynccontextmanager
async def jupyter_server(home: dict[str, Any]) -> AsyncIterator[str]:
    """Run `jupyter server` until the block ends, then stop it like Ctrl-C would (SIGTERM)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyter_server",
        "--allow-root",
        f"--port={port}",
        "--port-retries=0",
        "--ServerApp.ip=127.0.0.1",
        env=home["env"],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        client = AsyncHTTPClient()
        deadline = time.monotonic() + 60
        while True:
            try:
                response = await client.fetch(
                    f"{url}/api/status", headers={"Authorization": f"token {TOKEN}"}
                )
                if response.code == 200:
                    break
            except Exception:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
                raise AssertionError("the server did not stop within 30s of SIGTERM") from None


async def fetch_json(url: str, method: str = "GET", body: Any = None) -> Any:
    request = HTTPRequest(
        url,
        method=method,
        headers={"Authorization": f"token {TOKEN}"},
        body=None if body is None else json.dumps(body),
    )
    response = await AsyncHTTPClient().fetch(request)
    return json.loads(response.body)


@asynccontextmanager
async def peer_of(url: str, file_id: str) -> AsyncIterator[CanvasPeer]:
    ws_url = url.replace("http", "ws", 1) + f"/api/canvas/room/{file_id}"
    connection = await websocket_connect(
        HTTPRequest(ws_url, headers={"Authorization": f"token {TOKEN}"})
    )
    async with peer_on(connection, file_id) as peer:
        yield peer


async def test_moves_survive_a_server_restart(server_home: dict[str, Any]) -> None:
    notebook = write_notebook(
        server_home["root"], "restart.ipynb", [md("A", "# A"), code("x"), code("y")]
    )
    async with jupyter_server(server_home) as url:
        layout = await fetch_json(f"{url}/api/canvas/layout/restart.ipynb")
        file_id = layout["file_id"]
        async with peer_of(url, file_id) as peer:
            peer.move("x", x=410, y=-20)
            layout = await fetch_json(
                f"{url}/api/canvas/layout/restart.ipynb",
                "PATCH",
                {"cells": {"y": {"x": 55, "collapsed": True}}},
            )
            await wait_until(lambda: peer.place("y")["x"] == 55, what="the PATCH in the room")
        assert layout["cells"]["y"]["x"] == 55
        # The debounce is 30 s: nothing is on disk yet; the server's stop must write it.
        assert stored_places(notebook) == {}
    # The server stopped: its last save wrote both moves.
    assert stored_places(notebook) == {
        "x": {"x": 410, "y": -20, "width": 600, "height": 120, "collapsed": False},
        "y": {"x": 55, "y": 300, "width": 600, "height": 120, "collapsed": True},
    }
    async with jupyter_server(server_home) as url:
        layout = await fetch_json(f"{url}/api/canvas/layout/restart.ipynb")
        assert layout["file_id"] == file_id
        assert layout["cells"]["x"] == {
            "x": 410,
            "y": -20,
            "width": 600,
            "height": 120,
            "collapsed": False,
            "placed": True,
        }
        assert layout["cells"]["y"]["collapsed"] is True
        async with peer_of(url, file_id) as peer:
            assert peer.place("x")["x"] == 410
            assert peer.place("A") == {
                "x": 20,
                "y": 20,
                "width": 600,
                "height": 120,
                "collapsed": False,
                "placed": False,
            }
