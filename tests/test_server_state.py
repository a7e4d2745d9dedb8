"""What a server keeps on disk is its own; a killed server's running entry keeps its outputs.

Servers run as subprocesses (tests/server_process.py); two of them on one base share the
root, data (journal) and runtime (stream spill files) directories, as two servers a user
starts do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest
from server_process import ServerProcess, servers_fixture, start  # noqa: F401  (fixture)

CAP = "--NotebookService.stream_cap=1000"


async def wait_entry(server: ServerProcess, entry_id: str, timeout: float = 60) -> dict:
    code, entry = await server.request("GET", f"api/queue/{entry_id}?wait={timeout}")
    assert code == 200, entry
    return entry  # type: ignore[no-any-return]


async def wait_text(server: ServerProcess, entry_id: str, text: str) -> dict:
    for _ in range(600):
        _code, entry = await server.request("GET", f"api/queue/{entry_id}")
        if text in "".join(o.get("text", "") for o in entry["outputs"]):
            return entry  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"entry {entry_id} never printed {text!r}")


def write_notebook(root: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("print('x' * 5000)", id="long"),
            nbformat.v4.new_code_cell(
                "import time\nfor i in range(26):\n    print('line', i, flush=True)\n"
                "time.sleep(120)",
                id="slow",
            ),
        ]
    )
    (root / "work.ipynb").write_text(nbformat.writes(notebook), encoding="utf-8")


def stream_dirs(base: Path) -> list[str]:
    streams = base / "runtime" / "jupyter_canvas" / "streams"
    return sorted(p.name for p in streams.iterdir()) if streams.exists() else []


async def test_second_server_keeps_the_first_ones_state(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    first = await start(servers, tmp_path, CAP, "--CanvasApp.retain_finished=2")
    write_notebook(first.root)
    _, kernel = await first.request("POST", "api/kernels", {"name": "python3"})
    done_ids = []
    for i in range(2):
        _, posted = await first.request(
            "POST", "api/queue", {"kernel_id": kernel["id"], "code": f"{i}"}
        )
        done_ids.append(posted["entries"][0]["id"])
        await wait_entry(first, done_ids[-1])
    code, run = await first.request(
        "POST", "api/queue", {"path": "work.ipynb", "cell_ids": ["long", "slow"]}
    )
    assert code == 202, run
    long_id, slow_id = (e["id"] for e in run["entries"])
    assert (await wait_entry(first, long_id))["state"] == "done"
    await wait_text(first, slow_id, "line 25")
    code, whole = await first.request("GET", f"api/queue/{long_id}/streams/0")
    assert code == 200 and whole.count("x") == 5000

    # A second server on the same runtime and data directories, pruning hard.
    second = await start(servers, tmp_path, "--CanvasApp.retain_finished=0")
    code, whole = await first.request("GET", f"api/queue/{long_id}/streams/0")
    assert code == 200 and whole.count("x") == 5000
    assert len(stream_dirs(tmp_path)) == 2
    # The first server's running entry is not closed out by the second one.
    code, seen = await second.request("GET", f"api/queue/{slow_id}")
    assert code == 200 and seen["state"] == "running", seen
    # Its finished entries are not pruned by the second one (retain_finished=0 there).
    _, kernel2 = await second.request("POST", "api/kernels", {"name": "python3"})
    _, posted = await second.request("POST", "api/queue", {"kernel_id": kernel2["id"], "code": "1"})
    await wait_entry(second, posted["entries"][0]["id"])
    await second.stop(signal.SIGTERM)
    assert len(stream_dirs(tmp_path)) == 1  # the second one removed its own, only
    await first.stop(signal.SIGKILL)
    first.kill_children()

    third = await start(servers, tmp_path)
    # The killed server's leftovers are cleaned up; its entries answer from the journal.
    assert len(stream_dirs(tmp_path)) == 1
    for entry_id in (*done_ids, long_id):
        assert (await wait_entry(third, entry_id, 1))["state"] == "done"
    entry = await wait_entry(third, slow_id, 1)
    assert entry["state"] == "cancelled" and entry["reason"] == "server stopped"


async def test_killed_server_keeps_the_running_entrys_outputs(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = await start(servers, tmp_path)
    write_notebook(server.root)
    code, run = await server.request(
        "POST", "api/queue", {"path": "work.ipynb", "cell_ids": ["slow"]}
    )
    assert code == 202, run
    slow_id = run["entries"][0]["id"]
    await wait_text(server, slow_id, "line 25")
    await asyncio.sleep(1.0)  # the journal writes a running entry's outputs every 0.5 s
    await server.stop(signal.SIGKILL)
    server.kill_children()

    again = await start(servers, tmp_path)
    entry = await wait_entry(again, slow_id, 1)
    assert entry["state"] == "cancelled" and entry["reason"] == "server stopped"
    text = "".join(o.get("text", "") for o in entry["outputs"])
    assert [f"line {i}" for i in range(26)] == text.split("\n")[:26], text


class SaveWatcher(threading.Thread):
    """Kills the server with SIGKILL the moment it is seen saving the notebook."""

    def __init__(self, pid: int, path: Path, size: int, at: float | None) -> None:
        super().__init__(daemon=True)
        self.pid, self.path, self.size, self.at = pid, path, size, at
        self.stop = threading.Event()
        self.killed_during_save = False

    def saving(self) -> bool:
        names = os.listdir(self.path.parent)
        if any(name.startswith(f".~{self.path.name}") for name in names):
            return True  # a temporary file is being written (or a backup is kept)
        try:
            return os.stat(self.path).st_size < self.size  # rewritten in place
        except FileNotFoundError:
            return True

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            if self.at is not None:
                if time.monotonic() - start >= self.at:
                    break
                time.sleep(0.005)
            elif self.saving():
                self.killed_during_save = True
                break
        else:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def big_notebook(root: Path, megabytes: int) -> int:
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n") * (megabytes * 1024 * 1024 // 1081)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(filler, id="big"),
            nbformat.v4.new_code_cell(
                "import time\nfor i in range(100000):\n    print('line', i, flush=True)\n"
                "    time.sleep(0.02)",
                id="run",
            ),
        ]
    )
    text = nbformat.writes(notebook)
    (root / "big.ipynb").write_text(text, encoding="utf-8")
    return len(text.encode())


@pytest.mark.parametrize(
    ("megabytes", "kills"),
    [(8, 4), pytest.param(30, 20, marks=[pytest.mark.long, pytest.mark.timeout(1200)])],
)
async def test_kill_9_during_saves_leaves_a_whole_notebook(
    servers: list[ServerProcess], tmp_path: Path, megabytes: int, kills: int
) -> None:
    """The server is killed while it saves a notebook (and at random moments of a run):
    the file on disk is always a complete notebook."""
    root = tmp_path / "root"
    root.mkdir()
    size = big_notebook(root, megabytes)
    rng = random.Random(14)
    during_save = 0
    for round_ in range(kills):
        server = await start(servers, tmp_path, "--NotebookService.file_flush_interval=0.05")
        assert server.process is not None
        code, run = await server.request(
            "POST", "api/queue", {"path": "big.ipynb", "select": "all"}
        )
        assert code == 202, run
        await wait_text(server, run["entries"][0]["id"], "line 3")
        # Even rounds: the moment a save is seen; odd rounds: a random moment of the run.
        at = None if round_ % 2 == 0 else rng.uniform(0, 2)
        watcher = SaveWatcher(server.process.pid, root / "big.ipynb", size, at)
        watcher.start()
        await asyncio.wait_for(server.process.wait(), 60)
        watcher.join()
        server.kill_children()
        during_save += watcher.killed_during_save
        notebook = nbformat.read(root / "big.ipynb", as_version=4)  # complete JSON, valid
        assert [cell.id for cell in notebook.cells] == ["big", "run"]
        size = (root / "big.ipynb").stat().st_size
    assert during_save == (kills + 1) // 2
    # Temporary files of killed servers are swept by the next server that saves there.
    leftovers = [name for name in os.listdir(root) if name.endswith(".canvas-tmp")]
    assert len(leftovers) <= 1, leftovers
