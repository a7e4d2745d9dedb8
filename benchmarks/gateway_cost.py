"""What a cell costs through jupyter_canvas in front of a Jupyter Kernel Gateway, against local.

``python -m benchmarks.gateway_cost [--quick] [--update-docs]`` starts, on the loopback
interface, a Jupyter Kernel Gateway and two ``jupyter server`` processes with jupyter_canvas:
one with local kernels, one with ``--gateway-url`` pointing at the gateway. On one kernel
of each it measures, in interleaved rounds (a rotating order, so that a drift of the
machine's load touches every path):

- the latency of a trivial cell (``x = 1``) run one after the other: median and p95;
- the time from sending ``print(1)`` to its first output;
- the throughput of a burst of queued cells;
- the CPU the server (and, in gateway mode, the gateway) spends per cell.

Paths: ``POST /api/queue`` with the events websocket and with ``?wait=`` on either server;
the floors are jupyter_client over ZMQ for the local kernel and a websocket client
straight to the gateway's kernel channels (the JSON protocol jupyter_server speaks to
the gateway) for the gateway kernel, so the table separates the gateway's own hop from
what jupyter_canvas adds. Results go to ``benchmarks/results/gateway-<date>.json`` and
``.md``; ``--update-docs`` replaces the table in ``docs/scaling-out.md``. Whatever
happens, the servers, the gateway and every kernel are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report
from .paths import BenchPath, KernelChannelsPath, QueueEventsPath, QueueWaitPath, ZmqPath
from .server import HOST, BenchServer, ChildProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "scaling-out.md"

#: Linux's TCP_QUICKACK (None elsewhere).
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

TRIVIAL = "x = 1"
PRINT_ONE = "print(1)"


def log(message: str) -> None:
    """Progress on stderr (stdout stays for the final table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class KernelGateway(ChildProcess):
    """A ``jupyter kernelgateway`` subprocess (websocket personality) and its kernels."""

    what = "kernel gateway"

    def __init__(self) -> None:
        super().__init__("jupyter-canvas-gateway-")
        self.log_path = self.workdir / "gateway.log"

    def start(self) -> None:
        """Start the gateway (returns at once; see :meth:`wait_ready`)."""
        env = dict(os.environ)
        env["JUPYTER_RUNTIME_DIR"] = str(self.workdir / "runtime")
        env["JUPYTER_DATA_DIR"] = str(self.workdir / "data")
        env["IPYTHONDIR"] = str(self.workdir / "ipython")
        self._spawn(
            [
                sys.executable,
                "-m",
                "kernel_gateway",
                f"--KernelGatewayApp.ip={HOST}",
                f"--KernelGatewayApp.port={self.port}",
                "--KernelGatewayApp.port_retries=0",
                f"--KernelGatewayApp.auth_token={self.token}",
                "--JupyterWebsocketPersonality.list_kernels=True",
                "--KernelGatewayApp.log_level=WARN",
            ],
            env,
            self.workdir,
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``GET /api/kernelspecs`` answers (startup only: a bounded poll)."""
        conn = self.connection()
        try:
            await self._await_answer(conn, "/api/kernelspecs", timeout)
        finally:
            conn.close()


class GatewayDirectPath(KernelChannelsPath):
    """A websocket client straight to the gateway's kernel channels: the gateway's floor.

    The JSON protocol jupyter_server's gateway mode speaks to the gateway; no
    jupyter_server in front.
    """

    name = "gateway_direct"
    label = "websocket straight to the gateway (floor)"

    def __init__(self, gateway: KernelGateway, kernel_id: str, quickack: bool = True) -> None:
        self.gateway = gateway
        self.kernel_id = kernel_id
        self.quickack = quickack

    async def open(self) -> None:
        """Connect and wait until the kernel answers kernel_info."""
        await self._connect(self.gateway.ws_url, self.gateway.token)
        # Acknowledge every frame at once, as jupyter_canvas does (see _ack_now in
        # jupyter_canvas/queue/gateway.py): else Linux's delayed ACK and the gateway's
        # Nagle add about 40 ms to every cell, and this would not be the floor.
        sock = self.ws.transport.get_extra_info("socket")
        self._quickack = (
            (lambda: sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1))
            if sock is not None and QUICKACK is not None and self.quickack
            else (lambda: None)
        )
        await self._start_reading()

    async def _send(
        self, channel: str, msg_type: str, content: dict[str, Any], msg_id: str
    ) -> None:
        await self.ws.send(
            json.dumps(
                {
                    "header": self._header(msg_type, msg_id),
                    "parent_header": {},
                    "metadata": {},
                    "content": content,
                    "channel": channel,
                }
            )
        )

    async def _read(self) -> None:
        async for frame in self.ws:
            self._quickack()
            msg = json.loads(frame)
            channel = msg.get("channel")
            pending = self._pending_for(channel, (msg.get("parent_header") or {}).get("msg_id"))
            if pending is not None:
                self._account(pending, channel, msg["header"]["msg_type"], msg["content"])


#: (key, label, side, path class): side says which server and kernel the path runs on.
PATHS: list[tuple[str, str, str, type[BenchPath]]] = [
    ("local_zmq", "local kernel: jupyter_client over ZMQ (floor)", "local", ZmqPath),
    ("local_queue_events", "local kernel: queue + events websocket", "local", QueueEventsPath),
    ("local_queue_wait", "local kernel: queue + GET ?wait=", "local", QueueWaitPath),
    ("gateway_direct", GatewayDirectPath.label, "gateway", GatewayDirectPath),
    (
        "gateway_direct_delayed_ack",
        "websocket straight to the gateway, delayed ACKs (a plain client)",
        "gateway",
        GatewayDirectPath,
    ),
    (
        "gateway_queue_events",
        "gateway kernel: queue + events websocket",
        "gateway",
        QueueEventsPath,
    ),
    ("gateway_queue_wait", "gateway kernel: queue + GET ?wait=", "gateway", QueueWaitPath),
]


#: The direct clients: no server in between. Their bursts are not measured: the kernel
#: queues a burst of execute_requests itself, and jupyter_client's ZMQ client has been
#: seen to stop receiving replies in the middle of one (the run would hang).
FLOORS = frozenset({"local_zmq", "gateway_direct", "gateway_direct_delayed_ack"})


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run the rounds, stop everything."""
    gateway = KernelGateway()
    local = BenchServer()
    behind = BenchServer(
        [f"--gateway-url={gateway.base_url}", f"--GatewayClient.auth_token={gateway.token}"]
    )
    try:
        gateway.start()
        local.start()
        await gateway.wait_ready()
        behind.start()
        await asyncio.gather(local.wait_ready(), behind.wait_ready())
        conn_local, conn_behind = local.connection(), behind.connection()
        local_kernel = await local.start_kernel(conn_local)
        gateway_kernel = await behind.start_kernel(conn_behind)
        gateway.remember_descendants()
        log(
            f"gateway {gateway.base_url}, local kernel {local_kernel}, "
            f"gateway kernel {gateway_kernel}"
        )
        results = await rounds(args, gateway, local, behind, local_kernel, gateway_kernel)
        await local.shutdown_kernel(conn_local, local_kernel)
        await behind.shutdown_kernel(conn_behind, gateway_kernel)
        conn_local.close()
        conn_behind.close()
        return results
    finally:
        behind.stop()
        local.stop()
        gateway.stop()


async def bounded(step: Any, timeout: float = 120) -> Any:
    """A measured step, failing the run rather than hanging it."""
    return await asyncio.wait_for(step, timeout)


async def open_warm(make: Any, attempts: int = 3) -> BenchPath:
    """Open a path and run five cells through it (connections, the server's client).

    A ZMQ subscriber that joins just before the first cell can miss its ``idle`` (ZMQ's
    slow joiner): that cell never finishes. Such a path is opened again.
    """
    for _attempt in range(attempts):
        path: BenchPath = make()
        await path.open()
        try:
            for _ in range(5):
                await asyncio.wait_for(path.run_cell(TRIVIAL), 10)
            return path
        except asyncio.TimeoutError:
            await path.close()
            log(f"{type(path).__name__}: a warm-up cell never finished; opening it again")
    raise RuntimeError(f"could not warm a path after {attempts} attempts")


async def rounds(
    args: argparse.Namespace,
    gateway: KernelGateway,
    local: BenchServer,
    behind: BenchServer,
    local_kernel: str,
    gateway_kernel: str,
) -> dict[str, Any]:
    """Interleaved rounds of every path; the figures of each."""
    keys = [key for key, *_ in PATHS]
    sequential: dict[str, list[float]] = {k: [] for k in keys}
    first: dict[str, list[float]] = {k: [] for k in keys}
    bursts: dict[str, list[float]] = {k: [] for k in keys}
    server_cpu: dict[str, list[float]] = {k: [] for k in keys}
    gateway_cpu: dict[str, list[float]] = {k: [] for k in keys}
    for index, order in report.interleaved(PATHS, args.rounds):
        for key, _label, side, cls in order:
            server = local if side == "local" else behind
            kernel_id = local_kernel if side == "local" else gateway_kernel

            def make(
                cls: type[BenchPath] = cls,
                key: str = key,
                server: BenchServer = server,
                kernel_id: str = kernel_id,
            ) -> BenchPath:
                if cls is GatewayDirectPath:
                    return GatewayDirectPath(gateway, gateway_kernel, key == "gateway_direct")
                return cls(server, kernel_id)

            path = await open_warm(make)
            try:
                cpu0, gw0 = server.cpu_seconds(), gateway.cpu_seconds()
                for _ in range(args.cells):
                    sequential[key].append(await bounded(path.run_cell(TRIVIAL)))
                server_cpu[key].append((server.cpu_seconds() - cpu0) / args.cells)
                gateway_cpu[key].append((gateway.cpu_seconds() - gw0) / args.cells)
                for _ in range(args.first_outputs):
                    first[key].append(await bounded(path.time_first_output(PRINT_ONE)))
                if key not in FLOORS:
                    bursts[key].append(await bounded(path.burst(TRIVIAL, args.burst)))
            finally:
                await path.close()
            log(
                f"round {index + 1}/{args.rounds} {key}: median "
                f"{report.percentile(sequential[key], 50) * 1000:.2f} ms"
                + (f", burst {args.burst / bursts[key][-1]:.0f} cells/s" if bursts[key] else "")
            )
    figures: dict[str, Any] = {}
    for key, label, side, _cls in PATHS:
        figures[key] = {
            "label": label,
            "side": side,
            "sequential": report.summary_ms(sequential[key]),
            "first_output": report.summary_ms(first[key]),
            "burst_cells_per_s": (
                round(args.burst / report.percentile(bursts[key], 50), 1) if bursts[key] else None
            ),
            # A direct client does not go through the server: its CPU there is idle noise.
            "server_cpu_ms_per_cell": round(1000 * sum(server_cpu[key]) / args.rounds, 3),
            "gateway_cpu_ms_per_cell": round(1000 * sum(gateway_cpu[key]) / args.rounds, 3),
        }
    return figures


def summarize(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline: what going through the gateway adds to a queued cell."""
    local = figures["local_queue_events"]["sequential"]["median_ms"]
    through = figures["gateway_queue_events"]["sequential"]["median_ms"]
    direct = figures["gateway_direct"]["sequential"]["median_ms"]
    floor = figures["local_zmq"]["sequential"]["median_ms"]
    plain = figures["gateway_direct_delayed_ack"]["sequential"]["median_ms"]
    return {
        "plain_gateway_client_median_ms": plain,
        "local_queue_median_ms": local,
        "gateway_queue_median_ms": through,
        "added_by_gateway_ms": round(through - local, 3),
        "ratio_gateway_to_local": report.ratio(through, local),
        "gateway_hop_ms": round(direct - floor, 3),
        "canvas_over_gateway_floor_ms": round(through - direct, 3),
        "canvas_over_zmq_floor_ms": round(local - floor, 3),
    }


def markdown(results: dict[str, Any]) -> str:
    """The tables for the results file and the docs."""
    meta, figures, head = results["meta"], results["paths"], results["summary"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} CPUs, loopback), "
        f"{meta['rounds']} rounds x {meta['cells']} sequential cells per path, "
        f"jupyter_server {meta['versions']['jupyter_server']}, "
        f"jupyter-kernel-gateway {meta['versions']['jupyter-kernel-gateway']}, "
        f"ipykernel {meta['versions']['ipykernel']}.",
        "",
        "| path | trivial cell median (ms) | p95 (ms) | first output median (ms) | "
        "burst (cells/s) | server CPU per cell (ms) | gateway CPU per cell (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label, side, _cls in PATHS:
        f = figures[key]
        direct = key in FLOORS
        server_cpu = "n/a" if direct else f"{f['server_cpu_ms_per_cell']:.2f}"
        burst = "n/a" if f["burst_cells_per_s"] is None else f"{f['burst_cells_per_s']:.0f}"
        gateway_cpu = f"{f['gateway_cpu_ms_per_cell']:.2f}" if side == "gateway" else "n/a"
        lines.append(
            f"| {label} | {f['sequential']['median_ms']:.2f} | {f['sequential']['p95_ms']:.2f} "
            f"| {f['first_output']['median_ms']:.2f} | {burst} "
            f"| {server_cpu} | {gateway_cpu} |"
        )
    lines += [
        "",
        f"A queued cell (events websocket) takes **{head['gateway_queue_median_ms']:.2f} ms** "
        f"through the gateway against **{head['local_queue_median_ms']:.2f} ms** on a local "
        f"kernel: **+{head['added_by_gateway_ms']:.2f} ms per cell** "
        f"(x {head['ratio_gateway_to_local']}). The gateway's own hop (direct websocket "
        f"client against ZMQ) is {head['gateway_hop_ms']:.2f} ms; jupyter_canvas adds "
        f"{head['canvas_over_gateway_floor_ms']:.2f} ms over the gateway floor and "
        f"{head['canvas_over_zmq_floor_ms']:.2f} ms over the ZMQ floor.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gateway_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and cells")
    parser.add_argument("--rounds", type=int, default=0, help="default 5 (2 with --quick)")
    parser.add_argument("--cells", type=int, default=0, help="default 200 (50 with --quick)")
    parser.add_argument("--first-outputs", type=int, default=0, help="default 50 (20 quick)")
    parser.add_argument("--burst", type=int, default=0, help="default 300 (100 with --quick)")
    parser.add_argument("--name", default=None, help="results file name")
    parser.add_argument(
        "--update-docs", action="store_true", help="write the table into docs/scaling-out.md"
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.cells = args.cells or (50 if args.quick else 200)
    args.first_outputs = args.first_outputs or (20 if args.quick else 50)
    args.burst = args.burst or (100 if args.quick else 300)
    return args


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(ValueError):
        # A SIGTERM ends the run through the finally blocks (everything is stopped).
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    figures = asyncio.run(measure(args))
    results = {
        "meta": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "rounds": args.rounds,
            "cells": args.cells,
            "burst": args.burst,
            "seconds": round(time.monotonic() - started, 1),
            "versions": {
                name: _version(name)
                for name in (
                    "jupyter_canvas",
                    "jupyter_server",
                    "jupyter-kernel-gateway",
                    "ipykernel",
                    "tornado",
                )
            },
        },
        "paths": figures,
    }
    results["summary"] = summarize(figures)
    name = (
        args.name or f"gateway-{'quick' if args.quick else 'full'}-{time.strftime('%Y%m%d-%H%M')}"
    )
    report.publish(RESULTS, name, results, markdown(results), DOC if args.update_docs else None)
    log(f"results: {RESULTS / name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
