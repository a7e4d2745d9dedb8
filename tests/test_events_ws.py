"""The events websocket (``/api/queue/events``) with real kernels and real clients."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import sys
import time
from typing import Any

import nbformat
import psutil
import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

SERVICES_KEY = "jupyter_canvas.services"
RING = 3000
SEND_BUFFER = 5000
SEND_BUFFER_BYTES = 4 * 2**20


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    """A small replay ring (to show ``gap``) and send buffer (to drop a stuck client)."""
    return {"event_buffer_size": RING, "ws_send_buffer": SEND_BUFFER}


@pytest.fixture
def jp_server_config(jp_server_config: Any) -> Any:
    """Fast keep-alive pings, so a test can see them; a 4 MiB send buffer."""
    jp_server_config.ServerApp.tornado_settings = {"ws_ping_interval": 200}
    jp_server_config.EventStreamSettings.send_buffer_bytes = SEND_BUFFER_BYTES
    return jp_server_config


def services_of(app: Any) -> Any:
    return app.web_app.settings[SERVICES_KEY]


async def connect(jp_ws_fetch: Any, **params: Any) -> Any:
    return await jp_ws_fetch(
        "api", "queue", "events", params={k: str(v) for k, v in params.items()}
    )


async def read_until(ws: Any, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Read events until one satisfies ``predicate``; return all read, that one last."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; read {len(events)} events"
        text = await asyncio.wait_for(ws.read_message(), remaining)
        assert text is not None, "the events websocket closed"
        events.append(json.loads(text))
        if predicate(events[-1]):
            return events


def entry_done(entry_id: str) -> Any:
    def done(event: dict[str, Any]) -> bool:
        entry = event.get("entry") or {}
        return (
            event["type"] == "entry"
            and entry.get("id") == entry_id
            and entry["state"]
            in (
                "done",
                "error",
                "cancelled",
            )
        )

    return done


async def test_events_are_numbered_without_gaps(
    jp_serverapp: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    ws = await connect(jp_ws_fetch)
    await queue.run(kernel_id, "print('a')")
    status, data = await queue.post(kernel_id=kernel_id, code="print('b'); print('c')")
    assert status == 202
    events = await read_until(ws, entry_done(data["entries"][0]["id"]))
    ws.close()
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    types = {e["type"] for e in events}
    assert {"entry", "output", "kernel"} <= types
    outputs = [e for e in events if e["type"] == "output"]
    assert all(set(e) >= {"entry_id", "kernel_id", "path", "cell_id", "output"} for e in outputs)
    entries = [e["entry"] for e in events if e["type"] == "entry"]
    assert all("outputs" not in entry for entry in entries)
    # The kernel is busy before the outputs of an execution and idle after them.
    last = [
        e for e in events if e["type"] == "entry" and e["entry"]["code"].startswith("print('b')")
    ]
    running = next(i for i, e in enumerate(events) if e is last[1])
    states = [
        (i, e["status"]["execution_state"]) for i, e in enumerate(events) if e["type"] == "kernel"
    ]
    busy = next(i for i, state in states if state == "busy" and i > running)
    idle = next(i for i, state in states if state == "idle" and i > busy)
    outputs_of_b = [i for i, e in enumerate(events) if e["type"] == "output" and i > running]
    assert busy < min(outputs_of_b) and max(outputs_of_b) < idle < events.index(last[-1])


async def test_replay_equals_live_stream(
    jp_serverapp: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    live = await connect(jp_ws_fetch)
    status, data = await queue.post(
        kernel_id=kernel_id, code="for i in range(5): print(i, flush=True)"
    )
    assert status == 202
    seen = await read_until(live, entry_done(data["entries"][0]["id"]))
    live.close()
    replay = await connect(jp_ws_fetch, since=seen[0]["seq"] - 1)
    replayed = [json.loads(await replay.read_message()) for _ in seen]
    replay.close()
    assert replayed == seen
    # Reconnecting with the last seq seen misses nothing and repeats nothing.
    await queue.run(kernel_id, "print('later')")
    resumed = await connect(jp_ws_fetch, since=seen[-1]["seq"])
    first = json.loads(await resumed.read_message())
    resumed.close()
    assert first["seq"] == seen[-1]["seq"] + 1


async def test_gap_when_since_is_too_old(
    jp_serverapp: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    bus = services_of(jp_serverapp).bus
    done = await queue.run(kernel_id, f"for i in range({RING + 100}): print(i, flush=True)")
    assert done["state"] == "done"
    assert bus.oldest_seq > 1
    ws = await connect(jp_ws_fetch, since=0)
    gap = json.loads(await ws.read_message())
    assert gap == {"type": "gap", "oldest": bus.oldest_seq}
    first = json.loads(await ws.read_message())
    assert first["seq"] == gap["oldest"]
    ws.close()
    # A since from an earlier run of the server (beyond the newest seq) is a gap too.
    ws = await connect(jp_ws_fetch, since=bus.last_seq + 1000)
    gap = json.loads(await ws.read_message())
    ws.close()
    assert gap["type"] == "gap"


async def test_filter_by_kernel(
    jp_serverapp: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    km = jp_serverapp.kernel_manager
    other = await km.start_kernel(kernel_name="python3")
    try:
        ws = await connect(jp_ws_fetch, kernel_id=kernel_id, since=0)
        await queue.run(other, "print('other')")
        status, data = await queue.post(kernel_id=kernel_id, code="print('mine')")
        assert status == 202
        events = await read_until(ws, entry_done(data["entries"][0]["id"]))
        ws.close()
    finally:
        await km.shutdown_kernel(other, now=True)

    def kernel_of(event: dict[str, Any]) -> str:
        if event["type"] == "entry":
            return str(event["entry"]["kernel_id"])
        if event["type"] == "kernel":
            return str(event["status"]["kernel_id"])
        return str(event["kernel_id"])

    assert {kernel_of(e) for e in events} == {kernel_id}
    assert any(e["type"] == "kernel" for e in events)


async def test_filter_by_notebook_follows_its_kernel(
    jp_serverapp: Any, api: Any, jp_root_dir: Any, jp_ws_fetch: Any, queue: Any, kernel_id: str
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, jp_root_dir / "watched.ipynb")
    code, session = await api(
        "POST",
        "api",
        "sessions",
        body={"path": "watched.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert code == 201, session
    notebook_kernel = session["kernel"]["id"]
    ws = await connect(jp_ws_fetch, path="watched.ipynb")
    await queue.run(kernel_id, "print('elsewhere')")
    status, data = await queue.post(path="watched.ipynb", code="print('in the notebook')")
    assert status == 202, data
    events = await read_until(ws, entry_done(data["entries"][0]["id"]))
    # The notebook's kernel status events pass the filter too.
    code, _ = await api("POST", "api", "kernels", notebook_kernel, "restart")
    assert code == 200
    events += await read_until(
        ws, lambda e: e["type"] == "kernel" and e["status"]["status"] == "restarting"
    )
    ws.close()
    await api("DELETE", "api", "sessions", session["id"])
    for event in events:
        if event["type"] == "entry":
            assert event["entry"]["path"] == "watched.ipynb"
        elif event["type"] == "kernel":
            assert event["status"]["kernel_id"] == notebook_kernel
        else:
            assert event["path"] == "watched.ipynb"
    assert any(e["type"] == "output" for e in events)


async def test_outputs_arrive_as_they_are_printed(
    jp_serverapp: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    ws = await connect(jp_ws_fetch, kernel_id=kernel_id)
    status, _ = await queue.post(
        kernel_id=kernel_id,
        code="import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(1)",
    )
    assert status == 202
    arrivals: list[float] = []
    deadline = time.monotonic() + 30
    while len(arrivals) < 3:
        event = json.loads(await asyncio.wait_for(ws.read_message(), deadline - time.monotonic()))
        if event["type"] == "output":
            arrivals.append(time.monotonic())
    ws.close()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    print(f"\noutputs printed 1 s apart arrived {[round(g, 2) for g in gaps]} s apart")
    assert all(0.7 < gap < 1.5 for gap in gaps), gaps


def open_stuck_client(port: int, path: str, token: str) -> socket.socket:
    """A websocket client that completes the handshake, then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: token {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)  # byte by byte: leave every frame unread
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


READER = """
import json, sys, time
from websockets.sync.client import connect

url, token, marker = sys.argv[1:4]
lines, seqs = 0, []
with connect(url, additional_headers={"Authorization": "token " + token}, max_size=None) as ws:
    print("connected", flush=True)
    while True:
        event = json.loads(ws.recv(timeout=120))
        seqs.append(event["seq"])
        if event["type"] == "output":
            lines += event["output"].get("text", "").count("\\n")
        entry = event.get("entry") or {}
        if marker in entry.get("code", "") and entry["state"] in ("done", "error", "cancelled"):
            break
gaps = sum(1 for a, b in zip(seqs, seqs[1:]) if b != a + 1)
print(json.dumps({"lines": lines, "done_at": time.time(), "seq_gaps": gaps}), flush=True)
"""


async def test_stuck_client_is_dropped_and_others_keep_up(
    jp_serverapp: Any,
    kernel_id: str,
    queue: Any,
    jp_http_port: int,
    jp_base_url: str,
) -> None:
    services = services_of(jp_serverapp)
    process = psutil.Process()
    token = jp_serverapp.identity_provider.token
    path = f"{jp_base_url}api/queue/events"
    await queue.run(kernel_id, "print('warm up')")
    # Another client, in its own process, reading everything of this kernel.
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        READER,
        f"ws://127.0.0.1:{jp_http_port}{path}?kernel_id={kernel_id}",
        token,
        "10_000 outputs",
        stdout=asyncio.subprocess.PIPE,
    )
    assert reader.stdout is not None
    assert (await asyncio.wait_for(reader.stdout.readline(), 30)).strip() == b"connected"
    (reading,) = services.bus._subscribers
    stuck = await asyncio.get_running_loop().run_in_executor(
        None, open_stuck_client, jp_http_port, path, token
    )
    (stuck_subscription,) = set(services.bus._subscribers) - {reading}
    try:
        rss_before = process.memory_info().rss
        done_at_server: list[float] = []
        peak_backlog = peak_reading = server_lines = 0

        def watch(entry: Any, previous: Any) -> None:
            if entry.terminal and "10_000 outputs" in entry.code:
                done_at_server.append(time.time())

        def note_backlog(kernel_id: str, msg: Any) -> None:
            nonlocal peak_backlog, peak_reading, server_lines
            if msg["header"]["msg_type"] == "stream":
                server_lines += msg["content"].get("text", "").count("\n")
            peak_backlog = max(peak_backlog, stuck_subscription.backlog_bytes)
            peak_reading = max(peak_reading, reading.backlog)

        services.queue.add_transition_hook(watch)
        services.queue.add_message_hook(note_backlog)
        status, data = await queue.post(
            kernel_id=kernel_id,
            # 10,000 outputs of 1 kB: more than socket buffers can hide.
            code=(
                "# 10_000 outputs\n"
                "for i in range(10000):\n    print(f'{i:>6} ' + 'x' * 1000, flush=True)"
            ),
        )
        assert status == 202
        final = await queue.wait(data["entries"][0]["id"], 60)
        rss_after = process.memory_info().rss
        assert final["state"] == "done"
        summary = json.loads(await asyncio.wait_for(reader.stdout.readline(), 60))
        await reader.wait()
        lag = summary["done_at"] - done_at_server[0]
        growth_mb = (rss_after - rss_before) / 2**20
        print(
            f"\n10,000 outputs with a stuck client: server RSS grew {growth_mb:.1f} MiB; "
            f"the stuck client's backlog peaked at {peak_backlog / 2**20:.1f} MiB "
            f"(bound {SEND_BUFFER_BYTES / 2**20:.0f} MiB); the reading client's at {peak_reading} "
            f"events and it had everything {lag * 1000:.0f} ms after the entry ended"
        )
        # Everything the server got from the kernel reached the other client, in order.
        print(f"the server received {server_lines} of the 10,000 lines from the kernel")
        assert summary["lines"] == server_lines and summary["seq_gaps"] == 0
        assert lag < 2.0
        assert peak_backlog <= SEND_BUFFER_BYTES
        # The stuck client was dropped.
        assert stuck_subscription.overflowed
        for _ in range(150):  # tornado aborts an unanswered close after 5 s
            if stuck_subscription not in services.bus._subscribers:
                break
            await asyncio.sleep(0.1)
        assert stuck_subscription not in services.bus._subscribers
        assert growth_mb < 100
    finally:
        stuck.close()
        if reader.returncode is None:
            reader.kill()
            await reader.wait()


async def test_keepalive_pings(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    ws = await connect(jp_ws_fetch)
    pings: list[bytes] = []
    ws.on_ping = pings.append
    for _ in range(30):
        if pings:
            break
        await asyncio.sleep(0.1)
    ws.close()
    assert pings


async def test_unauthenticated_is_refused(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(
            "api", "queue", "events", headers={"Authorization": "token not-the-token"}
        )
    assert refused.value.code == 403


async def test_foreign_origin_is_refused(
    jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_http_port: int
) -> None:
    # A browser authenticates the websocket with its login cookie, and its Origin header
    # cannot be forged: that is the request an origin check protects. (A request with
    # the token in a header is not a browser's, and jupyter_server skips the check then.)
    # The login cookie's name carries the host: log in as the websocket will connect.
    response = await jp_fetch("api", "status", headers={"Host": f"localhost:{jp_http_port}"})
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    assert cookies, "the server set no login cookie"
    browser = {"Authorization": "", "Cookie": "; ".join(cookies)}
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(
            "api", "queue", "events", headers={**browser, "Origin": "http://evil.example"}
        )
    assert refused.value.code == 403
    same = await jp_ws_fetch(
        "api", "queue", "events", headers={**browser, "Origin": f"http://localhost:{jp_http_port}"}
    )
    same.close()


class _NoKernelReading(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "kernels"


async def test_unauthorized_is_refused(jp_serverapp: Any, jp_ws_fetch: Any) -> None:
    settings = jp_serverapp.web_app.settings
    original = settings["authorizer"]
    settings["authorizer"] = _NoKernelReading(parent=jp_serverapp)
    try:
        with pytest.raises(HTTPClientError) as refused:
            await jp_ws_fetch("api", "queue", "events")
        assert refused.value.code == 403
    finally:
        settings["authorizer"] = original


@pytest.mark.parametrize("since", ["soon", "-1"])
async def test_bad_since_is_400(jp_serverapp: Any, jp_ws_fetch: Any, since: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch("api", "queue", "events", params={"since": since})
    assert refused.value.code == 400
