"""The queue contract through a real Jupyter Kernel Gateway (``jupyter server --gateway-url``).

One Kernel Gateway and one server in front of it run for the whole module (child processes
on loopback, both with tokens); each test starts its own kernel through the server, so the
kernel runs on the gateway and the server reaches it only over the gateway's websocket
and REST API. Snippets, notebook cells, stop-on-error, cancel (an interrupt through the
gateway), ``input()``, the status route and the events websocket through a kernel's life,
including a kernel killed or shut down on the gateway side, behind this server's back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import nbformat
import pytest
from gateway_support import GATEWAY_TOKEN, GatewayProcess, GatewayServer, TcpProxy
from server_process import TOKEN
from test_canvas_support import code, write_notebook
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TERMINAL = ("done", "error", "cancelled")

#: A cell whose first output comes two seconds before its second and its end.
BEFORE_AND_AFTER = "import time\nprint('before', flush=True)\ntime.sleep(2)\nprint('after')"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("gateway"))
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def proxy(gateway: GatewayProcess) -> Iterator[TcpProxy]:
    """The server reaches the gateway through a relay whose connections a test can cut."""
    relay = TcpProxy(gateway.port)
    try:
        relay.start()
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def server(proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    process = GatewayServer(tmp_path_factory.mktemp("server"), proxy)
    try:
        process.start_sync()
        yield process
    finally:
        process.stop_sync()


@pytest.fixture
def new_kernel(server: GatewayServer, gateway: GatewayProcess) -> Iterator[Callable[..., Any]]:
    """Start kernels through the server (so on the gateway); shut them down afterwards."""
    started: list[str] = []

    async def start() -> str:
        code_, model = await server.request("POST", "api/kernels", {"name": "python3"})
        assert code_ == 201, model
        started.append(model["id"])
        gateway.remember_kernels()
        status = await kernel_status(server, model["id"], wait_for="idle")
        assert (status["status"], status["execution_state"]) == ("running", "idle"), status
        return str(model["id"])

    yield start
    for kernel_id in started:
        gateway.request("DELETE", f"api/kernels/{kernel_id}")


# -- helpers -------------------------------------------------------------------------------------
async def kernel_status(
    server: GatewayServer, kernel_id: str, wait_for: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    query = f"?wait_for={wait_for}&timeout={timeout}" if wait_for else ""
    code_, status = await server.request("GET", f"api/kernels/{kernel_id}/status{query}")
    assert code_ == 200, status
    return status  # type: ignore[no-any-return]


async def queue(server: GatewayServer, **body: Any) -> list[dict[str, Any]]:
    code_, data = await server.request("POST", "api/queue", body)
    assert code_ == 202, data
    return data["entries"]  # type: ignore[no-any-return]


async def wait_entry(server: GatewayServer, entry_id: str, timeout: float = 45) -> dict[str, Any]:
    code_, entry = await server.request("GET", f"api/queue/{entry_id}?wait={timeout}")
    assert code_ == 200, entry
    return entry  # type: ignore[no-any-return]


async def run(server: GatewayServer, kernel_id: str, source: str) -> dict[str, Any]:
    (entry,) = await queue(server, kernel_id=kernel_id, code=source)
    return await wait_entry(server, entry["id"])


async def kernel_pid(server: GatewayServer, kernel_id: str) -> int:
    entry = await run(server, kernel_id, "import os; print(os.getpid())")
    assert entry["state"] == "done", entry
    return int(entry["outputs"][0]["text"])


class Events:
    """The events websocket of the server, read in the background."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, server: GatewayServer, kernel_id: str) -> Events:
        request = HTTPRequest(
            f"{server.ws_url}api/queue/events?kernel_id={kernel_id}",
            headers={"Authorization": f"token {TOKEN}"},
        )
        return cls(await websocket_connect(request))

    async def _read(self) -> None:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                return
            self.events.append(json.loads(frame))
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The first event (seen so far or to come) that satisfies ``predicate``."""
        seen = 0

        async def find() -> dict[str, Any]:
            nonlocal seen
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    def kernel_states(self) -> list[tuple[str, str]]:
        """(status, execution_state) of every kernel event so far, repeats dropped."""
        states: list[tuple[str, str]] = []
        for event in self.events:
            if event["type"] == "kernel":
                pair = (event["status"]["status"], event["status"]["execution_state"])
                if not states or states[-1] != pair:
                    states.append(pair)
        return states

    def close(self) -> None:
        self.ws.close()
        self._task.cancel()


@asynccontextmanager
async def watching(server: GatewayServer, kernel_id: str) -> AsyncIterator[Events]:
    """The kernel's events, read for the length of the block."""
    events = await Events.open(server, kernel_id)
    try:
        yield events
    finally:
        events.close()


async def occupy(
    server: GatewayServer, events: Events, kernel_id: str, *then: str
) -> list[dict[str, Any]]:
    """Queue a cell that sleeps a minute, then the code in ``then``; return the entries once
    the first one runs."""
    running = await queue(server, kernel_id=kernel_id, code="import time; time.sleep(60)")
    queued = [(await queue(server, kernel_id=kernel_id, code=source))[0] for source in then]
    await events.wait_for(entry_event(running[0]["id"], "running"))
    return running + queued


def kernel_event(status: str, execution_state: str | None = None) -> Callable[[dict], bool]:
    def matches(event: dict[str, Any]) -> bool:
        if event["type"] != "kernel" or event["status"]["status"] != status:
            return False
        return execution_state is None or event["status"]["execution_state"] == execution_state

    return matches


def output_event(entry_id: str) -> Callable[[dict], bool]:
    return lambda e: e["type"] == "output" and e["entry_id"] == entry_id


def entry_event(entry_id: str, state: str) -> Callable[[dict], bool]:
    return lambda e: (
        e["type"] == "entry" and e["entry"]["id"] == entry_id and (e["entry"]["state"] == state)
    )


# -- the queue contract through the gateway ------------------------------------------------------
async def test_snippets_outputs_and_events(server: GatewayServer, new_kernel: Any) -> None:
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        entries = await queue(
            server,
            kernel_id=kernel_id,
            # Flushed: ipykernel flushes stdout and stderr on timers of their own, so
            # unflushed, 'err' can reach IOPub before 'out' (seen once in CI).
            code=(
                "import sys\nprint('out', flush=True)\n"
                "print('err', file=sys.stderr, flush=True)\n6 * 7"
            ),
        )
        (entry,) = entries
        done = await wait_entry(server, entry["id"])
        assert done["state"] == "done", done
        assert done["execution_count"] == 1
        assert done["outputs"] == [
            {"output_type": "stream", "name": "stdout", "text": "out\n"},
            {"output_type": "stream", "name": "stderr", "text": "err\n"},
            {
                "output_type": "execute_result",
                "execution_count": 1,
                "data": {"text/plain": "42"},
                "metadata": {},
            },
        ]
        await events.wait_for(entry_event(entry["id"], "done"))
        mine = [e for e in events.events if e.get("entry_id") == entry["id"]]
        assert [e["output"]["output_type"] for e in mine] == ["stream", "stream", "execute_result"]
        # execution_state comes from the IOPub the server sees through the gateway: busy
        # before the outputs, idle at the end.
        busy = await events.wait_for(kernel_event("running", "busy"))
        assert events.events.index(busy) < events.events.index(mine[0])
        await events.wait_for(kernel_event("running", "idle"))
        seqs = [e["seq"] for e in events.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        # display data and a rich repr survive the JSON websocket protocol of the gateway
        rich = await run(
            server,
            kernel_id,
            "from IPython.display import display, HTML\ndisplay(HTML('<b>x</b>'))",
        )
        assert rich["outputs"][0]["output_type"] == "display_data"
        assert rich["outputs"][0]["data"]["text/html"] == "<b>x</b>"


async def test_stop_on_error_cancels_what_was_queued(
    server: GatewayServer, new_kernel: Any
) -> None:
    kernel_id = await new_kernel()
    first, failing, later = [
        (await queue(server, kernel_id=kernel_id, code=source))[0]
        for source in ("import time; time.sleep(0.5)", "1 / 0", "print('never')")
    ]
    failed = await wait_entry(server, failing["id"])
    assert failed["state"] == "error"
    assert failed["error"]["ename"] == "ZeroDivisionError"
    skipped = await wait_entry(server, later["id"])
    assert skipped["state"] == "cancelled"
    assert skipped["caused_by"] == failing["id"] and "ZeroDivisionError" in skipped["reason"]
    assert (await wait_entry(server, first["id"]))["state"] == "done"
    # the kernel goes on with what is queued next
    assert (await run(server, kernel_id, "print('next')"))["outputs"][0]["text"] == "next\n"


async def test_notebook_cells_run_through_the_gateway(server: GatewayServer) -> None:
    write_notebook(
        server.root,
        "gw.ipynb",
        [code("a", "x = 20"), code("b", "print('x is', x)\nx * 2"), code("c", "x + 1")],
    )
    entries = await queue(server, path="gw.ipynb", select="all")
    assert [e["cell_id"] for e in entries] == ["a", "b", "c"]
    kernel_id = entries[0]["kernel_id"]
    try:
        done = [await wait_entry(server, e["id"]) for e in entries]
        assert [e["state"] for e in done] == ["done"] * 3, done
        assert done[1]["outputs"][0]["text"] == "x is 20\n"
        # The notebook's session (and kernel) was started through the gateway.
        code_, sessions = await server.request("GET", "api/sessions")
        assert code_ == 200
        assert [s["kernel"]["id"] for s in sessions if s["path"] == "gw.ipynb"] == [kernel_id]
        # The outputs reach the file (no browser open).
        path = server.root / "gw.ipynb"
        cells: list[Any] = []
        for _ in range(250):
            try:  # the server writes notebooks in place: a read can see it half written
                cells = nbformat.reads(path.read_text(encoding="utf-8"), 4).cells
            except ValueError:
                cells = []
            if cells and cells[2].get("execution_count") == 3 and cells[2].outputs:
                break
            await asyncio.sleep(0.02)
        assert cells[1].outputs[0]["text"] == "x is 20\n"
        assert cells[2].outputs[0]["data"]["text/plain"] == "21"
        # The kernelspec's names come from the gateway's kernelspec model (a dict there).
        metadata = nbformat.reads(path.read_text(encoding="utf-8"), 4).metadata
        assert metadata.kernelspec.name == "python3"
        assert metadata.kernelspec.language == "python"
        assert metadata.kernelspec.display_name.startswith("Python 3")
        assert metadata.language_info.name == "python"
    finally:
        await server.request("DELETE", f"api/kernels/{kernel_id}")


async def test_cancel_interrupts_through_the_gateway(
    server: GatewayServer, new_kernel: Any
) -> None:
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        (running,) = await queue(
            server,
            kernel_id=kernel_id,
            code="import time\nprint('started', flush=True)\ntime.sleep(60)\nprint('finished')",
        )
        (queued,) = await queue(server, kernel_id=kernel_id, code="print('next')")
        await events.wait_for(output_event(running["id"]))
        code_, cancelled = await server.request("DELETE", f"api/queue/{running['id']}")
        assert code_ == 200, cancelled
        assert cancelled["state"] == "cancelled"
        assert cancelled["reason"].startswith("cancelled by")
        texts = "".join(o.get("text", "") for o in cancelled["outputs"])
        assert "started" in texts and "finished" not in texts
        # the kernel survived the interrupt and runs the next entry
        after = await wait_entry(server, queued["id"])
        assert after["state"] == "done"
        assert after["outputs"][0]["text"] == "next\n"


async def test_input_through_the_gateway(server: GatewayServer, new_kernel: Any) -> None:
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        (entry,) = await queue(server, kernel_id=kernel_id, code="print('hi', input('name? '))")
        waiting = await events.wait_for(entry_event(entry["id"], "awaiting_input"))
        assert waiting["entry"]["input_request"]["prompt"] == "name? "
        code_, answered = await server.request(
            "POST", f"api/queue/{entry['id']}/input", {"value": "gateway"}
        )
        assert code_ == 200, answered
        done = await wait_entry(server, entry["id"])
        assert done["state"] == "done"
        assert done["outputs"][-1]["text"] == "hi gateway\n"


# -- a kernel's life -----------------------------------------------------------------------------
async def test_status_through_restart_and_shutdown(server: GatewayServer, new_kernel: Any) -> None:
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        running, queued = await occupy(server, events, kernel_id, "print('queued')")
        status = await kernel_status(server, kernel_id, wait_for="busy")
        assert status["execution_state"] == "busy"
        assert status["queue"] == {"running": running["id"], "queued": 1}

        code_, _ = await server.request("POST", f"api/kernels/{kernel_id}/restart")
        assert code_ == 200
        ended = await wait_entry(server, running["id"])
        assert ended["state"] == "error" and "restart" in ended["reason"]
        assert (await wait_entry(server, queued["id"]))["state"] == "cancelled"
        await events.wait_for(kernel_event("restarting"))
        await events.wait_for(kernel_event("running", "idle"))
        status = await kernel_status(server, kernel_id)
        assert (status["status"], status["execution_state"]) == ("running", "idle"), (
            status,
            events.kernel_states(),
        )
        assert (await run(server, kernel_id, "print('after restart')"))["state"] == "done"

        code_, _ = await server.request("DELETE", f"api/kernels/{kernel_id}")
        assert code_ == 204
        dead = await kernel_status(server, kernel_id, wait_for="dead")
        assert dead["status"] == "dead" and dead["reason"] == "kernel was shut down", dead
        await events.wait_for(kernel_event("dead"))


async def test_kernel_killed_on_the_gateway(
    server: GatewayServer, gateway: GatewayProcess, new_kernel: Any
) -> None:
    """The process dies on the gateway; the gateway's restarter brings it back."""
    kernel_id = await new_kernel()
    pid = await kernel_pid(server, kernel_id)
    async with watching(server, kernel_id) as events:
        running, queued = await occupy(server, events, kernel_id, "print('queued')")
        os.kill(pid, signal.SIGKILL)

        ended = await wait_entry(server, running["id"])
        assert ended["state"] == "error", ended
        assert ended["reason"] == "kernel died on the gateway and is being restarted there"
        assert ended["error"]["ename"] == "KernelDied"
        skipped = await wait_entry(server, queued["id"])
        assert skipped["state"] == "cancelled" and "died" in skipped["reason"]
        restarting = await events.wait_for(kernel_event("autorestarting"))
        assert restarting["status"]["reason"] == ended["reason"]
        await events.wait_for(kernel_event("running", "idle"))
        status = await kernel_status(server, kernel_id)
        assert (status["status"], status["execution_state"], status["reason"]) == (
            "running",
            "idle",
            None,
        )
        # the new process serves the queue
        assert await kernel_pid(server, kernel_id) != pid


async def test_kernel_shut_down_on_the_gateway(
    server: GatewayServer, gateway: GatewayProcess, new_kernel: Any
) -> None:
    """Someone shuts the kernel down on the gateway itself, not through this server."""
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        running, queued = await occupy(server, events, kernel_id, "print('queued')")
        code_, _ = gateway.request("DELETE", f"api/kernels/{kernel_id}")
        assert code_ == 204

        ended = await wait_entry(server, running["id"])
        assert ended["state"] == "error", ended
        assert "shut down" in ended["reason"]
        assert (await wait_entry(server, queued["id"]))["state"] == "cancelled"
        dead = await kernel_status(server, kernel_id, wait_for="dead")
        assert (dead["status"], dead["execution_state"]) == ("dead", "dead")
        assert dead["reason"] == "kernel was shut down"
        await events.wait_for(kernel_event("dead"))
        # a later entry for the vanished kernel ends at once with the reason
        code_, data = await server.request(
            "POST", "api/queue", {"kernel_id": kernel_id, "code": "1"}
        )
        if code_ == 202:
            late = await wait_entry(server, data["entries"][0]["id"])
            assert late["state"] == "error" and "gateway" in late["reason"], late
        else:
            assert code_ == 404, data


async def test_restart_asked_of_the_gateway_directly(
    server: GatewayServer, gateway: GatewayProcess, new_kernel: Any
) -> None:
    """No kernel_actions event on this server: the kernel's answer ends the restart."""
    kernel_id = await new_kernel()
    pid = await kernel_pid(server, kernel_id)
    async with watching(server, kernel_id) as events:
        (running,) = await occupy(server, events, kernel_id)
        code_, _ = gateway.request("POST", f"api/kernels/{kernel_id}/restart")
        assert code_ == 200
        ended = await wait_entry(server, running["id"])
        assert ended["state"] == "error" and "restarted" in ended["reason"], ended
        await events.wait_for(kernel_event("restarting"))
        await events.wait_for(kernel_event("running", "idle"))
        # the queue goes on at once, on the new process (not after kernel_ready_timeout)
        (after,) = await queue(server, kernel_id=kernel_id, code="import os; print(os.getpid())")
        done = await wait_entry(server, after["id"], timeout=20)
        assert done["state"] == "done", done
        assert int(done["outputs"][0]["text"]) != pid


async def test_connection_dropped_and_reestablished(
    server: GatewayServer, proxy: TcpProxy, new_kernel: Any
) -> None:
    """The server's connections to the gateway are reset mid-run (by a proxy, a network
    blip): the kernel is ``unknown`` meanwhile, the server reconnects with the same
    session, the gateway replays what it buffered, and the entry ends with every output."""
    kernel_id = await new_kernel()
    async with watching(server, kernel_id) as events:
        (running,) = await queue(server, kernel_id=kernel_id, code=BEFORE_AND_AFTER)
        await events.wait_for(output_event(running["id"]))
        proxy.cut()
        unknown = await events.wait_for(kernel_event("unknown"))
        assert "lost the websocket to the gateway" in unknown["status"]["reason"]
        done = await wait_entry(server, running["id"])
        assert done["state"] == "done", done
        assert "".join(o.get("text", "") for o in done["outputs"]) == "before\nafter\n"
        await events.wait_for(kernel_event("running", "idle"))
        assert (await run(server, kernel_id, "print('again')"))["outputs"][0]["text"] == "again\n"


async def test_connection_dropped_while_another_client_watches(
    server: GatewayServer, proxy: TcpProxy, gateway: GatewayProcess, new_kernel: Any
) -> None:
    """With another client on the kernel, the gateway buffers nothing for the server: the
    end of the running cell is lost with the connection. The entry ends once the kernel
    answers on the new connection, instead of staying running forever."""
    kernel_id = await new_kernel()
    other = await websocket_connect(
        HTTPRequest(
            f"ws://127.0.0.1:{gateway.port}/api/kernels/{kernel_id}/channels",
            headers={"Authorization": f"token {GATEWAY_TOKEN}"},
        )
    )
    try:
        async with watching(server, kernel_id) as events:
            (running,) = await queue(server, kernel_id=kernel_id, code=BEFORE_AND_AFTER)
            (queued,) = await queue(server, kernel_id=kernel_id, code="print('next')")
            await events.wait_for(output_event(running["id"]))
            proxy.cut()
            ended = await wait_entry(server, running["id"])
            assert ended["state"] in ("done", "error"), ended
            if ended["state"] == "error":
                assert ended["error"]["ename"] == "ConnectionLost", ended
            # the queue goes on: the next entry runs on the new connection
            assert (await wait_entry(server, queued["id"]))["outputs"][0]["text"] == "next\n"
    finally:
        other.close()


@pytest.fixture
def lonely_pair(tmp_path: Any) -> Iterator[tuple[GatewayProcess, GatewayServer]]:
    """A gateway of its own (this test kills it) and a server that gives up on it quickly."""
    gateway = GatewayProcess(tmp_path / "gateway")
    server = GatewayServer(
        tmp_path / "server",
        gateway,
        [
            "--GatewayClient.gateway_retry_interval=0.2",
            "--GatewayClient.gateway_retry_max=2",
        ],
    )
    try:
        gateway.start()
        server.start_sync()
        yield gateway, server
    finally:
        server.stop_sync(timeout=3)
        gateway.stop()


async def test_gateway_lost(lonely_pair: tuple[GatewayProcess, GatewayServer]) -> None:
    """The gateway dies: the kernel is unreachable, then dead; nothing stays running."""
    gateway, server = lonely_pair
    code_, model = await server.request("POST", "api/kernels", {"name": "python3"})
    assert code_ == 201, model
    kernel_id = model["id"]
    assert (await kernel_status(server, kernel_id, wait_for="idle"))["status"] == "running"
    async with watching(server, kernel_id) as events:
        running, queued = await occupy(server, events, kernel_id, "print('queued')")
        gateway.remember_kernels()
        assert gateway.process is not None
        gateway.process.kill()

        unknown = await events.wait_for(kernel_event("unknown"))
        assert "lost the websocket to the gateway" in unknown["status"]["reason"]
        ended = await wait_entry(server, running["id"])
        assert ended["state"] == "error", ended
        assert "gateway" in ended["reason"]
        assert (await wait_entry(server, queued["id"]))["state"] == "cancelled"
        dead = await kernel_status(server, kernel_id, wait_for="dead")
        assert dead["status"] == "dead" and "could not connect" in dead["reason"], dead


async def test_jupyterlabs_kernel_websocket_through_the_gateway_sends_without_delay(
    server: GatewayServer, new_kernel: Callable[..., Any]
) -> None:
    """In gateway mode the extension puts jupyter_server's gateway websocket connection with
    TCP_NODELAY in place, and JupyterLab's path to a gateway kernel works through it."""
    kernel_id = await new_kernel()
    assert "kernel websockets use NoDelayGatewayWebSocketConnection" in (
        server.log_path.read_text()
    )
    request = HTTPRequest(
        f"{server.ws_url}api/kernels/{kernel_id}/channels",
        headers={"Authorization": f"token {TOKEN}"},
    )
    ws = await websocket_connect(request)
    try:
        msg_id = "nodelay-info"
        ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "kernel_info_request",
                        "username": "test",
                        "session": "nodelay-session",
                        "version": "5.3",
                        "date": "2026-01-01T00:00:00Z",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        while True:
            text = await asyncio.wait_for(ws.read_message(), 30)
            assert text is not None
            message = json.loads(text)
            if message["parent_header"].get("msg_id") == msg_id and message["channel"] == "shell":
                break
        assert message["content"]["status"] == "ok"
    finally:
        ws.close()
