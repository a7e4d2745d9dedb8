"""Start a real ``jupyter server`` with the extension, start kernels on it, clean it all up.

The server runs as a subprocess on the loopback interface, on a free port, with a random
token, a root and runtime directory of its own (so the benchmark finds the kernels'
connection files), and jupyter_canvas and jupyter-server-nbmodel enabled. Whatever
happens, :meth:`ChildProcess.stop` ends the server and every kernel it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from .rawhttp import Connection

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def nbmodel_available() -> bool:
    """Whether jupyter-server-nbmodel is installed in this environment."""
    try:
        import jupyter_server_nbmodel  # noqa: F401
    except ImportError:
        return False
    return True


class ChildProcess:
    """A child process listening on loopback, in a session of its own, with a token and a
    temporary work directory; :meth:`stop` ends it and every process it started.

    What :class:`BenchServer` and the benchmarks' kernel gateway have in common.
    """

    #: What the process is called in errors.
    what = "child process"

    def __init__(self, prefix: str, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = log_path or (self.workdir / "server.log")
        self.process: subprocess.Popen[bytes] | None = None
        self._descendants: dict[int, psutil.Process] = {}
        self._log_file: Any = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{HOST}:{self.port}"

    def connection(self) -> Connection:
        """A new keep-alive HTTP connection to the process."""
        return Connection(HOST, self.port, self.token)

    # -- life ----------------------------------------------------------------------------------
    def _spawn(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        """Start ``args`` in a session of its own, its output going to :attr:`log_path`."""
        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )

    async def _await_answer(self, conn: Connection, path: str, timeout: float) -> None:
        """Wait until ``GET <path>`` answers 200 (startup only: a bounded poll)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.what} exited with {self.process.returncode}; log:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            try:
                response = await conn.request("GET", path)
                if response.status == 200:
                    return
            except OSError:
                conn.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.what} did not answer within {timeout} s")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        """End the process and every process it started (also after a failure)."""
        process = self.process
        if process is None:
            return
        self.remember_descendants()
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        # Kernels run in sessions of their own: end the ones the process left behind.
        for proc in self._descendants.values():
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                pass
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def remember_descendants(self) -> None:
        """Note the child processes (kernels), so stop() can end them."""
        if self.process is None:
            return
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self._descendants[child.pid] = child
        except psutil.Error:
            pass

    # -- measurements of the process -----------------------------------------------------------
    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def rss(self) -> int:
        """The process's resident memory, in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        """User + system CPU time the process (not its kernels) used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


class BenchServer(ChildProcess):
    """One ``jupyter server`` subprocess and the kernels started on it."""

    what = "jupyter server"

    def __init__(
        self,
        extra_args: list[str] | None = None,
        log_path: Path | None = None,
        pythonpath: str | None = None,
    ) -> None:
        super().__init__("jupyter-canvas-bench-", log_path)
        self.root = self.workdir / "root"
        self.runtime = self.workdir / "runtime"
        self.data = self.workdir / "data"
        for folder in (self.root, self.runtime, self.data):
            folder.mkdir()
        self.extra_args = list(extra_args or [])
        #: A directory put first on the server's PYTHONPATH: a patched copy of
        #: jupyter_canvas there is measured instead of the installed one.
        self.pythonpath = pythonpath
        self.with_nbmodel = nbmodel_available()

    def start(self) -> None:
        """Start the server subprocess (returns at once; see :meth:`wait_ready`)."""
        extensions = ["jupyter_canvas"]
        if self.with_nbmodel:
            extensions.append("jupyter_server_nbmodel")
        args = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.ip={HOST}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            *(f"--ServerApp.jpserver_extensions={name}=True" for name in extensions),
            "--ServerApp.log_level=WARN",
            *self.extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        env = dict(os.environ)
        # Its own runtime directory (the kernels' connection files) and data directory
        # (whatever the extension keeps there, such as its journal).
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime)
        env["JUPYTER_DATA_DIR"] = str(self.data)
        # The kernels' IPython history goes to a database of this run, not the user's.
        env["IPYTHONDIR"] = str(self.workdir / "ipython")
        env["PYTHONUNBUFFERED"] = "1"
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (self.pythonpath, env.get("PYTHONPATH")) if p
            )
        self._spawn(args, env, self.root)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``GET /api/status`` answers (startup only: a bounded poll)."""
        conn = self.connection()
        try:
            await self._await_answer(conn, "/api/status", timeout)
            # The extension answers: it is loaded.
            await conn.request("GET", "/api/queue", expect=(200,))
        finally:
            conn.close()

    # -- kernels -------------------------------------------------------------------------------
    async def start_kernel(self, conn: Connection) -> str:
        """Start a kernel through ``POST /api/kernels`` and return its id."""
        response = await conn.request("POST", "/api/kernels", {"name": "python3"}, expect=(201,))
        kernel_id = str(response.json()["id"])
        self.remember_descendants()
        return kernel_id

    async def start_ready_kernel(self, conn: Connection, attempts: int = 3) -> str:
        """Start a kernel and wait until it says idle (``GET /api/kernels/<id>/status``).

        Many kernels started at once on a small machine can collide on a port (ipykernel
        fails to bind, "Address already in use"); one that is not idle within a minute is
        shut down and another started in its place.
        """
        for _attempt in range(attempts):
            kernel_id = await self.start_kernel(conn)
            response = await conn.request(
                "GET", f"/api/kernels/{kernel_id}/status?wait_for=idle&timeout=60", expect=(200,)
            )
            if response.json().get("execution_state") == "idle":
                return kernel_id
            await self.shutdown_kernel(conn, kernel_id)
        raise RuntimeError(f"no kernel became idle in {attempts} attempts")

    def connection_info(self, kernel_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The kernel's connection file, from the server's runtime directory."""
        path = self.runtime / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise FileNotFoundError(path)
            time.sleep(0.05)
        info: dict[str, Any] = json.loads(path.read_text())
        return info

    async def shutdown_kernel(self, conn: Connection, kernel_id: str) -> None:
        """Shut a kernel down through ``DELETE /api/kernels/<id>``."""
        await conn.request("DELETE", f"/api/kernels/{kernel_id}", expect=(204, 404))
