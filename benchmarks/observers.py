"""A separate process holding many observers of one kernel's outputs; it reports their lag.

The cells print the kernel's wall clock (``print(time.time(), flush=True)``); every
observer notes its own wall clock when that output reaches it, and the difference is the
lag from the kernel's output to that observer. Kinds of observer:

- ``zmq``: a ZMQ SUB socket on the kernel's IOPub port (the floor);
- ``kernel_ws``: jupyter_server's kernel websocket (v1 protocol), one session each;
- ``queue_events``: jupyter_canvas's ``/api/queue/events`` websocket.

Prints ``ready`` once every observer is connected; on SIGTERM prints one JSON line
``{"lags": [seconds, ...], "received": [count per observer]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from typing import Any

import zmq
import zmq.asyncio
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
from websockets.asyncio.client import ClientConnection

from .paths import WS_V1, open_websocket

DELIM = b"<IDS|MSG>"


def _printed_time(text: str) -> float | None:
    try:
        return float(text.strip().split()[-1])
    except (ValueError, IndexError):
        return None


class Observers:
    """``count`` observers of one kind; each appends its lags to ``self.lags``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lags: list[float] = []
        self.received: list[int] = [0] * args.count
        self.tasks: list[asyncio.Task[None]] = []
        self.closers: list[Any] = []

    def seen(self, index: int, text: str) -> None:
        now = time.time()
        printed = _printed_time(text)
        if printed is not None:
            self.lags.append(now - printed)
            self.received[index] += 1

    # -- kinds ---------------------------------------------------------------------------------
    async def open_zmq(self, index: int, context: zmq.asyncio.Context) -> None:
        info = json.loads(open(self.args.connection_file).read())  # noqa: ASYNC230
        sock = context.socket(zmq.SUB)
        # Only stream messages: the kernel's PUB socket filters the rest out.
        sock.setsockopt(zmq.SUBSCRIBE, b"stream.")
        sock.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
        self.closers.append(lambda: sock.close(linger=0))

        async def read() -> None:
            while True:
                frames = await sock.recv_multipart()
                if not frames[0].startswith(b"stream."):
                    continue
                at = frames.index(DELIM)
                content = json.loads(frames[at + 5])
                self.seen(index, content.get("text", ""))

        self.tasks.append(asyncio.create_task(read()))

    async def _connect(self, path: str, subprotocols: list[Any] | None = None) -> ClientConnection:
        """Open a websocket to the server (closed by :attr:`closers`)."""
        a = self.args
        ws = await open_websocket(f"ws://{a.host}:{a.port}{path}", a.token, subprotocols)
        self.closers.append(ws.transport.abort)
        return ws

    async def open_kernel_ws(self, index: int) -> None:
        ws = await self._connect(
            f"/api/kernels/{self.args.kernel_id}/channels?session_id={uuid.uuid4().hex}",
            [WS_V1],
        )

        async def read() -> None:
            async for frame in ws:
                if not isinstance(frame, bytes) or b'"stream"' not in frame:
                    continue
                channel, parts = deserialize_msg_from_ws_v1(frame)
                if channel != "iopub" or b'"stream"' not in parts[0]:
                    continue
                self.seen(index, json.loads(parts[3]).get("text", ""))

        self.tasks.append(asyncio.create_task(read()))

    async def open_queue_events(self, index: int) -> None:
        ws = await self._connect(f"/api/queue/events?kernel_id={self.args.kernel_id}")

        async def read() -> None:
            async for frame in ws:
                text = frame if isinstance(frame, str) else frame.decode()
                if '"type":"output"' not in text[:40]:
                    continue
                output = json.loads(text)["output"]
                self.seen(index, output.get("text", ""))

        self.tasks.append(asyncio.create_task(read()))

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        context = zmq.asyncio.Context()
        kind = self.args.kind
        for index in range(self.args.count):
            if kind == "zmq":
                await self.open_zmq(index, context)
            elif kind == "kernel_ws":
                await self.open_kernel_ws(index)
            else:
                await self.open_queue_events(index)
        # Let the subscriptions settle (a ZMQ SUB misses what is sent before it joined).
        await asyncio.sleep(1.0)
        print("ready", flush=True)
        await stop.wait()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # No closing handshakes (a server still flushing a backlog would hold each one for
        # its timeout): the process exits and its sockets close with it.
        for close in self.closers:
            close()
        context.term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("zmq", "kernel_ws", "queue_events"), required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--kernel-id", required=True)
    parser.add_argument("--connection-file", default="")
    args = parser.parse_args()
    observers = Observers(args)
    asyncio.run(observers.run())
    sys.stdout.write(json.dumps({"lags": observers.lags, "received": observers.received}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
