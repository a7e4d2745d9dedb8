"""Audit events of the queue on the server's own ``event_logger`` (jupyter_events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from test_queue import NamedUsers

from jupyter_canvas.event_schemas import QUEUE_SCHEMA_ID, QUEUE_SCHEMA_PATH


@pytest.fixture
def jp_server_config(jp_server_config: Any) -> Any:
    """Requests are alice's unless they say otherwise."""
    jp_server_config.ServerApp.identity_provider_class = NamedUsers
    return jp_server_config


class Recorder:
    """Collects the queue audit events the server's event logger emits."""

    def __init__(self, app: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        app.event_logger.add_listener(schema_id=QUEUE_SCHEMA_ID, listener=self._listen)

    async def _listen(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        self.events.append(dict(data))
        self._arrived.set()

    async def until(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(wait(), timeout)

    def of(self, entry_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["entry_id"] == entry_id]


def ended(entry_id: str, action: str) -> Any:
    return lambda e: e["entry_id"] == entry_id and e["action"] == action


async def test_queued_started_finished(
    jp_serverapp: Any, api: Any, kernel_id: str, queue: Any
) -> None:
    recorder = Recorder(jp_serverapp)
    secret = "print('the code itself must never be audited')"
    done = await queue.run(kernel_id, secret)
    assert done["state"] == "done"
    finished = await recorder.until(ended(done["id"], "finished"))
    events = recorder.of(done["id"])
    assert [e["action"] for e in events] == ["queued", "started", "finished"]
    for event in events:
        assert event["kernel_id"] == kernel_id
        assert event["owner"] == "alice"
        assert "code" not in event and "outputs" not in event
        assert "audited" not in json.dumps(event)
    assert [e["state"] for e in events] == ["queued", "running", "done"]
    assert finished["duration_ms"] >= 0
    assert "duration_ms" not in events[0]


async def test_error_names_the_exception_only(
    jp_serverapp: Any, kernel_id: str, queue: Any
) -> None:
    recorder = Recorder(jp_serverapp)
    failed = await queue.run(kernel_id, "raise ValueError('private detail')")
    assert failed["state"] == "error"
    finished = await recorder.until(ended(failed["id"], "finished"))
    assert finished["state"] == "error" and finished["ename"] == "ValueError"
    assert "private detail" not in json.dumps(finished)


async def test_cancelled_queued_and_running(
    jp_serverapp: Any, api: Any, kernel_id: str, queue: Any
) -> None:
    recorder = Recorder(jp_serverapp)
    status, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(30)")
    assert status == 202
    status, waiting = await queue.post(kernel_id=kernel_id, code="1")
    assert status == 202
    running_id = running["entries"][0]["id"]
    waiting_id = waiting["entries"][0]["id"]
    await recorder.until(ended(running_id, "started"))
    # Interrupt only once the kernel runs the code (an earlier SIGINT is ignored).
    code, _ = await api(
        "GET", "api", "kernels", kernel_id, "status", params={"wait_for": "busy", "timeout": "30"}
    )
    await asyncio.sleep(0.5)
    carol = {"X-Test-User": "carol"}
    code, _ = await api("DELETE", "api", "queue", waiting_id, headers=carol)
    assert code == 200
    code, _ = await api("DELETE", "api", "queue", running_id, headers=carol)
    assert code == 200
    cancelled_waiting = await recorder.until(ended(waiting_id, "cancelled"))
    cancelled_running = await recorder.until(ended(running_id, "cancelled"))
    assert [e["action"] for e in recorder.of(waiting_id)] == ["queued", "cancelled"]
    assert cancelled_waiting["reason"] == "cancelled by carol"
    assert cancelled_waiting["owner"] == "alice"
    assert "duration_ms" not in cancelled_waiting
    assert cancelled_running["state"] == "cancelled"
    assert cancelled_running["duration_ms"] > 0


async def test_events_reach_the_servers_event_websocket(
    jp_serverapp: Any, jp_ws_fetch: Any, kernel_id: str, queue: Any
) -> None:
    ws = await jp_ws_fetch("api", "events", "subscribe")
    done = await queue.run(kernel_id, "1 + 1")
    seen: list[dict[str, Any]] = []
    while not any(e.get("action") == "finished" for e in seen):
        event = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        if event.get("schema_id") == QUEUE_SCHEMA_ID and event.get("entry_id") == done["id"]:
            seen.append(event)
    ws.close()
    assert [e["action"] for e in seen] == ["queued", "started", "finished"]


async def test_schema_is_registered_and_marks_personal_data(jp_serverapp: Any) -> None:
    assert QUEUE_SCHEMA_ID in jp_serverapp.event_logger.schemas.schema_ids
    schema = yaml.safe_load(QUEUE_SCHEMA_PATH.read_text())
    assert schema["$id"] == QUEUE_SCHEMA_ID and schema["version"] == "1"
    properties = schema["properties"]
    assert properties["owner"]["personal-data"] is True
    assert properties["path"]["personal-data"] is True
    assert "code" not in properties and "outputs" not in properties
