"""A real Jupyter Kernel Gateway and a ``jupyter server --gateway-url`` in front of it.

No tests here. Both run as child processes on loopback, each with a token; the gateway's
kernels are its children. :meth:`GatewayProcess.stop` and :meth:`GatewayServer.stop`
end them and every kernel they started, also after a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from server_process import TOKEN, ServerProcess, free_port

GATEWAY_TOKEN = "canvas-gateway-token"


def _wait_http(url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait (startup only, bounded) until ``url`` answers 200."""
    deadline = time.monotonic() + 60
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in 60 s: {log.read_text(errors='replace')[-3000:]}")


def _end(
    process: subprocess.Popen[bytes] | None,
    descendants: dict[int, psutil.Process],
    timeout: float = 20,
) -> None:
    """SIGTERM the process group, SIGKILL what is left, then every remembered descendant."""
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=5)
    for proc in descendants.values():
        try:
            if proc.is_running():
                proc.kill()
        except psutil.Error:
            pass


def _remember(process: subprocess.Popen[bytes] | None, into: dict[int, psutil.Process]) -> None:
    if process is None:
        return
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            into[child.pid] = child
    except psutil.Error:
        pass


class GatewayProcess:
    """``jupyter kernelgateway`` (the websocket personality) as a child process."""

    def __init__(self, base: Path, extra_args: list[str] | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args or []
        self.port = free_port()
        self.log_path = base / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._descendants: dict[int, psutil.Process] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the gateway and wait until it answers."""
        env = dict(os.environ)
        env.update(
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTER_DATA_DIR=str(self.base / "data"),
            IPYTHONDIR=str(self.base / "ipython"),
            JUPYTER_PLATFORM_DIRS="0",
        )
        args = [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={self.port}",
            "--KernelGatewayApp.port_retries=0",
            f"--KernelGatewayApp.auth_token={GATEWAY_TOKEN}",
            # jupyter_server lists the gateway's kernels to refresh its own view of them.
            "--JupyterWebsocketPersonality.list_kernels=True",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, env=env, stdout=log, stderr=log, start_new_session=True
            )
        _wait_http(f"{self.url}/api/kernelspecs", GATEWAY_TOKEN, self.process, self.log_path)

    def remember_kernels(self) -> None:
        """Note the kernel processes, so :meth:`stop` ends them whatever happens."""
        _remember(self.process, self._descendants)

    def kernel_pids(self) -> list[int]:
        """The gateway's kernel processes now."""
        self.remember_kernels()
        assert self.process is not None
        return [p.pid for p in psutil.Process(self.process.pid).children(recursive=True)]

    def request(self, method: str, path: str) -> tuple[int, Any]:
        """Call the gateway's REST API directly (what someone else on the gateway does)."""
        request = urllib.request.Request(
            f"{self.url}/{path}",
            method=method,
            headers={"Authorization": f"token {GATEWAY_TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as err:
            return err.code, None

    def stop(self) -> None:
        """End the gateway and every kernel it started."""
        self.remember_kernels()
        _end(self.process, self._descendants)
        self.process = None


class TcpProxy:
    """A TCP relay to the gateway on a thread of its own, whose connections a test can cut.

    What a load balancer or a network blip does to the server's connections; it lives
    across the tests of a module (each test runs on an event loop of its own).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on a free loopback port."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        """Reset every relayed connection now (both sides see it close)."""

        def reset() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(reset)

    def stop(self) -> None:
        """Stop listening and relaying."""

        def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._loop.stop()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(close)
            self._thread.join(10)


class GatewayServer(ServerProcess):
    """``jupyter server --gateway-url=<gateway>`` with jupyter_canvas, started synchronously."""

    def __init__(
        self,
        base: Path,
        gateway: GatewayProcess | TcpProxy,
        extra_args: list[str] | None = None,
    ):
        super().__init__(
            base,
            [
                f"--gateway-url={gateway.url}",
                f"--GatewayClient.auth_token={GATEWAY_TOKEN}",
                "--ServerApp.log_level=INFO",
                *(extra_args or []),
            ],
        )
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def start_sync(self) -> None:
        """Start the server and wait until it answers (module fixtures have no loop)."""
        args = self.command()
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                args, env=self.env(), stdout=log, stderr=log, start_new_session=True
            )
        _wait_http(f"{self.url}api/queue", TOKEN, self.popen, self.log_path)

    def stop_sync(self, timeout: float = 20) -> None:
        """End the server (it leaves the gateway's kernels to the gateway).

        ``timeout``: seconds a graceful stop may take (it asks the gateway to shut the
        kernels down: with the gateway gone, that only waits).
        """
        _end(self.popen, {}, timeout)
        self.popen = None
