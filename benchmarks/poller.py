"""A separate process that times ``GET /api/status`` in a loop until it is told to stop.

Run apart from the process that drives the kernels, so what it measures is how fast the
*server* answers, not how busy the benchmark's own event loop is. On SIGTERM (or SIGINT)
it prints one JSON line: ``{"samples": [[wall_time_at_send, latency_seconds], ...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from .rawhttp import Connection


async def poll(host: str, port: int, token: str, interval: float) -> list[list[float]]:
    """Time one request, sleep ``interval``, again, until a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    conn = Connection(host, port, token)
    samples: list[list[float]] = []
    await conn.request("GET", "/api/status", expect=(200,))
    print("ready", flush=True)
    while not stop.is_set():
        sent = time.time()
        start = time.perf_counter()
        await conn.request("GET", "/api/status", expect=(200,))
        samples.append([sent, time.perf_counter() - start])
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
    conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args()
    samples = asyncio.run(poll(args.host, args.port, args.token, args.interval))
    sys.stdout.write(json.dumps({"samples": samples}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
