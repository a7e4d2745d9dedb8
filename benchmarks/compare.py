"""A/B: the installed jupyter_canvas against a patched copy, in one run, rounds interleaved.

``python -m benchmarks.compare --variant DIR [--path queue_events] [--observers 100]``
starts two servers at once: A with jupyter_canvas as installed (or ``--base BASE``), B
with ``DIR`` first on its ``PYTHONPATH`` (a copy of the package with a proposed change
applied). Rounds alternate between them, so a change of the machine's load hits both
alike; each round runs sequential trivial cells and a burst through one path (with
``--observers``, that many events-websocket clients watch each server while its cells
run). It prints, for A and B, the median latency, the burst throughput, the server CPU
time per cell and, with observers, their lag.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from . import report
from .paths import PATHS
from .run import PRINT_CLOCK, TRIVIAL, Helper, log
from .server import BenchServer


async def one_round(
    server: BenchServer, kernel_id: str, args: argparse.Namespace, into: dict[str, list[float]]
) -> None:
    """Sequential cells, then a burst, through one path; server CPU per cell of both."""
    path = PATHS[args.path](server, kernel_id)
    await path.open()
    try:
        for _ in range(5):
            await path.run_cell(args.code)
        cpu = server.cpu_seconds()
        for _ in range(args.cells):
            into["sequential"].append(await path.run_cell(args.code))
        seconds = await path.burst(args.code, args.burst)
        into["burst_cells_per_s"].append(args.burst / seconds)
        into["cpu_ms_per_cell"].append(
            1000 * (server.cpu_seconds() - cpu) / (args.cells + args.burst)
        )
    finally:
        await path.close()


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    servers = {"A": BenchServer(pythonpath=args.base), "B": BenchServer(pythonpath=args.variant)}
    figures: dict[str, dict[str, list[float]]] = {
        name: {"sequential": [], "burst_cells_per_s": [], "cpu_ms_per_cell": []} for name in servers
    }
    observers: dict[str, Helper] = {}
    lags: dict[str, list[float]] = {name: [] for name in servers}
    for server in servers.values():
        server.start()
    try:
        kernels = {}
        for name, server in servers.items():
            await server.wait_ready()
            conn = server.connection()
            kernels[name] = await server.start_kernel(conn)
            conn.close()
            if args.observers:
                helper = Helper(
                    "observers",
                    "--kind=queue_events",
                    f"--count={args.observers}",
                    f"--port={server.port}",
                    f"--token={server.token}",
                    f"--kernel-id={kernels[name]}",
                )
                observers[name] = helper
                await helper.ready()
        if args.code == PRINT_CLOCK:
            for name, server in servers.items():
                path = PATHS[args.path](server, kernels[name])
                await path.open()
                await path.run_cell("import time")
                await path.close()
        for round_index in range(args.rounds):
            order = ["A", "B"] if round_index % 2 == 0 else ["B", "A"]
            for name in order:
                await one_round(servers[name], kernels[name], args, figures[name])
            log(f"round {round_index + 1}/{args.rounds}")
        for name, helper in observers.items():
            lags[name] = (await helper.result())["lags"]
    finally:
        for helper in observers.values():
            helper.kill()
        for server in servers.values():
            server.stop()
    summary: dict[str, Any] = {}
    for name, values in figures.items():
        summary[name] = {
            "sequential_median_ms": round(report.percentile(values["sequential"], 50) * 1000, 3),
            "sequential_p95_ms": round(report.percentile(values["sequential"], 95) * 1000, 3),
            "burst_cells_per_s": round(report.percentile(values["burst_cells_per_s"], 50), 1),
            "server_cpu_ms_per_cell": round(report.percentile(values["cpu_ms_per_cell"], 50), 3),
        }
        if lags[name]:
            summary[name]["observer_lag_median_ms"] = round(
                report.percentile(lags[name], 50) * 1000, 3
            )
            summary[name]["observer_lag_p99_ms"] = round(
                report.percentile(lags[name], 99) * 1000, 3
            )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("--variant", required=True, help="directory holding a jupyter_canvas")
    parser.add_argument(
        "--base", default=None, help="directory holding the A side (default: as installed)"
    )
    parser.add_argument("--path", default="queue_events", choices=list(PATHS))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--observers", type=int, default=0)
    parser.add_argument("--output", action="store_true", help="cells print (one output each)")
    args = parser.parse_args()
    args.code = PRINT_CLOCK if args.output else TRIVIAL
    start = time.time()
    summary = asyncio.run(compare(args))
    print(
        f"A = {args.base or 'installed'}, B = {args.variant}; "
        f"path {args.path}, {args.observers} observers"
    )
    for key in summary["A"]:
        a, b = summary["A"][key], summary["B"][key]
        print(f"  {key:24s} A {a:10.3f}   B {b:10.3f}   B/A {b / a if a else float('nan'):.3f}")
    log(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
