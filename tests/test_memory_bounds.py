"""Memory stays bounded while the queue runs code on kernels nobody is connected to.

jupyter_server buffers every message of a kernel whose last websocket closed, to replay
them if that session reconnects, and never bounds that buffer; queued code made it the
server's largest growth (about 3 KB per trivial entry). ``OfflineBufferLimit`` caps it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_canvas.status.offline_buffer import CappedMessageBuffer

#: A small cap, so a few entries pass it.
MAX_BYTES = 20_000


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    """The shared test server's config (tests/conftest.py), with a small offline buffer cap."""
    jp_server_config["OfflineBufferLimit"] = Config({"max_bytes": MAX_BYTES})
    return jp_server_config


def buffered(km: Any, kernel_id: str) -> list[Any] | None:
    """The server's offline buffer of a kernel, or None when it buffers nothing."""
    info = km._kernel_buffers.get(kernel_id)
    return None if info is None else info["buffer"]


def buffered_bytes(km: Any, kernel_id: str) -> int:
    """The sum of the frames the server keeps for a kernel without a websocket."""
    return sum(len(frame) for _channel, frames in buffered(km, kernel_id) or [] for frame in frames)


async def disconnect_frontend(jp_ws_fetch: Any, km: Any, kernel_id: str, session: str) -> None:
    """Connect a kernel websocket as a frontend does, then close it: buffering starts."""
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels", params={"session_id": session})
    ws.close()
    for _ in range(200):  # the server notices the close on its next loop turns
        if buffered(km, kernel_id) is not None:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the server did not start buffering after the websocket closed")


async def run_all(queue: Any, kernel_id: str, codes: list[str]) -> None:
    """Queue ``codes`` on the kernel and wait for the last one to end done."""
    ids = []
    for code in codes:
        status, data = await queue.post(kernel_id=kernel_id, code=code)
        assert status == 202, data
        ids.append(data["entries"][0]["id"])
    last = await queue.wait(ids[-1])
    assert last["state"] == "done", last


async def test_offline_buffer_stays_under_its_cap(
    jp_serverapp: Any, jp_ws_fetch: Any, kernel_id: str, queue: Any
) -> None:
    """Entries on a kernel whose websocket closed: the buffer is dropped past the cap."""
    km = jp_serverapp.kernel_manager
    await disconnect_frontend(jp_ws_fetch, km, kernel_id, "gone")
    assert isinstance(buffered(km, kernel_id), CappedMessageBuffer)
    # Some 40 entries x (busy, execute_input, 1 KB stream, idle): several times the cap.
    await run_all(queue, kernel_id, ["print('x' * 1000)"] * 40)
    await asyncio.sleep(0.2)  # the server's own IOPub socket may lag the queue's by a turn
    assert buffered(km, kernel_id) is None, f"{buffered_bytes(km, kernel_id)} bytes still kept"
    # More entries: nothing is buffered again until a frontend connects and leaves.
    await run_all(queue, kernel_id, ["print('y' * 1000)"] * 10)
    assert buffered(km, kernel_id) is None


async def test_offline_buffer_under_the_cap_is_replayed(
    jp_serverapp: Any, jp_ws_fetch: Any, kernel_id: str, queue: Any
) -> None:
    """Below the cap, jupyter_server's replay to the same session still works."""
    km = jp_serverapp.kernel_manager
    await disconnect_frontend(jp_ws_fetch, km, kernel_id, "back")
    await run_all(queue, kernel_id, ["print('replayed-' + 'marker')"])
    kept = buffered(km, kernel_id)
    assert kept is not None and 0 < buffered_bytes(km, kernel_id) <= MAX_BYTES

    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels", params={"session_id": "back"})
    try:
        texts: list[str] = []
        while "replayed-marker\n" not in texts:
            raw = await asyncio.wait_for(ws.read_message(), 10)
            assert raw is not None, "the websocket closed before the replay"
            msg = json.loads(raw) if isinstance(raw, str) else {}
            if msg.get("msg_type") == "stream":
                texts.append(msg["content"]["text"])
    finally:
        ws.close()


def test_capped_buffer_drops_everything_past_the_cap() -> None:
    """The list drops its messages once, at the first one past the cap, and reports it."""
    overflows: list[CappedMessageBuffer] = []

    async def fill() -> CappedMessageBuffer:
        buffer = CappedMessageBuffer(1000, overflows.append)
        for _ in range(9):
            buffer.append(("iopub", [b"a" * 100]))
        assert len(buffer) == 9 and not overflows
        buffer.append(("iopub", [b"a" * 200]))  # 1100 bytes: past the cap
        buffer.append(("iopub", [b"a" * 10]))
        await asyncio.sleep(0)
        return buffer

    buffer = asyncio.run(fill())
    assert list(buffer) == [] and buffer.overflowed and buffer.dropped == 11
    assert overflows == [buffer]


async def test_the_queue_client_remembers_a_bounded_window_of_signatures(
    jp_serverapp: Any, kernel_id: str, queue: Any
) -> None:
    from jupyter_canvas.base import SERVICES_KEY
    from jupyter_canvas.kernel_messages import REPLAY_WINDOW

    for _ in range(3):
        assert (await queue.run(kernel_id, "1"))["state"] == "done"
    session = jp_serverapp.web_app.settings[SERVICES_KEY].queue._kernels[kernel_id].client.session
    assert session.digest_history_size == REPLAY_WINDOW < 65536
    assert 0 < len(session.digest_history) <= REPLAY_WINDOW
