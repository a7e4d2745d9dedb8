"""Large outputs are kept once on disk, not in memory (``jupyter_canvas/queue/blobs.py``).

An output larger than ``CanvasApp.blob_threshold_bytes`` is stored in a content-addressed
blob store; entries, events and the journal keep a reference; ``GET
api/queue/<id>/outputs/<index>`` answers it whole and the notebook gets it whole. The
finished entries' outputs are bounded in bytes (``CanvasApp.retain_output_bytes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_canvas.queue.blobs import BlobStore, encode, reference_of
from jupyter_canvas.queue.engine import EntryNotFound

#: Small enough that a test output of a few hundred KB goes to the store.
THRESHOLD = 100_000
BIG = 300_000

#: Code that displays one big output (a plain-text and an HTML value) with a given seed.
DISPLAY = (
    "from IPython.display import display\n"
    "big = ({seed!r} * {size})[:{size}]\n"
    "display({{'text/plain': big, 'text/html': '<pre>' + big + '</pre>'}}, raw=True)\n"
)


def display_code(seed: str, size: int = BIG) -> str:
    return DISPLAY.format(seed=seed, size=size)


def expected_output(seed: str, size: int = BIG) -> dict[str, Any]:
    big = (seed * size)[:size]
    return {
        "output_type": "display_data",
        "data": {"text/plain": big, "text/html": "<pre>" + big + "</pre>"},
        "metadata": {},
    }


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    return {"blob_threshold_bytes": THRESHOLD, "retain_output_bytes": 50_000}


def blob_dir(jp_serverapp: Any) -> Path:
    blobs = jp_serverapp.web_app.settings["jupyter_canvas.services"].queue.blobs
    return Path(blobs.directory)


async def test_large_output_is_a_reference_served_whole(
    jp_serverapp: Any, jp_fetch: Any, api: Any, queue: Any, kernel_id: str
) -> None:
    done = await queue.run(kernel_id, display_code("ab"))
    assert done["state"] == "done", done
    (output,) = done["outputs"]
    ref = reference_of(output)
    assert ref is not None, output
    url = f"api/queue/{done['id']}/outputs/0"
    assert ref["url"] == url
    assert output["data"]["text/plain"].startswith("[jupyter_canvas:")
    assert url in output["data"]["text/plain"]
    assert len(json.dumps(output)) < 2000
    # Served whole, byte for byte as stored (and as named by its sha256).
    response = await jp_fetch(*url.split("/"))
    assert response.headers["Content-Type"].startswith("application/json")
    assert hashlib.sha256(response.body).hexdigest() == ref["blob"]
    assert response.body == encode(expected_output("ab"))
    assert json.loads(response.body) == expected_output("ab")
    # A small output is answered too (it is whole in the entry).
    small = await queue.run(kernel_id, "print('small')")
    response = await jp_fetch("api", "queue", small["id"], "outputs", "0")
    assert json.loads(response.body) == small["outputs"][0]


async def test_identical_outputs_are_stored_once(
    jp_serverapp: Any, jp_fetch: Any, queue: Any, kernel_id: str
) -> None:
    first = await queue.run(kernel_id, display_code("cd"))
    second = await queue.run(kernel_id, display_code("cd"))
    other = await queue.run(kernel_id, display_code("ef"))
    assert first["outputs"], first
    sha = reference_of(first["outputs"][0])["blob"]  # type: ignore[index]
    assert reference_of(second["outputs"][0])["blob"] == sha  # type: ignore[index]
    assert reference_of(other["outputs"][0])["blob"] != sha  # type: ignore[index]
    await asyncio.sleep(0.5)  # the blobs are written in a worker thread
    stored = sorted(p.name for p in blob_dir(jp_serverapp).iterdir() if not p.name.startswith("."))
    assert stored.count(sha) == 1
    assert len(stored) == 2, stored
    for entry in (first, second):
        response = await jp_fetch("api", "queue", entry["id"], "outputs", "0")
        assert json.loads(response.body) == expected_output("cd")


async def test_output_route_errors(api: Any, queue: Any, kernel_id: str) -> None:
    done = await queue.run(kernel_id, display_code("gh"))
    status, error = await api("GET", "api", "queue", done["id"], "outputs", "1")
    assert status == 404
    assert "1 output" in error["message"]
    status, error = await api("GET", "api", "queue", "no-such-entry", "outputs", "0")
    assert status == 404
    assert "no-such-entry" in error["message"]
    status, error = await api("GET", "api", "queue", done["id"], "outputs", "-1")
    assert status == 400


async def test_retained_outputs_are_bounded_in_bytes(
    jp_serverapp: Any, api: Any, queue: Any, kernel_id: str
) -> None:
    """With retain_output_bytes 50 KB, 30 KB outputs push older entries out of memory."""
    engine = jp_serverapp.web_app.settings["jupyter_canvas.services"].queue
    ids = []
    for _ in range(4):
        done = await queue.run(kernel_id, "print('x' * 30_000)")
        assert done["state"] == "done"
        ids.append(done["id"])
    assert engine.retained_count <= 2
    assert sum(engine._retained_bytes.values()) <= 2 * 31_000
    with pytest.raises(EntryNotFound):
        engine.get(ids[0])
    # No longer retained, as past retain_finished; the newest one always is.
    status, error = await api("GET", "api", "queue", ids[0])
    assert status == 404, error
    assert "no longer retained" in error["message"]
    assert engine.get(ids[-1]).id == ids[-1]


async def test_events_carry_the_reference(
    jp_serverapp: Any, jp_ws_fetch: Any, queue: Any, kernel_id: str
) -> None:
    ws = await jp_ws_fetch("api", "queue", "events")
    try:
        done = await queue.run(kernel_id, display_code("ij"))
        while True:
            message = json.loads(await asyncio.wait_for(ws.read_message(), 30))
            if message.get("type") == "output" and message.get("entry_id") == done["id"]:
                break
    finally:
        ws.close()
    output = message["output"]
    assert reference_of(output) == reference_of(done["outputs"][0])
    assert len(json.dumps(message)) < 4000


async def test_unknown_route_is_not_found(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("api", "queue", "x", "outputs", "0")
    assert info.value.code == 404


# -- the store itself ------------------------------------------------------------------------


def big_output(seed: str, size: int) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {"text/plain": seed * size}, "metadata": {}}


async def test_store_is_bounded_and_removes_least_recently_used(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", max_bytes=3500, threshold=100, run_id="run")
    refs = {}
    for seed in "abc":
        refs[seed] = reference_of(store.put(big_output(seed, 1000), f"u/{seed}"))["blob"]
    await asyncio.sleep(0.2)
    assert store.total <= 3500
    # Read "a": it becomes the most recently used; "b" goes first when "d" comes.
    assert await store.read(refs["a"]) == encode(big_output("a", 1000))
    refs["d"] = reference_of(store.put(big_output("d", 1000), "u/d"))["blob"]
    await asyncio.sleep(0.2)
    assert not store.has(refs["b"])
    assert store.has(refs["a"]) and store.has(refs["c"]) and store.has(refs["d"])
    on_disk = {p.name for p in store.directory.iterdir() if not p.name.startswith(".")}
    assert on_disk == {refs["a"], refs["c"], refs["d"]}
    assert sum((store.directory / name).stat().st_size for name in on_disk) <= 3500
    assert await store.read(refs["b"]) is None
    # The same content again: stored once.
    store.put(big_output("a", 1000), "u/a2")
    await asyncio.sleep(0.1)
    assert store.total == sum((store.directory / name).stat().st_size for name in on_disk)
    store.close()
    assert not store.directory.exists()


async def test_stores_of_two_servers_keep_to_their_own(tmp_path: Path) -> None:
    first = BlobStore(tmp_path, max_bytes=1 << 20, threshold=10, run_id="one")
    sha = reference_of(first.put(big_output("x", 100), "u"))["blob"]
    await first.path_of(sha)
    second = BlobStore(tmp_path, max_bytes=1 << 20, threshold=10, run_id="two")
    assert (first.directory / sha).exists()  # a live server's blobs are left alone
    second.close()
    first.close()
