"""Profile the server's hot path with py-spy while one path runs cells.

``python -m benchmarks.profile [--path queue_events] [--cells 2000] [--observers 0]``
starts the same server as the benchmark, runs a burst of trivial cells (and as many
sequential ones) through one path, with ``--observers`` events-websocket clients
connected, while ``py-spy record`` samples the server process. It writes the collapsed
stacks (``benchmarks/results/profile-<name>.txt``, readable by speedscope or
flamegraph.pl) and prints where the server's CPU time goes: the functions with the most
samples of their own, and the share of every sample under a few functions that matter.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .paths import PATHS, close_zmq_clients
from .run import PRINT_CLOCK, RESULTS, TRIVIAL, Helper, log, queue_cells, wait_entry
from .server import BenchServer

#: Functions whose inclusive share the summary always shows (substring of the frame).
WATCHED = (
    "EventBus.publish",
    "Subscription.offer",
    "QueueEventsHandler._send",
    "write_message",
    "Entry.to_json",
    "ExecutionQueue._transition",
    "ExecutionQueue._output",
    "KernelQueue._read",
    "KernelQueue._receive",
    "Session.deserialize",
    "Session.serialize",
    "KernelStatusTracker.",
    "KernelWatch._on_iopub",
    "QueueAuditLog.on_transition",
    "EventLogger.emit",
    "QueueHandler.post",
    "EntryHandler.get",
    "RequestHandler.execute",
    "record_activity",
    "_on_zmq_reply",
    "json.dumps",
    "dumps (json",
    "loads (json",
    "validate",
    "_run_once",
)

FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    """``func (package/module.py)``: the frame without the long site-packages path."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match.group('func')} ({file})"


def summarize(collapsed: Path, top: int = 30) -> str:
    """Self and inclusive sample shares from py-spy's collapsed stacks."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    watched: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [short(f) for f in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        for name in WATCHED:
            if any(name in f for f in frames):
                watched[name] += count
    if total == 0:
        return "no samples\n"
    out = [f"{total} samples of the server's busy threads\n", "self time (top):"]
    for frame, count in self_counts.most_common(top):
        out.append(f"  {100 * count / total:5.1f}%  {frame}")
    out.append("\ninclusive time (top):")
    for frame, count in inclusive.most_common(top):
        out.append(f"  {100 * count / total:5.1f}%  {frame}")
    out.append("\ninclusive time of selected functions:")
    for name in WATCHED:
        out.append(f"  {100 * watched[name] / total:5.1f}%  {name}")
    return "\n".join(out) + "\n"


async def workload(server: BenchServer, args: argparse.Namespace) -> None:
    """Warm up, then run the cells that the profile samples."""
    conn = server.connection()
    kernel_id = await server.start_kernel(conn)
    path = PATHS[args.path](server, kernel_id)
    await path.open()
    observers = None
    try:
        for _ in range(20):
            await path.run_cell(TRIVIAL)
        if args.observers:
            observers = Helper(
                "observers",
                "--kind=queue_events",
                f"--count={args.observers}",
                f"--port={server.port}",
                f"--token={server.token}",
                f"--kernel-id={kernel_id}",
            )
            await observers.ready()
            await wait_entry(conn, (await queue_cells(conn, kernel_id, "import time", 1))[0])
        code = PRINT_CLOCK if args.output else TRIVIAL
        spy = start_spy(server, args)
        start = time.perf_counter()
        cpu = server.cpu_seconds()
        await path.burst(code, args.cells)
        for _ in range(args.cells // 4):
            await path.run_cell(code)
        cells = args.cells + args.cells // 4
        log(
            f"{cells} cells in {time.perf_counter() - start:.1f} s; server CPU "
            f"{1000 * (server.cpu_seconds() - cpu) / cells:.2f} ms per cell"
        )
        spy.send_signal(2)  # SIGINT: py-spy writes what it has
        spy.wait(timeout=60)
    finally:
        await path.close()
        close_zmq_clients()
        if observers is not None:
            await observers.result()
            observers.kill()
        conn.close()


def start_spy(server: BenchServer, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """``py-spy record`` on the server, collapsed stacks, until SIGINT."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = RESULTS / f"profile-{args.name}.txt"
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--path", default="queue_events", choices=list(PATHS))
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--observers", type=int, default=0)
    parser.add_argument("--output", action="store_true", help="cells print (one output each)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--name", default=None)
    parser.add_argument("--summary-only", default=None, help="summarize an existing profile")
    args = parser.parse_args()
    if args.summary_only:
        print(summarize(Path(args.summary_only)))
        return
    args.name = args.name or f"{args.path}{'-obs' + str(args.observers) if args.observers else ''}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = BenchServer()
    server.start()
    try:
        asyncio.run(server.wait_ready())
        asyncio.run(workload(server, args))
    finally:
        server.stop()
    collapsed = RESULTS / f"profile-{args.name}.txt"
    summary = summarize(collapsed)
    (RESULTS / f"profile-{args.name}.summary.txt").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
