"""Measure what a cell costs through jupyter_canvas against the other ways, on one machine.

``python -m benchmarks [--quick] [--update-docs]`` (or ``bash benchmarks/run.sh`` from a
fresh clone) starts a real ``jupyter server`` with jupyter_canvas and jupyter-server-nbmodel
on the loopback interface, and measures on one kernel, for each path of
:mod:`benchmarks.paths`:

- the latency of a trivial cell (``x = 1``) run one after the other: median and p95;
- the throughput of a burst of queued cells (500; 200 with ``--quick``);
- the time from sending ``print(1)`` to its first output;
- with 100 observers connected, the lag from the kernel's output to each observer (p99),
  for the paths that push outputs (1, 2 and 4), while printing cells run at a steady pace;
- with 20 kernels (10 with ``--quick``) each running 50 cells at once, the time until all
  are done, and the p99 latency of ``GET /api/status`` meanwhile (timed from a separate
  process);
- the server's memory after 100,000 finished entries (5,000 with ``--quick``);
- whether the server still answers (``GET /api/status``) while one cell prints 3,000
  lines (1,000 with ``--quick``) to 50 events-websocket observers.

Rounds of the per-cell measurements interleave the paths (in a rotating order) so that a
drift of the machine's load spreads over all of them. Every figure is written with its
ratio to the direct ZMQ floor: absolute times vary between machines, ratios from one run
are what to compare. Results go to ``benchmarks/results/<name>.json`` and ``.md``; with
``--update-docs`` the table in ``docs/benchmarks.md`` is replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report
from .paths import PATHS, BenchPath, NbmodelPath, close_zmq_clients
from .rawhttp import Connection
from .server import BenchServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"

TRIVIAL = "x = 1"
PRINT_ONE = "print(1)"
#: The kernel's wall clock, sent at once (flush) so the output leaves when it is printed.
PRINT_CLOCK = "print(time.time(), flush=True)"


def log(message: str) -> None:
    """Progress on stderr (stdout stays for the final table)."""
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


class Settings:
    """How much to measure: the full run or ``--quick``."""

    def __init__(self, quick: bool, args: argparse.Namespace) -> None:
        self.quick = quick
        self.rounds = 2 if quick else 5
        self.sequential_per_round = 50 if quick else 200
        self.first_output_per_round = 20 if quick else 50
        self.burst = 200 if quick else 500
        self.observers = args.observers
        self.observer_cells = 30 if quick else 100
        self.observer_interval = args.observer_interval
        self.drain_kernels = args.drain_kernels or (10 if quick else 20)
        self.drain_cells = 50
        self.flood_lines = 1000 if quick else 3000
        self.flood_observers = 50
        self.memory_entries = args.memory_entries or (5_000 if quick else 100_000)
        self.paths = args.paths
        #: Paths that failed (a hang, an error), with what happened: left out from then on.
        self.failed: dict[str, str] = {}

    def fail(self, name: str, what: str) -> None:
        """Record that a path failed; the run goes on without it."""
        self.failed.setdefault(name, what)
        log(f"{name} FAILED: {what}")


# -- helpers -------------------------------------------------------------------------------------
#: The servers of paths that need one of their own (``BenchPath.server_args``), with the
#: kernel each path is measured on there.
OwnServers = dict[str, tuple[BenchServer, str]]


def make_path(
    name: str,
    server: BenchServer,
    kernel_id: str,
    args: argparse.Namespace,
    own: OwnServers | None = None,
) -> BenchPath:
    """An instance of one path on one kernel (on its own server when it has one)."""
    if own and name in own:
        server, kernel_id = own[name]
    path = PATHS[name](server, kernel_id)
    if isinstance(path, NbmodelPath):
        path.poll_interval = args.nbmodel_poll_ms / 1000
    return path


async def wait_entry(conn: Connection, entry_id: str, timeout: float = 600) -> dict[str, Any]:
    """Long-poll an entry until it is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        response = await conn.request("GET", f"/api/queue/{entry_id}?wait=60", expect=(200,))
        entry: dict[str, Any] = response.json()
        if entry["state"] in ("done", "error", "cancelled") or time.monotonic() > deadline:
            return entry


async def queue_cells(conn: Connection, kernel_id: str, code: str, count: int) -> list[str]:
    """``POST /api/queue`` ``count`` times; return the entry ids."""
    ids = []
    for _ in range(count):
        response = await conn.request(
            "POST", "/api/queue", {"kernel_id": kernel_id, "code": code}, expect=(202,)
        )
        ids.append(response.json()["entries"][0]["id"])
    return ids


class Helper:
    """A subprocess of this package (poller, observers) that prints ``ready`` and, on
    SIGTERM, one JSON line."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{module}", *args],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )

    async def ready(self, timeout: float = 120) -> None:
        """Wait for the ``ready`` line."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        if line.strip() != "ready":
            raise RuntimeError(f"benchmarks helper failed to start: {line!r}")

    async def result(self, timeout: float = 60) -> dict[str, Any]:
        """Stop it and read its JSON line."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(self.process.communicate, None, timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"benchmarks helper gave no result (exit {self.process.returncode})")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def kill(self) -> None:
        """End it if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# -- scenarios -----------------------------------------------------------------------------------
async def per_cell_rounds(
    server: BenchServer,
    kernel_id: str,
    settings: Settings,
    args: argparse.Namespace,
    own: OwnServers,
) -> dict[str, dict[str, Any]]:
    """Sequential latency, first output and a burst, for each path, in interleaved rounds."""
    names = settings.paths
    sequential: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    bursts: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for round_index, order in report.interleaved(names, settings.rounds):
        for name in order:
            if name in settings.failed:
                continue
            path = make_path(name, server, kernel_id, args, own)
            try:
                await path.open()
                try:
                    for _ in range(5):  # warm the path (connections, the server's client)
                        await path.run_cell(TRIVIAL)
                    cpu_start = path.server.cpu_seconds()  # the server this path talks to
                    for _ in range(settings.sequential_per_round):
                        sequential[name].append(await path.run_cell(TRIVIAL))
                    cpu[name].append(
                        (path.server.cpu_seconds() - cpu_start) / settings.sequential_per_round
                    )
                    for _ in range(settings.first_output_per_round):
                        first[name].append(await path.time_first_output(PRINT_ONE))
                    bursts[name].append(await path.burst(TRIVIAL, settings.burst))
                finally:
                    await path.close()
            except Exception as err:  # one path failing must not lose the others' figures
                settings.fail(name, f"round {round_index + 1}: {type(err).__name__}: {err}")
                continue
            log(
                f"round {round_index + 1}/{settings.rounds} {name}: "
                f"median {report.percentile(sequential[name], 50) * 1000:.2f} ms, "
                f"burst {settings.burst / bursts[name][-1]:.0f} cells/s"
            )
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if not cpu[name] or not bursts[name]:
            results[name] = {}
            continue
        seq = report.summary_ms(sequential[name])
        seq["server_cpu_ms_per_cell"] = round(1000 * sum(cpu[name]) / len(cpu[name]), 3)
        best = min(bursts[name])
        results[name] = {
            "sequential": seq,
            "first_output": report.summary_ms(first[name]),
            "burst": {
                "cells": settings.burst,
                "runs": len(bursts[name]),
                # The median run; every run is kept for whoever wants the spread.
                "seconds": round(report.percentile(bursts[name], 50), 4),
                "cells_per_s": round(settings.burst / report.percentile(bursts[name], 50), 1),
                "best_cells_per_s": round(settings.burst / best, 1),
                "all_seconds": [round(b, 4) for b in bursts[name]],
            },
        }
    return results


async def observers(
    server: BenchServer, kernel_id: str, settings: Settings, kind: str
) -> dict[str, Any]:
    """Lag from the kernel's output to each of N observers of one kind."""
    conn = server.connection()
    helper = Helper(
        "observers",
        f"--kind={kind}",
        f"--count={settings.observers}",
        f"--port={server.port}",
        f"--token={server.token}",
        f"--kernel-id={kernel_id}",
        f"--connection-file={server.runtime / f'kernel-{kernel_id}.json'}",
    )
    try:
        await helper.ready()
        ids = await queue_cells(conn, kernel_id, "import time", 1)
        await wait_entry(conn, ids[-1])
        # One cell after the other at a steady pace: what is measured is how fast each
        # output reaches every observer, not how fast 100 clients on this same machine
        # can parse a flood of frames.
        for _ in range(settings.observer_cells):
            ids = await queue_cells(conn, kernel_id, PRINT_CLOCK, 1)
            await asyncio.sleep(settings.observer_interval)
        await wait_entry(conn, ids[-1])
        await asyncio.sleep(1.0)  # let the last outputs reach every observer
        result = await helper.result()
    finally:
        helper.kill()
        conn.close()
    lags = result["lags"]
    expected = settings.observers * settings.observer_cells
    summary = report.summary_ms(lags)
    summary.update(
        {
            "observers": settings.observers,
            "cells": settings.observer_cells,
            "received": len(lags),
            "expected": expected,
            "min_per_observer": min(result["received"]) if result["received"] else 0,
        }
    )
    return summary


async def flood(server: BenchServer, kernel_id: str, settings: Settings) -> dict[str, Any]:
    """One cell printing a flood of lines while events observers watch: does the server
    still answer? ``GET /api/status`` is timed from a separate process meanwhile."""
    conn = server.connection()
    observers = Helper(
        "observers",
        "--kind=queue_events",
        f"--count={settings.flood_observers}",
        f"--port={server.port}",
        f"--token={server.token}",
        f"--kernel-id={kernel_id}",
    )
    poller = Helper("poller", f"--port={server.port}", f"--token={server.token}")
    try:
        await observers.ready()
        await poller.ready()
        code = f"for i in range({settings.flood_lines}):\n    print(i, 'x' * 200, flush=True)"
        wall_start = time.time()
        cpu = server.cpu_seconds()
        ids = await queue_cells(conn, kernel_id, code, 1)
        entry = await wait_entry(conn, ids[-1])
        seconds = time.time() - wall_start
        cpu = server.cpu_seconds() - cpu
        wall_end = time.time()
        samples = (await poller.result())["samples"]
    finally:
        poller.kill()
        observers.kill()
        conn.close()
    status = report.summary_ms([lat for sent, lat in samples if wall_start <= sent <= wall_end])
    return {
        "lines": settings.flood_lines,
        "observers": settings.flood_observers,
        "state": entry["state"],
        "seconds": round(seconds, 2),
        "server_cpu_s": round(cpu, 2),
        "status_samples": status["n"],
        "status_median_ms": status["median_ms"],
        "status_p99_ms": status["p99_ms"],
        "status_max_ms": status["max_ms"],
    }


async def drain(
    server: BenchServer,
    kernel_ids: list[str],
    settings: Settings,
    name: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """All kernels run ``drain_cells`` cells at once; time it and time GET /api/status."""
    paths = [make_path(name, server, k, args) for k in kernel_ids]
    await asyncio.gather(*(p.open() for p in paths))
    poller = Helper("poller", f"--port={server.port}", f"--token={server.token}")
    try:
        for p in paths:
            await p.run_cell(TRIVIAL)
        await poller.ready()
        await asyncio.sleep(0.5)
        wall_start = time.time()
        start = time.perf_counter()
        await asyncio.gather(*(p.burst(TRIVIAL, settings.drain_cells) for p in paths))
        seconds = time.perf_counter() - start
        wall_end = time.time()
        samples = (await poller.result())["samples"]
    finally:
        poller.kill()
        await asyncio.gather(*(p.close() for p in paths), return_exceptions=True)
    during = [latency for sent, latency in samples if wall_start <= sent <= wall_end]
    status = report.summary_ms(during)
    return {
        "kernels": len(kernel_ids),
        "cells_per_kernel": settings.drain_cells,
        "seconds": round(seconds, 3),
        "cells_per_s": round(len(kernel_ids) * settings.drain_cells / seconds, 1),
        "status_samples": status["n"],
        "status_median_ms": status["median_ms"],
        "status_p99_ms": status["p99_ms"],
        "status_max_ms": status["max_ms"],
    }


async def memory(server: BenchServer, kernel_ids: list[str], settings: Settings) -> dict[str, Any]:
    """Server RSS before and after N finished entries, queued in batches on several kernels."""
    # The first kernel had a kernel websocket in the per-cell rounds (kernel_ws path),
    # closed since: jupyter_server buffers that kernel's messages for a replay, as after a
    # browser tab closes. Uncapped, that buffer was this run's growth (3 messages per
    # entry); OfflineBufferLimit.max_bytes caps it.
    total = settings.memory_entries
    # Batches of 500 keep at most 1000 entries queued per kernel (the default limit):
    # the next batch is posted while the previous one runs, so the kernels never idle.
    batch = 500
    rss_before = server.rss()
    checkpoints: list[dict[str, Any]] = []
    start = time.perf_counter()
    conns = [server.connection() for _ in kernel_ids]
    share = -(-total // len(kernel_ids))
    finished = [0] * len(kernel_ids)
    step = max(total // 10, 1)

    async def feed(index: int) -> None:
        conn, kernel_id = conns[index], kernel_ids[index]
        left = min(share, total - share * index)
        previous: list[str] | None = None
        while left > 0 or previous:
            ids = await queue_cells(conn, kernel_id, TRIVIAL, min(batch, left)) if left else []
            left -= len(ids)
            if previous:
                entry = await wait_entry(conn, previous[-1])
                if entry["state"] != "done":
                    raise RuntimeError(f"memory run: an entry ended {entry['state']}")
                before = sum(finished)
                finished[index] += len(previous)
                if sum(finished) // step > before // step:
                    checkpoints.append(
                        {"entries": sum(finished), "rss_mb": round(server.rss() / 2**20, 1)}
                    )
                    rss = checkpoints[-1]["rss_mb"]
                    log(f"memory: {sum(finished):,} entries finished, RSS {rss} MB")
            previous = ids

    try:
        await asyncio.gather(*(feed(i) for i in range(len(kernel_ids))))
        listed = await conns[0].request(
            "GET", "/api/queue?state=done,error,cancelled", expect=(200,)
        )
        retained = len(listed.json()["entries"])
    finally:
        for conn in conns:
            conn.close()
    rss_after = server.rss()
    return {
        "entries": sum(finished),
        "kernels": len(kernel_ids),
        "seconds": round(time.perf_counter() - start, 1),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 2**20, 1),
        "retained": retained,
        "checkpoints": checkpoints,
    }


# -- the run -------------------------------------------------------------------------------------
def versions() -> dict[str, str | None]:
    """Versions of what is measured."""
    found: dict[str, str | None] = {}
    for dist in (
        "jupyter_canvas",
        "jupyter_server",
        "jupyter_client",
        "ipykernel",
        "tornado",
        "pyzmq",
        "jupyter_server_nbmodel",
        "websockets",
    ):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, measure everything, stop the server (also on failure)."""
    settings = Settings(args.quick, args)
    server = BenchServer()
    if "nbmodel" in settings.paths and not server.with_nbmodel:
        raise SystemExit(
            "jupyter-server-nbmodel is not installed here: use `bash benchmarks/run.sh` (it makes "
            "a virtual environment with it), or `pip install -r benchmarks/requirements.txt` "
            "in a benchmark-only environment, or leave it out with --paths"
        )
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
            "mode": "quick" if args.quick else "full",
            "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
            "versions": versions(),
            "nbmodel_poll_ms": args.nbmodel_poll_ms,
            "settings": {k: v for k, v in vars(settings).items() if k != "paths"},
        },
        "paths": {},
    }
    server.start()
    log(f"jupyter server on port {server.port} (log: {server.log_path})")
    own: OwnServers = {}
    try:
        await server.wait_ready()
        conn = server.connection()
        kernel_id = await server.start_ready_kernel(conn)
        for name in settings.paths:
            results["paths"][name] = {}
        if not args.skip_per_cell:
            for name in settings.paths:
                if PATHS[name].server_args:
                    other = BenchServer(extra_args=list(PATHS[name].server_args))
                    own[name] = (other, "")
                    other.start()
                    await other.wait_ready()
                    own[name] = (other, await other.start_ready_kernel(other.connection()))
                    log(f"{name}: its own server on port {other.port}")
            log(f"kernel {kernel_id}; per-cell rounds")
            per_cell = await per_cell_rounds(server, kernel_id, settings, args, own)
            for name in settings.paths:
                results["paths"][name].update(per_cell[name])

        if not args.skip_observers:
            for kind in ("zmq", "kernel_ws", "queue_events"):
                if kind not in settings.paths:
                    continue
                log(f"{settings.observers} observers: {kind}")
                try:
                    results["paths"][kind]["observers"] = await observers(
                        server, kernel_id, settings, kind
                    )
                except Exception as err:
                    log(f"observers {kind} FAILED: {type(err).__name__}: {err}")

        if not args.skip_flood and "queue_events" in settings.paths:
            log(f"flood: {settings.flood_lines} lines, {settings.flood_observers} observers")
            results["flood"] = await flood(server, kernel_id, settings)

        if not args.skip_drain:
            log(f"starting {settings.drain_kernels} kernels for the drain")
            # One at a time, each idle before the next: started all at once on 2 cores,
            # a kernel could fail to bind a port another had just been given.
            kernels = [await server.start_ready_kernel(conn) for _ in range(settings.drain_kernels)]
            names = settings.paths
            for name in names[1:] + names[:1]:
                if name in settings.failed or PATHS[name].server_args:
                    continue
                try:
                    result = await drain(server, list(kernels), settings, name, args)
                except Exception as err:
                    settings.fail(name, f"drain: {type(err).__name__}: {err}")
                    continue
                results["paths"][name]["drain"] = result
                log(f"drain {name}: {result['seconds']} s, status p99 {result['status_p99_ms']} ms")
            for k in kernels:
                await server.shutdown_kernel(conn, k)

        if not args.skip_memory:
            log(f"memory: {settings.memory_entries:,} entries")
            kernels = [kernel_id] + [
                await server.start_ready_kernel(conn) for _ in range(args.memory_kernels - 1)
            ]
            results["memory"] = await memory(server, kernels, settings)
        conn.close()
    except BaseException:
        # Keep the server's log (the working directory goes with the server).
        RESULTS.mkdir(parents=True, exist_ok=True)
        kept = RESULTS / "server-failed.log"
        with contextlib.suppress(OSError):
            kept.write_bytes(server.log_path.read_bytes())
            log(f"the run failed; the server's log is in {kept}")
        raise
    finally:
        close_zmq_clients()
        server.stop()
        for other, _kernel in own.values():
            other.stop()
    results["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    for name, what in settings.failed.items():
        results["paths"].setdefault(name, {})["failed"] = what
    report.add_ratios(results)
    results["targets"] = report.check_targets(results)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="about 3 minutes instead of 20")
    parser.add_argument(
        "--name", default=None, help="results file name (default: quick or full + date)"
    )
    parser.add_argument(
        "--update-docs", action="store_true", help="write the table into docs/benchmarks.md"
    )
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        type=lambda s: [p for p in s.split(",") if p],
        help=f"comma-separated subset of {','.join(PATHS)} (zmq must stay: it is the floor)",
    )
    parser.add_argument("--observers", type=int, default=100)
    parser.add_argument(
        "--observer-interval",
        type=float,
        default=0.1,
        help="seconds between two printing cells while the observers watch",
    )
    parser.add_argument("--drain-kernels", type=int, default=0, help="default 20 (10 with --quick)")
    parser.add_argument(
        "--memory-entries", type=int, default=0, help="default 100,000 (5,000 with --quick)"
    )
    parser.add_argument("--memory-kernels", type=int, default=2)
    parser.add_argument(
        "--nbmodel-poll-ms",
        type=float,
        default=NbmodelPath.poll_interval * 1000,
        help="interval between two polls of a pending nbmodel request",
    )
    parser.add_argument(
        "--from-json", default=None, help="render an earlier run's JSON instead of measuring"
    )
    parser.add_argument("--skip-per-cell", action="store_true")
    parser.add_argument("--skip-observers", action="store_true")
    parser.add_argument("--skip-flood", action="store_true")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown or "zmq" not in args.paths:
        parser.error(f"--paths: unknown {unknown} or no zmq (the floor)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(ValueError):
        # A SIGTERM ends the run through the finally blocks (the server is stopped).
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.from_json:
        # Render (and with --update-docs, publish) the results of an earlier run.
        results = json.loads(Path(args.from_json).read_text())
        name = args.name or Path(args.from_json).stem
    else:
        results = asyncio.run(run(args))
        name = args.name or f"{results['meta']['mode']}-{time.strftime('%Y%m%d-%H%M')}"
    report.publish(
        RESULTS,
        name,
        None if args.from_json else results,
        report.markdown(results),
        DOC if args.update_docs else None,
    )
    log(f"results: {RESULTS / name}.json and .md")
    return 0
