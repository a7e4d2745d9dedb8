"""The Jupyter server a command runs against, and a small client of its API.

A server is found as ``jupyter server list`` finds them (the runtime directory's server
files): the first running server whose root holds the notebook. ``--url``/``--token`` name
one. When none runs, :class:`EmbeddedServer` starts one for the run (root: the notebook's
folder) and stops it after.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


class CommandError(Exception):
    """Something the user must fix, said in one line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ServerClient:
    """JSON over HTTP and the events websocket of one server, with its token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.http = AsyncHTTPClient()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    async def call(
        self, method: str, path: str, body: Any = None, timeout: float = 90
    ) -> tuple[int, Any]:
        """Call a route; answer (status, parsed JSON). Unreachable: :class:`CommandError`."""
        data = None if body is None else json.dumps(body)
        request = HTTPRequest(
            self.url + path,
            method=method,
            body=data,
            headers=self._headers(),
            request_timeout=timeout,
            allow_nonstandard_methods=True,
        )
        try:
            response = await self.http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as err:
            raise CommandError(f"cannot reach the Jupyter server at {self.url}: {err}") from None
        if response.code == 599:
            raise CommandError(
                f"cannot reach the Jupyter server at {self.url}: {response.error}"
            ) from None
        text = response.body.decode("utf-8", "replace") if response.body else ""
        try:
            return response.code, json.loads(text) if text else None
        except ValueError:
            return response.code, text

    async def check(self) -> None:
        """Make sure the server answers, accepts the token and runs jupyter_canvas."""
        status, _ = await self.call("GET", "api/status", timeout=20)
        if status in (401, 403):
            raise CommandError(
                f"the Jupyter server at {self.url} refused the token ({status}): "
                "give the right one with --token"
            )
        if status != 200:
            raise CommandError(f"{self.url} does not answer as a Jupyter server ({status})")
        status, _ = await self.call("GET", "api/queue?state=running", timeout=20)
        if status == 404:
            raise CommandError(
                f"the Jupyter server at {self.url} does not run the jupyter_canvas extension"
            )

    async def events(self, **params: str) -> WebSocketClientConnection:
        """Open ``/api/queue/events`` (filters as query parameters)."""
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}api/queue/events?{urlencode(params)}"
        try:
            return await websocket_connect(HTTPRequest(url, headers=self._headers()))
        except (OSError, HTTPClientError) as err:
            raise CommandError(f"cannot follow the run's events at {url}: {err}") from None


def api_path(path: str) -> str:
    """An API path with each segment quoted for a URL."""
    return quote(path, safe="/")


def find_server(notebook: Path, runtime_dir: str) -> tuple[dict[str, Any], str] | None:
    """The first running server (as ``jupyter server list``) whose root holds ``notebook``,
    with the notebook's path under that root; None when there is none."""
    from jupyter_server.serverapp import list_running_servers

    target = notebook.resolve()
    for info in list_running_servers(runtime_dir):
        root = Path(info.get("root_dir") or "").expanduser().resolve()
        try:
            relative = target.relative_to(root)
        except ValueError:
            continue
        return info, relative.as_posix()
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A ``jupyter server`` with jupyter_canvas started for one run, on loopback."""

    def __init__(self, root: Path, extra_args: list[str] | None = None) -> None:
        self.root = root
        self.extra_args = list(extra_args or [])
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}/"

    async def start(self, timeout: float = 120) -> None:
        """Start the server and wait until it answers."""
        args = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--port-retries=0",
            "--ip=127.0.0.1",
            "--no-browser",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.jpserver_extensions={'jupyter_canvas': True}",
            *self.extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        env = dict(os.environ, JUPYTER_TOKEN=self.token)
        self.process = await asyncio.create_subprocess_exec(
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            # Its own process group: Ctrl-C in the terminal reaches us, not the server,
            # so we cancel the run first and stop the server after.
            start_new_session=True,
        )
        client = ServerClient(self.url, self.token)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise CommandError(
                    f"the Jupyter server started for the run exited:\n{self.log_tail()}", 1
                )
            try:
                status, _ = await client.call("GET", "api/status", timeout=5)
                if status == 200:
                    return
            except CommandError:
                pass
            await asyncio.sleep(0.1)
        raise CommandError(
            f"the Jupyter server started for the run did not answer in {timeout:g} s", 1
        )

    def log_tail(self, size: int = 3000) -> str:
        """The end of the server's log."""
        self._log.seek(0, os.SEEK_END)
        end = self._log.tell()
        self._log.seek(max(end - size, 0))
        return self._log.read().decode("utf-8", "replace")

    async def stop(self, timeout: float = 30) -> None:
        """Stop the server (it shuts its kernels down and flushes the notebook)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
        self._log.close()
