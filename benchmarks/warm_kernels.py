"""Cold and warm kernels: time from ``POST /api/queue`` on a notebook with no session to its
first output, without and with ``CanvasApp.kernel_pool``.

    python -m benchmarks.warm_kernels [--runs N]

Each run queues a new notebook (so a session and kernel must be found for it) and waits on
the events websocket for the first ``output`` event of the run. Warm runs wait for the pool
to be full again before the next one. The servers are started for the benchmark (as
``jupyter canvas run`` starts one) and stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from jupyter_canvas.cli.server import EmbeddedServer, ServerClient


def write_notebook(root: Path, name: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('first')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, str(root / name))


async def first_output(client: ServerClient, name: str) -> float:
    """Seconds from the POST to the run's first output event."""
    events = await client.events(path=name)
    try:
        start = time.perf_counter()
        status, answer = await client.call("POST", "api/queue", {"path": name, "select": "all"})
        assert status == 202, answer
        while True:
            text = await asyncio.wait_for(events.read_message(), 120)
            assert text is not None
            event = json.loads(text)
            if event.get("type") == "output" and event.get("run_id") == answer["run_id"]:
                return time.perf_counter() - start
    finally:
        events.close()


async def measure(pool: int, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extra = [f"--CanvasApp.kernel_pool={{'python3': {pool}}}"] if pool else []
        server = EmbeddedServer(root, extra)
        await server.start()
        client = ServerClient(server.url, server.token)
        times = []
        try:
            for i in range(runs):
                if pool:
                    # Wait until the pool is full: kernels of no session, started and idle.
                    while True:
                        _, kernels = await client.call("GET", "api/kernels")
                        _, sessions = await client.call("GET", "api/sessions")
                        used = {s["kernel"]["id"] for s in sessions}
                        idle = [
                            k
                            for k in kernels
                            if k["id"] not in used and k["execution_state"] == "idle"
                        ]
                        if len(idle) >= pool:
                            break
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(0.5)  # the pool's own readiness check
                name = f"nb{i}.ipynb"
                write_notebook(root, name)
                times.append(await first_output(client, name))
        finally:
            await server.stop()
        return times


def summary(label: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"{label}: median {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, "
        f"max {ms[-1]:.0f} ms over {len(ms)} runs"
    )


async def main(runs: int) -> None:
    cold = await measure(0, runs)
    warm = await measure(1, runs)
    print(summary("cold (no pool)", cold))
    print(summary("warm (kernel_pool python3: 1)", warm))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
