"""The five ways of running a cell that the benchmark compares, behind one interface.

Each path runs code on a kernel and tells when it finished and when its first output
arrived, the way a client of that path learns it:

1. ``zmq``: jupyter_client's AsyncKernelClient on the kernel's own ZMQ sockets (the floor);
2. ``kernel_ws``: jupyter_server's kernel websocket with the binary v1 protocol, as
   JupyterLab uses it;
3. ``nbmodel``: jupyter-server-nbmodel's ``POST /api/kernels/<id>/execute``, then polling
   the ``Location`` it answers with;
4. ``queue_events``: ``POST /api/queue``, completion and outputs pushed on the events
   websocket ``/api/queue/events``;
5. ``queue_wait``: ``POST /api/queue``, then ``GET /api/queue/<id>?wait=``.

A cell is finished when its ``execute_reply`` and its ``idle`` status both arrived (1, 2),
when the request answers 200 (3), when the entry is ``done`` (4, 5).
"""

from __future__ import annotations

import asyncio
import json
import queue
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from websockets.asyncio.client import ClientConnection, connect

from .server import BenchServer

clock = time.perf_counter

TERMINAL = frozenset({"done", "error", "cancelled"})

#: Longest wait (seconds) for one cell or burst: a lost message fails the run, not hangs it.
CELL_TIMEOUT = 60.0


#: One jupyter_client per kernel for the whole run. A second client opened on the same
#: kernel from this process after the first one closed stopped receiving the
#: execute_replies of a burst (the idles still came), with ipykernel 7.4 and
#: jupyter_client 8.10: reusing one client sidesteps that and costs nothing.
_ZMQ_CLIENTS: dict[tuple[int, str], AsyncKernelClient] = {}


def close_zmq_clients() -> None:
    """Close the direct clients (the run is over)."""
    for client in _ZMQ_CLIENTS.values():
        client.stop_channels()
    _ZMQ_CLIENTS.clear()


async def _drain(client: AsyncKernelClient) -> None:
    """Drop what arrived while no round used the client (other paths' cells)."""
    for get in (client.get_iopub_msg, client.get_shell_msg):
        while True:
            try:
                await get(timeout=0)
            except queue.Empty:
                break


async def _iopub_live(client: AsyncKernelClient) -> None:
    """Wait until the kernel answers and our IOPub subscription receives its messages.

    A SUB socket starts receiving only once its subscription reached the kernel, and a
    missed ``idle`` is a cell that never ends. A ``kernel_info_request`` is answered on
    IOPub too (busy, idle): once one of those arrives, the kernel is up and nothing more
    can be missed (jupyter_server's "nudge" does the same).
    """
    for _attempt in range(120):
        msg_id = client.kernel_info()
        deadline = time.monotonic() + 0.5
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await client.get_iopub_msg(timeout=left)
            except queue.Empty:
                break
            if msg["parent_header"].get("msg_id") == msg_id:
                return
    raise TimeoutError("the kernel's IOPub never reached this client")


class _Execution:
    """What came back so far for one execute_request (paths 1 and 2)."""

    __slots__ = ("done", "first_output", "idle", "replied")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[float] = loop.create_future()
        self.first_output: asyncio.Future[float] = loop.create_future()
        self.replied = False
        self.idle = False

    def reply(self) -> None:
        self.replied = True
        self._maybe_done()

    def went_idle(self) -> None:
        self.idle = True
        self._maybe_done()

    def output(self) -> None:
        if not self.first_output.done():
            self.first_output.set_result(clock())

    def _maybe_done(self) -> None:
        if self.replied and self.idle and not self.done.done():
            self.done.set_result(clock())


class BenchPath:
    """One way of running cells on one kernel."""

    name = ""
    label = ""
    #: Options of a server of its own for this path (measured on that server's kernel, in the
    #: per-cell rounds only); empty: the shared server and kernel.
    server_args: tuple[str, ...] = ()

    def __init__(self, server: BenchServer, kernel_id: str) -> None:
        self.server = server
        self.kernel_id = kernel_id

    async def open(self) -> None:
        """Connect (not timed)."""

    async def close(self) -> None:
        """Disconnect."""

    async def submit(self, code: str) -> Any:
        """Send one cell; return a handle for :meth:`finished` / :meth:`first_output`."""
        raise NotImplementedError

    async def finished(self, handle: Any) -> float:
        """Wait until the cell finished; return the clock when this client learnt it."""
        raise NotImplementedError

    async def first_output(self, handle: Any) -> float:
        """Wait for the cell's first output; return the clock when it arrived."""
        raise NotImplementedError

    # -- what the scenarios measure ------------------------------------------------------------
    async def run_cell(self, code: str) -> float:
        """Seconds from sending one cell to knowing it finished."""
        start = clock()
        handle = await self.submit(code)
        return await self._end(handle) - start

    async def time_first_output(self, code: str) -> float:
        """Seconds from sending one cell to its first output."""
        start = clock()
        handle = await self.submit(code)
        first = await asyncio.wait_for(self.first_output(handle), CELL_TIMEOUT)
        await self._end(handle)
        return first - start

    async def burst(self, code: str, count: int) -> float:
        """Seconds from sending the first of ``count`` cells to the end of the last."""
        start = clock()
        handles = [await self.submit(code) for _ in range(count)]
        ends = [await self._end(handle) for handle in handles]
        return max(ends) - start

    async def _end(self, handle: Any) -> float:
        try:
            return await asyncio.wait_for(self.finished(handle), CELL_TIMEOUT)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self.name}: a cell did not finish within {CELL_TIMEOUT:g} s"
            ) from None


async def open_websocket(
    url: str, token: str, subprotocols: list[Any] | None = None
) -> ClientConnection:
    """A websocket client as every benchmark client opens one: token, no compression, no size
    limit, no pings (nothing but the measured traffic).
    """
    return await connect(
        url,
        additional_headers={"Authorization": f"token {token}"},
        subprotocols=subprotocols,
        compression=None,
        max_size=None,
        ping_interval=None,
    )


#: The IOPub messages that carry an output.
OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})

#: The content of an execute_request for one cell.
EXECUTE_CONTENT = {
    "silent": False,
    "store_history": True,
    "user_expressions": {},
    "allow_stdin": False,
    "stop_on_error": True,
}


class KernelMessagePath(BenchPath):
    """A path that speaks the kernel messaging protocol itself (paths 1 and 2, and the
    gateway floor of ``gateway_cost``): it tracks each execute_request's reply, idle and
    first output.
    """

    def _track(self) -> None:
        """Start with no request pending (call before the reader starts)."""
        self._pending: dict[str, _Execution] = {}
        #: kernel_info_requests sent to learn that the channel is ready, by msg_id.
        self._info: dict[str, asyncio.Future[None]] = {}

    def _pending_for(self, channel: str | None, parent_id: str | None) -> _Execution | None:
        """The execution a message answers (None: not one of ours, or a kernel_info_reply)."""
        if parent_id is None:
            return None
        info = self._info.pop(parent_id, None) if channel == "shell" else None
        if info is not None and not info.done():
            info.set_result(None)
            return None
        return self._pending.get(parent_id)

    @staticmethod
    def _account(
        pending: _Execution,
        channel: str | None,
        msg_type: str,
        content: dict[str, Any] | bytes,
    ) -> None:
        """Note what a message says of its execution.

        ``content``: the message's content, or its JSON (decoded only if needed).
        """
        if channel == "shell":
            if msg_type == "execute_reply":
                pending.reply()
        elif channel == "iopub":
            if msg_type == "status":
                fields = json.loads(content) if isinstance(content, bytes) else content
                if fields.get("execution_state") == "idle":
                    pending.went_idle()
            elif msg_type in OUTPUT_TYPES:
                pending.output()

    async def finished(self, handle: _Execution) -> float:
        """Reply and idle seen."""
        return await handle.done

    async def first_output(self, handle: _Execution) -> float:
        """First output message seen."""
        return await handle.first_output


# -- 1. direct ZMQ -------------------------------------------------------------------------------
class ZmqPath(KernelMessagePath):
    """jupyter_client's AsyncKernelClient on the kernel's ZMQ sockets: the floor."""

    name = "zmq"
    label = "jupyter_client over ZMQ (floor)"

    async def open(self) -> None:
        """Connect to the kernel's ports (once per kernel; later rounds reuse the client)."""
        key = (self.server.port, self.kernel_id)
        client = _ZMQ_CLIENTS.get(key)
        if client is None:
            client = AsyncKernelClient()
            client.load_connection_info(self.server.connection_info(self.kernel_id))  # type: ignore[arg-type]
            # No heartbeat channel: its thread misses beats on a busy machine and then
            # wait_for_ready() declares a live kernel dead. Readiness is proven on IOPub.
            client.start_channels(hb=False)
            await _iopub_live(client)
            _ZMQ_CLIENTS[key] = client
        else:
            await _drain(client)
        self.client = client
        self._track()
        self._readers = [
            asyncio.create_task(self._read("shell", client.shell_channel)),
            asyncio.create_task(self._read("iopub", client.iopub_channel)),
        ]

    async def _receive(self, channel: Any) -> dict[str, Any]:
        # During a burst the DEALER sends while replies arrive, and a wait on its
        # edge-triggered file descriptor sometimes sleeps with replies already waiting
        # (seen with pyzmq 27 and jupyter_client 8.10: the socket polls readable, the
        # receive never resolves). A receive that took 10 ms is given up and asked again:
        # the new one takes what is waiting at once.
        socket = channel.socket
        while True:
            try:
                parts = await asyncio.wait_for(socket.recv_multipart(), 0.01)
                break
            except asyncio.TimeoutError:
                continue
        _idents, frames = self.client.session.feed_identities(parts)
        return self.client.session.deserialize(frames)  # type: ignore[no-any-return]

    async def _read(self, name: str, channel: Any) -> None:
        while True:
            msg = await self._receive(channel)
            pending = self._pending_for(name, msg["parent_header"].get("msg_id"))
            if pending is not None:
                self._account(pending, name, msg["msg_type"], msg["content"])

    async def close(self) -> None:
        """Stop the readers; the client stays connected for the next round."""
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    async def submit(self, code: str) -> _Execution:
        """Send an execute_request."""
        pending = _Execution(asyncio.get_running_loop())
        msg_id = self.client.execute(code)
        self._pending[msg_id] = pending
        return pending


# -- 2. jupyter_server's kernel websocket --------------------------------------------------------
WS_V1 = "v1.kernel.websocket.jupyter.org"


class KernelChannelsPath(KernelMessagePath):
    """A websocket client of a kernel's ``/api/kernels/<id>/channels`` (jupyter_server's or a
    kernel gateway's): subclasses say how a message is framed.
    """

    async def _connect(
        self, ws_url: str, token: str, subprotocols: list[Any] | None = None
    ) -> None:
        """Open the channels websocket with a session of our own."""
        self.session_id = uuid.uuid4().hex
        self.ws = await open_websocket(
            f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self.session_id}",
            token,
            subprotocols,
        )

    async def _start_reading(self) -> None:
        """Read the websocket, then wait until the kernel answers a kernel_info_request.

        The server answers kernel_info once the kernel is there: the channel is ready.
        """
        self._track()
        self._reader = asyncio.create_task(self._read())
        loop = asyncio.get_running_loop()
        for _attempt in range(60):
            msg_id = uuid.uuid4().hex
            waiter = self._info[msg_id] = loop.create_future()
            await self._send("shell", "kernel_info_request", {}, msg_id)
            try:
                await asyncio.wait_for(waiter, 1.0)
                return
            except asyncio.TimeoutError:
                continue

    def _header(self, msg_type: str, msg_id: str) -> dict[str, Any]:
        return {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "bench",
            "session": self.session_id,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }

    async def _send(
        self, channel: str, msg_type: str, content: dict[str, Any], msg_id: str
    ) -> None:
        raise NotImplementedError

    async def _read(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Close the websocket."""
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def submit(self, code: str) -> _Execution:
        """Send an execute_request."""
        pending = _Execution(asyncio.get_running_loop())
        msg_id = uuid.uuid4().hex
        self._pending[msg_id] = pending
        await self._send("shell", "execute_request", {"code": code, **EXECUTE_CONTENT}, msg_id)
        return pending


class KernelWebsocketPath(KernelChannelsPath):
    """``/api/kernels/<id>/channels`` with the binary v1 protocol (what JupyterLab does)."""

    name = "kernel_ws"
    label = "jupyter_server kernel websocket (JupyterLab)"

    async def open(self) -> None:
        """Open the websocket with a session of our own and wait for a kernel_info_reply."""
        await self._connect(self.server.ws_url, self.server.token, [WS_V1])
        await self._start_reading()

    async def _send(
        self, channel: str, msg_type: str, content: dict[str, Any], msg_id: str
    ) -> None:
        parts = [
            json.dumps(self._header(msg_type, msg_id)).encode(),
            b"{}",
            b"{}",
            json.dumps(content).encode(),
        ]
        await self.ws.send(serialize_msg_to_ws_v1(parts, channel))

    async def _read(self) -> None:
        async for frame in self.ws:
            if not isinstance(frame, bytes):
                continue
            channel, parts = deserialize_msg_from_ws_v1(frame)
            parent_id = json.loads(parts[1]).get("msg_id") if len(parts[1]) > 2 else None
            pending = self._pending_for(channel, parent_id)
            if pending is not None:
                self._account(
                    pending,
                    channel,
                    json.loads(parts[0])["msg_type"],
                    parts[3],
                )


class StockKernelWebsocketPath(KernelWebsocketPath):
    """The same websocket as jupyter_server serves it without jupyter_canvas's TCP_NODELAY
    (``CanvasApp.kernel_websocket_nodelay=False`` on a server of its own)."""

    name = "kernel_ws_stock"
    label = "jupyter_server kernel websocket, stock (Nagle on)"
    server_args = ("--CanvasApp.kernel_websocket_nodelay=False",)


# -- 3. jupyter-server-nbmodel -------------------------------------------------------------------
class NbmodelPath(BenchPath):
    """jupyter-server-nbmodel: ``POST .../execute``, then poll the ``Location`` it gives."""

    name = "nbmodel"
    label = "jupyter-server-nbmodel REST execute + poll"

    #: Seconds between two polls of a pending request (its own frontend starts at 0.1 s
    #: and doubles up to 1 s; the benchmark polls far faster, in nbmodel's favour).
    poll_interval = 0.002

    async def open(self) -> None:
        """One keep-alive connection for the posts, one for the polls."""
        self.post_conn = self.server.connection()
        self.poll_conn = self.server.connection()

    async def close(self) -> None:
        """Close the connections."""
        self.post_conn.close()
        self.poll_conn.close()

    async def submit(self, code: str) -> str:
        """POST the code; return the URL to poll."""
        response = await self.post_conn.request(
            "POST",
            f"/api/kernels/{self.kernel_id}/execute",
            {"code": code, "metadata": {}},
            expect=(202,),
        )
        return response.headers["location"]

    async def finished(self, handle: str) -> float:
        """Poll until the request is complete (200) or failed (500)."""
        while True:
            response = await self.poll_conn.request("GET", handle)
            if response.status in (200, 500):
                if response.status == 500:
                    raise RuntimeError(f"nbmodel request failed: {response.body[:300]!r}")
                return clock()
            if response.status != 202:
                raise RuntimeError(f"nbmodel answered {response.status}: {response.body[:300]!r}")
            await asyncio.sleep(self.poll_interval)

    async def time_first_output(self, code: str) -> float:
        """Poll until a pending answer (or the final one) carries an output."""
        start = clock()
        handle = await self.submit(code)
        while True:
            response = await self.poll_conn.request("GET", handle)
            body = response.json() if response.body else {}
            outputs = body.get("outputs", "[]")
            if isinstance(outputs, str):
                outputs = json.loads(outputs or "[]")
            if outputs:
                first = clock()
                if response.status == 202:  # consume the final answer too
                    await self._end(handle)
                return first - start
            if response.status != 202:
                raise RuntimeError(f"nbmodel gave no output: {response.body[:300]!r}")
            await asyncio.sleep(self.poll_interval)


# -- 4 and 5. jupyter_canvas's queue -------------------------------------------------------------
class _QueuePath(BenchPath):
    async def open(self) -> None:
        """A keep-alive connection for the posts."""
        self.post_conn = self.server.connection()

    async def close(self) -> None:
        """Close the connection."""
        self.post_conn.close()

    async def submit(self, code: str) -> str:
        """``POST /api/queue``; return the entry id."""
        response = await self.post_conn.request(
            "POST", "/api/queue", {"kernel_id": self.kernel_id, "code": code}, expect=(202,)
        )
        return str(response.json()["entries"][0]["id"])


class QueueEventsPath(_QueuePath):
    """``POST /api/queue``; the end and the outputs pushed on ``/api/queue/events``."""

    name = "queue_events"
    label = "jupyter_canvas POST /api/queue + events websocket"

    async def open(self) -> None:
        """Subscribe to the kernel's events before queuing anything."""
        await super().open()
        loop = asyncio.get_running_loop()
        self._ended: dict[str, float] = {}
        self._outputs: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._output_waiters: dict[str, asyncio.Future[float]] = {}
        self._loop = loop
        self.ws = await open_websocket(
            f"{self.server.ws_url}/api/queue/events?kernel_id={self.kernel_id}", self.server.token
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            now = clock()
            text = frame if isinstance(frame, str) else frame.decode()
            # Only entry and output events matter here; skip decoding the others.
            if text.startswith('{"seq":', 0) and '"type":"output"' in text[:40]:
                entry_id = json.loads(text)["entry_id"]
                if entry_id not in self._outputs:
                    self._arrived(self._outputs, self._output_waiters, entry_id, now)
            elif '"type":"entry"' in text[:40]:
                entry = json.loads(text)["entry"]
                if entry["state"] in TERMINAL:
                    self._arrived(self._ended, self._waiters, entry["id"], now)

    @staticmethod
    def _arrived(
        seen: dict[str, float], waiters: dict[str, asyncio.Future[float]], entry_id: str, now: float
    ) -> None:
        """Note when something of an entry arrived; wake whoever waits for it."""
        seen[entry_id] = now
        waiter = waiters.pop(entry_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def _when(
        self, seen: dict[str, float], waiters: dict[str, asyncio.Future[float]], entry_id: str
    ) -> float:
        """When something of an entry arrived (waiting for it if it has not yet)."""
        arrived = seen.pop(entry_id, None)
        if arrived is not None:
            return arrived
        waiter = waiters[entry_id] = self._loop.create_future()
        result = await waiter
        seen.pop(entry_id, None)
        return result

    async def close(self) -> None:
        """Close the websocket and the connection."""
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await super().close()

    async def finished(self, handle: str) -> float:
        """The entry's terminal ``entry`` event arrived."""
        return await self._when(self._ended, self._waiters, handle)

    async def first_output(self, handle: str) -> float:
        """The entry's first ``output`` event arrived."""
        return await self._when(self._outputs, self._output_waiters, handle)


class QueueWaitPath(_QueuePath):
    """``POST /api/queue``, then ``GET /api/queue/<id>?wait=60`` (a long poll)."""

    name = "queue_wait"
    label = "jupyter_canvas POST /api/queue + GET ?wait="

    async def open(self) -> None:
        """One connection for the posts, one for the long polls."""
        await super().open()
        self.wait_conn = self.server.connection()

    async def close(self) -> None:
        """Close the connections."""
        self.wait_conn.close()
        await super().close()

    async def finished(self, handle: str) -> float:
        """The long poll answered with a terminal entry."""
        while True:
            response = await self.wait_conn.request(
                "GET", f"/api/queue/{handle}?wait=60", expect=(200,)
            )
            now = clock()
            if response.json()["state"] in TERMINAL:
                return now

    async def first_output(self, handle: str) -> float:
        """The long poll answers at the end: that is when this client sees the output."""
        return await self.finished(handle)

    async def time_first_output(self, code: str) -> float:
        """Seconds from POST to the answer that carries the output."""
        start = clock()
        handle = await self.submit(code)
        return await self._end(handle) - start

    async def burst(self, code: str, count: int) -> float:
        """Entries of a kernel run in order: the last one's end is the burst's end."""
        start = clock()
        handles = [await self.submit(code) for _ in range(count)]
        end = await self._end(handles[-1])
        return end - start


PATHS: dict[str, type[BenchPath]] = {
    cls.name: cls
    for cls in (
        ZmqPath,
        KernelWebsocketPath,
        StockKernelWebsocketPath,
        NbmodelPath,
        QueueEventsPath,
        QueueWaitPath,
    )
}
