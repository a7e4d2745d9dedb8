"""A queue reader whose receive never wakes up is noticed and restarted: nothing hangs."""

import asyncio
from typing import Any

from jupyter_canvas.base import SERVICES_KEY
from jupyter_canvas.queue.models import EntryState


async def sleeping_cell(
    jp_serverapp: Any, kernel_id: str, queue: Any, text: str
) -> tuple[dict[str, Any], Any, Any]:
    """Send a cell that sleeps a second, then prints ``text``, to a ready kernel.

    Returns the entry as POST answered it, the queue engine and the kernel's queue.
    """
    assert (await queue.run(kernel_id, "1"))["state"] == "done"  # the client exists
    status, data = await queue.post(
        kernel_id=kernel_id, code=f"import time; time.sleep(1); print({text!r})"
    )
    assert status == 202, data
    engine = jp_serverapp.web_app.settings[SERVICES_KEY].queue
    return data["entries"][0], engine, engine._kernels[kernel_id]


async def test_stalled_readers_are_restarted_and_nothing_is_lost(
    jp_serverapp: Any, kernel_id: str, queue: Any
) -> None:
    posted, _engine, kernel_queue = await sleeping_cell(jp_serverapp, kernel_id, queue, "after")
    entry_id = posted["id"]
    # Simulate receives that missed their wake-up (pyzmq's asyncio sockets were seen to do
    # this in bursts): the IOPub and shell readers wait on something that never comes,
    # while the cell's output, reply and idle pile up on their sockets.
    for reader in kernel_queue._readers[:2]:
        assert reader.task is not None
        reader.task.cancel()
        reader.task = asyncio.ensure_future(asyncio.Event().wait())
    entry = await queue.wait(entry_id, 20)
    assert entry["state"] == "done", entry
    assert entry["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "after\n"}]
    # And the kernel's queue goes on as before.
    assert (await queue.run(kernel_id, "print(2)"))["outputs"][0]["text"] == "2\n"


async def test_an_entry_ended_by_the_server_stopping_is_not_changed_by_late_messages(
    jp_serverapp: Any, kernel_id: str, queue: Any
) -> None:
    posted, engine, kernel_queue = await sleeping_cell(jp_serverapp, kernel_id, queue, "late")
    assert posted["state"] == "running"  # sent to the ready kernel before the answer
    # What the server does when it stops: the running entry ends "server stopped", then
    # the clients close; the kernel's output and reply are already on their way.
    kernel_queue._finish(engine.get(posted["id"]), EntryState.CANCELLED, reason="server stopped")
    answered = await queue.get(posted["id"])
    await asyncio.sleep(2)  # the output and the reply arrive meanwhile
    assert await queue.get(posted["id"]) == answered
    assert answered["state"] == "cancelled" and answered["outputs"] == []
