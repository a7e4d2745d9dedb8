"""Limits: oversized bodies and code, long waits, full queues each get their 4xx; the server
stays up.

- ``CanvasApp.max_body_bytes``: every route that reads a body (found by walking the server's
  routes, as in test_security) answers 413 beyond it.
- ``CanvasApp.max_code_bytes``: ``POST /api/queue`` answers 413 for longer code (in bytes).
- ``wait`` (``GET /api/queue/<id>``) and ``timeout`` (``GET /api/kernels/<id>/status``) above
  60 s, negative or not a number: 400.
- ``CanvasApp.max_queued_per_kernel``: 429 for every way of queueing, all or nothing.
- Websocket frames above tornado's ``websocket_max_message_size`` close that connection only.
"""

# Fixtures are imported from test_canvas_support, so their names are "redefined" here.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from test_canvas_support import (  # noqa: F401  (fixtures)
    canvas_manager,
    code,
    jp_server_config,
    md,
    room_peer,
    wait_until,
    write_notebook,
)
from test_queue import wait_state
from test_security import (  # noqa: F401  (the client fixture)
    CASES,
    Client,
    Context,
    canvas_routes,
    client,
    route_methods,
)
from tornado.websocket import WebSocketClosedError

from jupyter_canvas.app import CanvasApp

SERVICES_KEY = "jupyter_canvas.services"
BODY_LIMIT = 4096
CODE_LIMIT = 1024
QUEUE_LIMIT = 3
BODY_METHODS = ("POST", "PUT", "PATCH")


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    return {
        "max_body_bytes": BODY_LIMIT,
        "max_code_bytes": CODE_LIMIT,
        "max_queued_per_kernel": QUEUE_LIMIT,
    }


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    write_notebook(
        jp_root_dir,
        "limits.ipynb",
        [md("A", "# A"), code("c1", "1"), code("c2", "2"), code("c3", "3"), code("c4", "4")],
    )
    return "limits.ipynb"


@pytest.fixture
def context(kernel_id: str, notebook: str, canvas_manager: Any) -> Context:
    return Context(
        kernel_id, "no-such-entry", notebook, str(canvas_manager.shared.file_id(notebook))
    )


def entries_of(serverapp: Any) -> list[Any]:
    return [entry for entry, _ in serverapp.web_app.settings[SERVICES_KEY].queue.list_entries()]


async def assert_server_up(client: Client, kernel_id: str) -> None:
    """The server answers and the kernel still runs code."""
    assert (await client.send("GET", "api/status")).code == 200
    posted = await client.send("POST", "api/queue", {"kernel_id": kernel_id, "code": "6*7"})
    assert posted.code == 202, posted
    entry_id = posted.body["entries"][0]["id"]
    done = await client.send("GET", f"api/queue/{entry_id}?wait=60")
    assert done.body["state"] == "done", done
    assert done.body["outputs"][0]["data"]["text/plain"] == "42"


def padded(body: dict[str, Any], size: int) -> str:
    """``body`` as JSON padded with trailing whitespace (still valid JSON) to ``size`` bytes."""
    text = json.dumps(body)
    assert len(text) <= size
    return text + " " * (size - len(text))


# -- body size ----------------------------------------------------------------------------------
async def test_body_over_the_limit_on_every_route_that_reads_one(
    jp_serverapp: Any, client: Client, context: Context
) -> None:
    body_routes = [
        (handler.__name__, method)
        for _, handler in canvas_routes(jp_serverapp)
        for method in route_methods(handler)
        if method in BODY_METHODS
    ]
    assert len(body_routes) >= 3
    for name, method in body_routes:
        case = CASES[name, method]
        url = case.url(context)
        body = case.body(context) if case.body is not None else {}
        answer = await client.send_text(method, url, padded(body, BODY_LIMIT + 1))
        assert answer.code == 413, (name, method, answer)
        message = answer.body["message"]
        assert f"{BODY_LIMIT + 1} bytes" in message and "CanvasApp.max_body_bytes" in message
        # At the limit the body is read (whatever the route then answers, it is not 413).
        answer = await client.send_text(method, url, padded(body, BODY_LIMIT))
        assert answer.code != 413, (name, method, answer)
    await assert_server_up(client, context.kernel_id)


# -- code size ----------------------------------------------------------------------------------
async def test_code_over_the_limit(jp_serverapp: Any, client: Client, context: Context) -> None:
    kernel_id = context.kernel_id
    too_long = [
        "#" * (CODE_LIMIT + 1),
        "é" * (CODE_LIMIT // 2 + 1),  # fewer characters than the limit, more bytes
    ]
    for source in too_long:
        for request in (
            {"kernel_id": kernel_id, "code": source},
            {"kernel_id": kernel_id, "path": context.notebook, "cell_id": "c1", "code": source},
        ):
            answer = await client.send("POST", "api/queue", request)
            assert answer.code == 413, answer
            message = answer.body["message"]
            assert "CanvasApp.max_code_bytes" in message and str(CODE_LIMIT) in message
    assert entries_of(jp_serverapp) == []
    at_limit = await client.send(
        "POST", "api/queue", {"kernel_id": kernel_id, "code": "#" * CODE_LIMIT}
    )
    assert at_limit.code == 202
    await assert_server_up(client, kernel_id)


# -- wait and timeout ---------------------------------------------------------------------------
BAD_SECONDS = ["60.001", "61", "3600", "1e9", "-1", "nan", "inf", "soon"]


async def test_wait_and_timeout_over_60_seconds(client: Client, context: Context) -> None:
    kernel_id = context.kernel_id
    posted = await client.send("POST", "api/queue", {"kernel_id": kernel_id, "code": "1"})
    entry_id = posted.body["entries"][0]["id"]
    for value in BAD_SECONDS:
        answer = await client.send("GET", f"api/queue/{entry_id}?wait={value}")
        assert answer.code == 400, (value, answer)
        assert "wait must be" in answer.body["message"], answer
        for query in (f"timeout={value}", f"wait_for=idle&timeout={value}"):
            answer = await client.send("GET", f"api/kernels/{kernel_id}/status?{query}")
            assert answer.code == 400, (query, answer)
            assert "timeout must be" in answer.body["message"], answer
    # 60 itself is allowed; answers come as soon as there is something to say.
    answer = await client.send("GET", f"api/queue/{entry_id}?wait=60")
    assert answer.code == 200 and answer.body["state"] == "done"
    answer = await client.send("GET", f"api/kernels/{kernel_id}/status?wait_for=idle&timeout=60")
    assert answer.code == 200 and answer.body["execution_state"] == "idle"
    await assert_server_up(client, kernel_id)


# -- queue length -------------------------------------------------------------------------------
async def test_queue_over_its_limit(
    jp_serverapp: Any, client: Client, context: Context, queue: Any
) -> None:
    kernel_id, path = context.kernel_id, context.notebook
    # More cells at once than the queue holds: refused whole, nothing queued.
    for request in (
        {"kernel_id": kernel_id, "path": path, "select": "all"},
        {"kernel_id": kernel_id, "path": path, "cell_ids": ["c1", "c2", "c3", "c4"]},
    ):
        answer = await client.send("POST", "api/queue", request)
        assert answer.code == 429, answer
        assert f"limit of {QUEUE_LIMIT}" in answer.body["message"]
        assert "CanvasApp.max_queued_per_kernel" in answer.body["message"]
    assert entries_of(jp_serverapp) == []

    running = await client.send(
        "POST", "api/queue", {"kernel_id": kernel_id, "code": "import time; time.sleep(30)"}
    )
    await wait_state(queue, running.body["entries"][0]["id"], {"running"})
    accepted = await client.send(
        "POST", "api/queue", {"kernel_id": kernel_id, "path": path, "cell_ids": ["c1", "c2"]}
    )
    assert accepted.code == 202
    accepted = await client.send("POST", "api/queue", {"kernel_id": kernel_id, "code": "'third'"})
    assert accepted.code == 202
    for fourth in (
        {"kernel_id": kernel_id, "code": "'fourth'"},
        {"kernel_id": kernel_id, "path": path, "code": "'fourth'", "cell_id": "c3"},
        {"kernel_id": kernel_id, "path": path, "cell_ids": ["c3"]},
        {"kernel_id": kernel_id, "path": path, "select": {"from": "c4"}},
    ):
        answer = await client.send("POST", "api/queue", fourth)
        assert answer.code == 429, (fourth, answer)
    status = await client.send("GET", f"api/kernels/{kernel_id}/status")
    assert status.body["queue"]["queued"] == QUEUE_LIMIT
    # Clearing makes room again; the server and the kernel carry on.
    cleared = await client.send("DELETE", f"api/queue?kernel_id={kernel_id}")
    assert cleared.code == 200 and len(cleared.body["cancelled"]) == QUEUE_LIMIT + 1
    await assert_server_up(client, kernel_id)


# -- websocket frames ---------------------------------------------------------------------------
async def test_oversized_websocket_frames_close_only_that_connection(
    jp_serverapp: Any, client: Client, context: Context, jp_ws_fetch: Any
) -> None:
    limit = jp_serverapp.web_app.settings.get("websocket_max_message_size", 10 * 1024 * 1024)
    bus = jp_serverapp.web_app.settings[SERVICES_KEY].bus
    async with room_peer(jp_ws_fetch, context.file_id) as bystander:
        for parts in (("api", "queue", "events"), ("api", "canvas", "room", context.file_id)):
            connection = await jp_ws_fetch(*parts)
            with contextlib.suppress(WebSocketClosedError):
                await connection.write_message(b"\0" * (limit + 1), binary=True)
            while await asyncio.wait_for(connection.read_message(), 30) is not None:
                pass  # what was sent before the close
            # The server closes with 1009 and drops the connection; the close frame may be
            # lost with it.
            assert connection.close_code in (1009, None), (parts, connection.close_code)
        await wait_until(lambda: bus.subscriber_count == 0, what="the events socket to go")
        # The other peer of the room was not affected.
        bystander.move("c1", x=12)
        for _ in range(100):
            layout = await client.send("GET", f"api/canvas/layout/{context.notebook}")
            if layout.body["cells"]["c1"]["x"] == 12:
                break
            await asyncio.sleep(0.05)
        assert layout.body["cells"]["c1"]["x"] == 12, layout
    await assert_server_up(client, context.kernel_id)


# -- the defaults -------------------------------------------------------------------------------
class TestDefaults:
    @pytest.fixture
    def canvas_app_config(self) -> dict[str, Any]:
        return {}

    def test_documented_defaults(self) -> None:
        assert CanvasApp.max_body_bytes.default_value == 10 * 1024 * 1024
        assert CanvasApp.max_code_bytes.default_value == 1024 * 1024
        assert CanvasApp.max_queued_per_kernel.default_value == 1000

    async def test_default_limits_hold(self, client: Client, context: Context) -> None:
        kernel_id = context.kernel_id
        big_code = {"kernel_id": kernel_id, "code": "#" * (1024 * 1024 + 1)}
        answer = await client.send("POST", "api/queue", big_code)
        assert answer.code == 413 and "max_code_bytes" in answer.body["message"]
        answer = await client.send_text(
            "POST", "api/queue", padded({"kernel_id": kernel_id, "code": "1"}, 10 * 1024 * 1024 + 1)
        )
        assert answer.code == 413 and "max_body_bytes" in answer.body["message"]
        await assert_server_up(client, kernel_id)
