"""Server memory stays bounded while cells display 50 MB outputs (a real server process).

Each output goes to the blob store (``jupyter_canvas/queue/blobs.py``); the entry, the event
buffer and the journal keep a reference. Measured as the server process's RSS (psutil),
with the default settings.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from server_process import ServerProcess, servers_fixture, start  # noqa: F401

MB = 1024 * 1024
#: The most the server's RSS may grow over the run.
BOUND = 150 * MB
SIZE = 50_000_000


async def displays_grow_rss(server: ServerProcess, cells: int) -> int:
    """Run ``cells`` cells each displaying 50 MB (different content); return the RSS growth."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    status, kernel = await server.request("POST", "api/kernels", {"name": "python3"})
    assert status == 201, kernel
    kernel_id = kernel["id"]
    status, data = await server.request("POST", "api/queue", {"kernel_id": kernel_id, "code": "1"})
    assert status == 202, data
    status, entry = await server.request("GET", f"api/queue/{data['entries'][0]['id']}?wait=60")
    assert entry["state"] == "done", entry
    start_rss = process.memory_info().rss
    peak = 0
    for cell in range(cells):
        code = (
            "from IPython.display import display\n"
            f"display({{'text/plain': {str(cell % 10)!r} * {SIZE}}}, raw=True)\n"
        )
        status, data = await server.request(
            "POST", "api/queue", {"kernel_id": kernel_id, "code": code}
        )
        assert status == 202, data
        entry_id = data["entries"][0]["id"]
        for _ in range(3):
            status, entry = await server.request("GET", f"api/queue/{entry_id}?wait=60", timeout=90)
            if entry["state"] not in ("queued", "running"):
                break
        assert status == 200 and entry["state"] == "done", entry
        peak = max(peak, process.memory_info().rss - start_rss)
    grown = process.memory_info().rss - start_rss
    print(f"RSS grew {grown / MB:.0f} MB after {cells} cells (peak after a cell {peak / MB:.0f})")
    return grown


async def test_rss_after_four_50mb_outputs(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = await start(servers, tmp_path)
    grown = await displays_grow_rss(server, 4)
    assert grown < BOUND, f"server RSS grew {grown / MB:.0f} MB"


@pytest.mark.long
async def test_rss_after_eight_50mb_outputs(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = await start(servers, tmp_path)
    grown = await displays_grow_rss(server, 8)
    assert grown < BOUND, f"server RSS grew {grown / MB:.0f} MB"
