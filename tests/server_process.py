"""A real ``jupyter server`` in a subprocess, for tests that stop or restart the server.

No tests here. The server listens on loopback with a token; its root, data and runtime
directories are given, so a second server can take over the first one's state.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

TOKEN = "canvas-test-token"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``jupyter server`` with jupyter_canvas, run as a child process."""

    def __init__(self, base: Path, extra_args: list[str] | None = None) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args or []
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = base / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.base / "config"),
            JUPYTER_DATA_DIR=str(self.base / "data"),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTER_PLATFORM_DIRS="0",
            HOME=str(self.base / "home"),
        )
        return env

    def command(self) -> list[str]:
        """The server's command line, on a new free port (it becomes :attr:`port`)."""
        self.port = free_port()
        return [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.jpserver_extensions={'jupyter_canvas': True}",
            *self.extra_args,
        ]

    async def start(self) -> None:
        """Start the server and wait until it answers."""
        args = self.command()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *args, env=self.env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                code, _ = await self.request("GET", "api/status")
                if code == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("server did not start in 60 s")

    async def request(
        self, method: str, path: str, body: Any = None, timeout: float = 60
    ) -> tuple[int, Any]:
        """Call a route with the token; returns (status, JSON body or text)."""
        data = None if body is None else json.dumps(body)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = ""
        request = HTTPRequest(
            self.url + path,
            method=method,
            body=data,
            headers={"Authorization": f"token {TOKEN}"},
            request_timeout=timeout,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as err:  # 599: the connection failed or closed mid-request
            if err.code != 599:
                raise
            raise OSError(str(err)) from err
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text) if text else None
        except ValueError:
            return response.code, text

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the process to end; returns its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()
        return int(self.process.returncode or 0)

    def kill(self) -> None:
        """Kill the server now if it still runs (test teardown)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    def kill_children(self) -> None:
        """Kill kernels a killed server left behind (they are our children's children)."""
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if str(self.base / "runtime") in cmdline:
                try:
                    proc.kill()
                except psutil.Error:
                    pass


@pytest.fixture(name="servers")
def servers_fixture() -> Iterator[list[ServerProcess]]:
    """Servers a test starts (see :func:`start`); killed, with their kernels, at the end.

    Import it into the test module that uses it.
    """
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()
        server.kill_children()


async def start(servers: list[ServerProcess], base: Path, *args: str) -> ServerProcess:
    """Start a server on ``base`` (root, data and runtime dirs), ended with ``servers``."""
    server = ServerProcess(base, list(args))
    servers.append(server)
    await server.start()
    return server
