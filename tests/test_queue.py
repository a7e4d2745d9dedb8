"""The execution queue's REST contract, against a real server and real ipykernel kernels."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.utils import ensure_async
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

TERMINAL = {"done", "error", "cancelled"}


async def wait_state(queue: Any, entry_id: str, states: set[str], seconds: float = 30) -> dict:
    """Wait (test-side) until an entry reaches one of ``states``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        entry = await queue.get(entry_id)
        if entry["state"] in states:
            return entry
        assert asyncio.get_running_loop().time() < deadline, entry
        await asyncio.sleep(0.05)


async def test_snippet_runs_to_done_with_outputs(kernel_id: str, queue: Any, api: Any) -> None:
    status, data = await queue.post(kernel_id=kernel_id, code="print('hello')\n6*7")
    assert status == 202
    (entry,) = data["entries"]
    assert entry["state"] in ("queued", "running")
    assert entry["kernel_id"] == kernel_id and entry["path"] is None and entry["cell_id"] is None
    assert entry["queued_at"].endswith("Z")
    done = await queue.wait(entry["id"])
    assert done["state"] == "done"
    assert done["execution_count"] == 1
    assert done["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "42"},
            "metadata": {},
            "execution_count": 1,
        },
    ]
    assert done["started_at"] and done["finished_at"] and done["duration_ms"] >= 0
    assert done["position"] is None and done["error"] is None and done["reason"] is None
    assert isinstance(done["owner"], str) and done["owner"]


class NamedUsers(IdentityProvider):
    """Token-authenticated requests act as the user named in ``X-Test-User``."""

    async def get_user(self, handler: Any) -> User | None:
        user = await ensure_async(super().get_user(handler))
        if user is None:
            return None
        name = handler.request.headers.get("X-Test-User", "alice")
        return User(username=name, name=name)


class DisplayNamedUsers(IdentityProvider):
    """Users whose unique name is an id and whose display name is a person's name."""

    async def get_user(self, handler: Any) -> User | None:
        user = await ensure_async(super().get_user(handler))
        if user is None:
            return None
        name = handler.request.headers.get("X-Test-User", "alice")
        return User(username=f"id-{name}-7f3a9c", name=name, display_name=f"{name.title()} Jones")


class TestDisplayNames:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Any) -> Any:
        jp_server_config["ServerApp"]["identity_provider_class"] = DisplayNamedUsers
        return jp_server_config

    async def test_reasons_name_people_by_display_name(
        self, kernel_id: str, api: Any, queue: Any
    ) -> None:
        _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(30)")
        status, queued = await api(
            "POST", "api", "queue", body={"kernel_id": kernel_id, "code": "1"}
        )
        assert status == 202
        entry = queued["entries"][0]
        assert entry["owner"] == "id-alice-7f3a9c" and entry["owner_name"] == "Alice Jones"
        status, cancelled = await api(
            "DELETE", "api", "queue", entry["id"], headers={"X-Test-User": "carol"}
        )
        assert status == 200 and cancelled["reason"] == "cancelled by Carol Jones"
        bob = {"X-Test-User": "bob"}
        status, _ = await api(
            "DELETE", "api", "queue", params={"kernel_id": kernel_id}, headers=bob
        )
        assert status == 200
        stopped = await queue.wait(running["entries"][0]["id"])
        assert stopped["reason"] == "queue cleared by Bob Jones"


class TestOwner:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Any) -> Any:
        jp_server_config["ServerApp"]["identity_provider_class"] = NamedUsers
        return jp_server_config

    async def test_owner_and_cancel_reason_name_the_user(
        self, kernel_id: str, api: Any, queue: Any
    ) -> None:
        status, data = await api(
            "POST",
            "api",
            "queue",
            body={"kernel_id": kernel_id, "code": "import time; time.sleep(1)"},
            headers={"X-Test-User": "alice"},
        )
        assert status == 202 and data["entries"][0]["owner"] == "alice"
        _, queued = await api(
            "POST",
            "api",
            "queue",
            body={"kernel_id": kernel_id, "code": "1"},
            headers={"X-Test-User": "bob"},
        )
        assert queued["entries"][0]["owner"] == "bob"
        status, cancelled = await api(
            "DELETE", "api", "queue", queued["entries"][0]["id"], headers={"X-Test-User": "carol"}
        )
        assert status == 200 and cancelled["reason"] == "cancelled by carol"
        assert cancelled["owner"] == "bob"


async def test_location_header_names_first_entry(kernel_id: str, jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api", "queue", method="POST", body=json.dumps({"kernel_id": kernel_id, "code": "1"})
    )
    assert response.code == 202
    entry_id = json.loads(response.body)["entries"][0]["id"]
    assert response.headers["Location"].endswith(f"api/queue/{entry_id}")


async def test_states_queued_running_done(kernel_id: str, queue: Any) -> None:
    _, first = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(1)")
    _, second = await queue.post(kernel_id=kernel_id, code="'second'")
    first_id, second_id = first["entries"][0]["id"], second["entries"][0]["id"]
    running = await wait_state(queue, first_id, {"running"})
    assert running["started_at"] is not None
    queued = await queue.get(second_id)
    assert queued["state"] == "queued" and queued["position"] == 0
    assert (await queue.wait(second_id))["state"] == "done"
    assert (await queue.get(first_id))["state"] == "done"


async def test_error_entry_records_error(kernel_id: str, queue: Any) -> None:
    entry = await queue.run(kernel_id, "1/0")
    assert entry["state"] == "error"
    assert entry["error"]["ename"] == "ZeroDivisionError"
    assert entry["error"]["evalue"] and entry["error"]["traceback"]
    assert entry["outputs"][-1]["output_type"] == "error"


async def test_fifo_under_concurrent_posts(kernel_id: str, queue: Any, api: Any) -> None:
    await queue.run(kernel_id, "order = []")
    # Several clients POST at once; entries run in the order the server accepted them.
    results = await asyncio.gather(
        *(queue.post(kernel_id=kernel_id, code=f"order.append({i})") for i in range(40))
    )
    accepted = sorted(
        (entry for status, data in results for entry in data["entries"]),
        key=lambda e: e["queued_at"],
    )
    assert all(status == 202 for status, _ in results)
    for entry in accepted:
        assert (await queue.wait(entry["id"]))["state"] == "done"
    result = await queue.run(kernel_id, "order")
    ran = json.loads(result["outputs"][0]["data"]["text/plain"].replace("'", '"'))
    expected = [int(e["code"].split("(")[1].rstrip(")")) for e in accepted]
    assert ran == expected
    # started_at order equals queued order
    started = [(await queue.get(e["id"]))["started_at"] for e in accepted]
    assert started == sorted(started)


async def test_list_order_and_filters(kernel_id: str, queue: Any, api: Any) -> None:
    done = await queue.run(kernel_id, "'early'")
    _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(1.5)")
    _, q1 = await queue.post(kernel_id=kernel_id, code="'q1'")
    _, q2 = await queue.post(kernel_id=kernel_id, code="'q2'")
    await wait_state(queue, running["entries"][0]["id"], {"running"})
    status, listing = await api("GET", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200
    ids = [e["id"] for e in listing["entries"]]
    assert ids[:3] == [running["entries"][0]["id"], q1["entries"][0]["id"], q2["entries"][0]["id"]]
    assert done["id"] in ids[3:]
    assert all("outputs" not in e for e in listing["entries"])
    assert [e["position"] for e in listing["entries"][:3]] == [None, 0, 1]
    _, only_queued = await api("GET", "api", "queue", params={"state": "queued"})
    assert {e["state"] for e in only_queued["entries"]} == {"queued"}
    _, several = await api("GET", "api", "queue", params={"state": "queued,running"})
    assert len(several["entries"]) == 3
    _, none = await api("GET", "api", "queue", params={"kernel_id": "nope"})
    assert none["entries"] == []
    status, bad = await api("GET", "api", "queue", params={"state": "sleeping"})
    assert status == 400 and "sleeping" in bad["message"]
    await queue.wait(q2["entries"][0]["id"])


async def test_finished_entries_listed_newest_first(kernel_id: str, queue: Any, api: Any) -> None:
    first = await queue.run(kernel_id, "1")
    second = await queue.run(kernel_id, "2")
    _, listing = await api("GET", "api", "queue", params={"kernel_id": kernel_id})
    ids = [e["id"] for e in listing["entries"]]
    assert ids.index(second["id"]) < ids.index(first["id"])


@pytest.mark.parametrize("stop_on_error", [True, False])
async def test_stop_on_error(kernel_id: str, queue: Any, stop_on_error: bool) -> None:
    _, failing = await queue.post(
        kernel_id=kernel_id, code="import time; time.sleep(0.5); 1/0", stop_on_error=stop_on_error
    )
    _, after1 = await queue.post(kernel_id=kernel_id, code="'a'")
    _, after2 = await queue.post(kernel_id=kernel_id, code="'b'")
    failed = await queue.wait(failing["entries"][0]["id"])
    assert failed["state"] == "error"
    a = await queue.wait(after1["entries"][0]["id"])
    b = await queue.wait(after2["entries"][0]["id"])
    if stop_on_error:
        for entry in (a, b):
            assert entry["state"] == "cancelled"
            assert entry["reason"].startswith("an earlier cell failed: ZeroDivisionError")
            # In words, without ids: the snippet by who queued it; the id is in caused_by.
            assert failed["id"] not in entry["reason"]
            assert entry["reason"].endswith(f"in code queued by {failed['owner_name']}")
            assert entry["caused_by"] == failed["id"]
            assert entry["started_at"] is None
        # The queue keeps working for entries queued after the failure.
        assert (await queue.run(kernel_id, "'later'"))["state"] == "done"
    else:
        assert a["state"] == "done" and b["state"] == "done"


async def test_stop_on_error_default_is_true(kernel_id: str, queue: Any) -> None:
    _, failing = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(0.3); 1/0")
    assert failing["entries"][0]["stop_on_error"] is True
    _, after = await queue.post(kernel_id=kernel_id, code="1")
    assert (await queue.wait(after["entries"][0]["id"]))["state"] == "cancelled"


async def test_cancel_queued_entry(kernel_id: str, queue: Any, api: Any) -> None:
    _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(1)")
    _, victim = await queue.post(kernel_id=kernel_id, code="'victim'")
    _, survivor = await queue.post(kernel_id=kernel_id, code="'survivor'")
    victim_id = victim["entries"][0]["id"]
    status, cancelled = await api("DELETE", "api", "queue", victim_id)
    assert status == 200
    assert cancelled["state"] == "cancelled" and cancelled["reason"].startswith("cancelled by ")
    assert cancelled["started_at"] is None
    assert (await queue.get(survivor["entries"][0]["id"]))["position"] == 0
    status, again = await api("DELETE", "api", "queue", victim_id)
    assert status == 409 and "already cancelled" in again["message"]
    assert (await queue.wait(survivor["entries"][0]["id"]))["state"] == "done"
    assert (await queue.wait(running["entries"][0]["id"]))["state"] == "done"


async def test_cancel_running_entry_interrupts_and_keeps_others(
    kernel_id: str, queue: Any, api: Any
) -> None:
    _, running = await queue.post(
        kernel_id=kernel_id,
        code="import time\nprint('started', flush=True)\nfor i in range(300): time.sleep(0.1)",
    )
    _, other = await queue.post(kernel_id=kernel_id, code="'other'")
    running_id = running["entries"][0]["id"]
    entry = await wait_state(queue, running_id, {"running"})
    for _ in range(100):
        entry = await queue.get(running_id)
        if entry["outputs"]:
            break
        await asyncio.sleep(0.05)
    status, cancelled = await api("DELETE", "api", "queue", running_id)
    assert status == 200
    assert cancelled["state"] == "cancelled"
    assert cancelled["reason"].startswith("cancelled by ")
    assert cancelled["outputs"][0]["text"] == "started\n"
    done = await queue.wait(other["entries"][0]["id"])
    assert done["state"] == "done"
    assert done["outputs"][0]["data"]["text/plain"] == "'other'"


async def test_cancel_unknown_entry_is_404(jp_serverapp: Any, api: Any) -> None:
    status, body = await api("DELETE", "api", "queue", "no-such-entry")
    assert status == 404 and "no-such-entry" in body["message"]
    status, body = await api("GET", "api", "queue", "no-such-entry")
    assert status == 404


async def test_clear_kernel_queue(kernel_id: str, queue: Any, api: Any) -> None:
    _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(30)")
    _, q1 = await queue.post(kernel_id=kernel_id, code="1")
    _, q2 = await queue.post(kernel_id=kernel_id, code="2")
    await wait_state(queue, running["entries"][0]["id"], {"running"})
    status, body = await api("DELETE", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200
    ids = {running["entries"][0]["id"], q1["entries"][0]["id"], q2["entries"][0]["id"]}
    assert set(body["cancelled"]) == ids
    for entry_id in ids:
        entry = await queue.get(entry_id)
        assert entry["state"] == "cancelled" and "cleared by" in entry["reason"]
    # The kernel is usable again right away.
    assert (await queue.run(kernel_id, "'after clear'"))["state"] == "done"


async def test_clear_needs_a_filter(jp_serverapp: Any, api: Any) -> None:
    status, body = await api("DELETE", "api", "queue")
    assert status == 400 and "kernel_id" in body["message"]
    status, body = await api("DELETE", "api", "queue", params={"kernel_id": "nope"})
    assert status == 404


async def test_input(kernel_id: str, queue: Any, api: Any) -> None:
    code = "name = input('Your name? ')\nname.upper()"
    _, posted = await queue.post(kernel_id=kernel_id, code=code)
    entry_id = posted["entries"][0]["id"]
    waiting = await wait_state(queue, entry_id, {"awaiting_input"})
    assert waiting["input_request"] == {"prompt": "Your name? ", "password": False}
    status, answered = await api("POST", "api", "queue", entry_id, "input", body={"value": "ada"})
    assert status == 200 and answered["state"] == "running"
    done = await queue.wait(entry_id)
    assert done["state"] == "done"
    assert done["outputs"][-1]["data"]["text/plain"] == "'ADA'"
    status, body = await api("POST", "api", "queue", entry_id, "input", body={"value": "x"})
    assert status == 409 and "not awaiting_input" in body["message"]
    status, body = await api("POST", "api", "queue", entry_id, "input", body={"value": 3})
    assert status == 400


async def test_cancel_while_awaiting_input(kernel_id: str, queue: Any, api: Any) -> None:
    _, posted = await queue.post(kernel_id=kernel_id, code="input('?')")
    entry_id = posted["entries"][0]["id"]
    await wait_state(queue, entry_id, {"awaiting_input"})
    status, body = await api("DELETE", "api", "queue", entry_id)
    assert status == 200 and body["state"] == "cancelled"
    assert (await queue.run(kernel_id, "'next'"))["state"] == "done"


async def test_long_poll(kernel_id: str, queue: Any, api: Any) -> None:
    _, posted = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(2)")
    entry_id = posted["entries"][0]["id"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    status, body = await api("GET", "api", "queue", entry_id, params={"wait": "0.3"})
    elapsed = loop.time() - start
    assert status == 200 and body["state"] in ("queued", "running")
    assert elapsed >= 0.25
    status, body = await api("GET", "api", "queue", entry_id, params={"wait": "30"})
    assert status == 200 and body["state"] == "done"
    status, body = await api("GET", "api", "queue", entry_id, params={"wait": "61"})
    assert status == 400 and "60" in body["message"]
    status, body = await api("GET", "api", "queue", entry_id, params={"wait": "soon"})
    assert status == 400


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ({"kernel_id": "K", "code": 5}, 400, "code must be a string"),
        ({"kernel_id": "K"}, 400, "exactly one of code, cell_ids or select"),
        ({"kernel_id": "K", "code": "1", "select": "all", "path": "a.ipynb"}, 400, "exactly one"),
        ({"path": "a.ipynb", "cell_ids": []}, 400, "non-empty list"),
        ({"path": "a.ipynb", "cell_ids": [1]}, 400, "only non-empty strings"),
        ({"kernel_id": "K", "cell_ids": ["a"]}, 400, "needs path"),
        ({"kernel_id": "K", "select": "all"}, 400, "needs path"),
        ({"path": "a.ipynb", "select": "some"}, 400, "select must be"),
        ({"kernel_id": "K", "code": "1", "cell_id": "c"}, 400, "cell_id goes with code and path"),
        ({"path": "a.ipynb", "cell_id": "c", "cell_ids": ["c"]}, 400, "cell_id goes with"),
        ({"kernel_id": "K", "code": "1", "stop_on_error": "yes"}, 400, "stop_on_error"),
        ({"kernel_id": "K", "code": "1", "colour": "red"}, 400, "unknown field"),
        ({"kernel_id": 7, "code": "1"}, 400, "kernel_id must be"),
        ({"code": "1"}, 400, "kernel_id is required"),
        ({"kernel_id": "no-such-kernel", "code": "1"}, 404, "no kernel"),
    ],
)
async def test_post_4xx(jp_serverapp: Any, api: Any, body: Any, status: int, words: str) -> None:
    code, answer = await api("POST", "api", "queue", body=body)
    assert code == status, answer
    assert words in answer["message"]
    _, listing = await api("GET", "api", "queue")
    assert listing["entries"] == []  # all or nothing: nothing was queued


async def test_unauthenticated_requests_refused(
    jp_serverapp: Any, jp_fetch: Any, jp_base_url: str, jp_http_port: int, kernel_id: str
) -> None:
    # jp_fetch is requested for its side effect: it starts the HTTP server on jp_http_port.
    client = AsyncHTTPClient()
    base = f"http://localhost:{jp_http_port}{jp_base_url}"
    for method, path, body in [
        ("GET", "api/queue", None),
        ("POST", "api/queue", json.dumps({"kernel_id": kernel_id, "code": "1"})),
        ("DELETE", f"api/queue?kernel_id={kernel_id}", None),
        ("GET", "api/queue/x", None),
        ("DELETE", "api/queue/x", None),
        ("POST", "api/queue/x/input", json.dumps({"value": "v"})),
    ]:
        request = HTTPRequest(base + path, method=method, body=body)
        response = await client.fetch(request, raise_error=False)
        assert response.code == 403, (method, path, response.code)
    assert jp_serverapp.web_app.settings["jupyter_canvas.services"].queue.list_entries() == []


class RefuseExecute(Authorizer):
    """Allows reading kernels, refuses running code on them."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "kernels" and action == "execute")


class TestUnauthorized:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Any) -> Any:
        jp_server_config["ServerApp"]["authorizer_class"] = RefuseExecute
        return jp_server_config

    async def test_execute_refused_read_allowed(self, jp_serverapp: Any, api: Any) -> None:
        km = jp_serverapp.kernel_manager
        kernel_id = await km.start_kernel(kernel_name="python3")
        try:
            status, body = await api(
                "POST", "api", "queue", body={"kernel_id": kernel_id, "code": "1"}
            )
            assert status == 403 and "execute" in body["message"]
            assert (await api("DELETE", "api", "queue", params={"kernel_id": kernel_id}))[0] == 403
            assert (await api("DELETE", "api", "queue", "x"))[0] == 403
            assert (await api("POST", "api", "queue", "x", "input", body={"value": "v"}))[0] == 403
            status, body = await api("GET", "api", "queue")
            assert status == 200 and body["entries"] == []
            assert (await api("GET", "api", "queue", "x"))[0] == 404
        finally:
            await km.shutdown_kernel(kernel_id, now=True)


class TestQueueLimit:
    @pytest.fixture
    def canvas_app_config(self) -> dict[str, Any]:
        return {"max_queued_per_kernel": 2}

    async def test_429_at_limit(self, kernel_id: str, queue: Any, api: Any) -> None:
        _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(1)")
        await wait_state(queue, running["entries"][0]["id"], {"running"})
        assert (await queue.post(kernel_id=kernel_id, code="1"))[0] == 202
        assert (await queue.post(kernel_id=kernel_id, code="2"))[0] == 202
        status, body = await queue.post(kernel_id=kernel_id, code="3")
        assert status == 429 and "limit of 2" in body["message"]
        status, _ = await api("DELETE", "api", "queue", params={"kernel_id": kernel_id})
        assert status == 200


class TestRetention:
    @pytest.fixture
    def canvas_app_config(self) -> dict[str, Any]:
        return {"retain_finished": 3, "retain_seconds": 2.0}

    async def test_count_and_age_bounds(self, kernel_id: str, queue: Any, api: Any) -> None:
        entries = [await queue.run(kernel_id, str(i)) for i in range(5)]
        assert (await api("GET", "api", "queue", entries[0]["id"]))[0] == 404
        assert (await api("GET", "api", "queue", entries[1]["id"]))[0] == 404
        for entry in entries[2:]:
            assert (await api("GET", "api", "queue", entry["id"]))[0] == 200
        _, listing = await api("GET", "api", "queue")
        assert len(listing["entries"]) == 3
        await asyncio.sleep(2.2)
        assert (await api("GET", "api", "queue", entries[4]["id"]))[0] == 404
        _, listing = await api("GET", "api", "queue")
        assert listing["entries"] == []


async def test_kernel_killed_mid_cell(
    jp_serverapp: Any, kernel_id: str, queue: Any, api: Any
) -> None:
    _, running = await queue.post(
        kernel_id=kernel_id, code="import time\nprint('alive', flush=True)\ntime.sleep(60)"
    )
    _, queued = await queue.post(kernel_id=kernel_id, code="'never'")
    running_id = running["entries"][0]["id"]
    await wait_state(queue, running_id, {"running"})
    for _ in range(200):  # mid-cell: it has printed
        if (await queue.get(running_id))["outputs"]:
            break
        await asyncio.sleep(0.05)
    kernel = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    pid = kernel.provisioner.process.pid
    os.kill(pid, signal.SIGKILL)
    died = await queue.wait(running_id, 30)
    assert died["state"] == "error"
    assert "died" in died["reason"]
    assert died["error"]["ename"] == "KernelDied"
    cancelled = await queue.wait(queued["entries"][0]["id"], 30)
    assert cancelled["state"] == "cancelled" and "died" in cancelled["reason"]
    # The restarter brings the kernel back; the next entry runs on it.
    after = await queue.run(kernel_id, "'back'")
    assert after["state"] == "done", after
    assert after["outputs"][0]["data"]["text/plain"] == "'back'"


async def test_kernel_shutdown_ends_entries(
    jp_serverapp: Any, kernel_id: str, queue: Any, api: Any
) -> None:
    _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(60)")
    _, queued = await queue.post(kernel_id=kernel_id, code="'never'")
    await wait_state(queue, running["entries"][0]["id"], {"running"})
    status, _ = await api("DELETE", "api", "kernels", kernel_id)
    assert status == 204
    died = await queue.wait(running["entries"][0]["id"], 30)
    assert died["state"] == "error" and "shut down" in died["reason"]
    cancelled = await queue.wait(queued["entries"][0]["id"], 30)
    assert cancelled["state"] == "cancelled" and "shut down" in cancelled["reason"]
    status, _ = await queue.post(kernel_id=kernel_id, code="1")
    assert status == 404


async def test_kernel_restart_ends_entries(kernel_id: str, queue: Any, api: Any) -> None:
    await queue.run(kernel_id, "x = 1")
    _, running = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(60)")
    _, queued = await queue.post(kernel_id=kernel_id, code="'never'")
    await wait_state(queue, running["entries"][0]["id"], {"running"})
    status, _ = await api("POST", "api", "kernels", kernel_id, "restart")
    assert status == 200
    died = await queue.wait(running["entries"][0]["id"], 30)
    assert died["state"] == "error" and "restart" in died["reason"]
    cancelled = await queue.wait(queued["entries"][0]["id"], 30)
    assert cancelled["state"] == "cancelled" and "restart" in cancelled["reason"]
    after = await queue.run(kernel_id, "'x' in dir()")
    assert after["state"] == "done"
    assert after["outputs"][0]["data"]["text/plain"] == "False"  # a fresh process


async def test_cancel_right_after_start_stops_the_code(
    kernel_id: str, queue: Any, api: Any
) -> None:
    # An interrupt that lands before the code really starts is ignored by ipykernel: the
    # queue repeats it until the kernel answers, so the code never runs to its end.
    for _ in range(5):
        code = "import time\nfor i in range(50):\n    time.sleep(0.1)\nprint('finished')"
        _, posted = await queue.post(kernel_id=kernel_id, code=code)
        entry_id = posted["entries"][0]["id"]
        await wait_state(queue, entry_id, {"running"})
        status, cancelled = await api("DELETE", "api", "queue", entry_id)
        assert status == 200 and cancelled["state"] == "cancelled"
        printed = [o["text"] for o in cancelled["outputs"] if o["output_type"] == "stream"]
        assert "finished\n" not in printed, cancelled
        # Interrupted in the code (a KeyboardInterrupt traceback) or before it began
        # (ipykernel then aborts the request without output): either way it did not run on.
        errors = [o["ename"] for o in cancelled["outputs"] if o["output_type"] == "error"]
        assert errors in ([], ["KeyboardInterrupt"]), cancelled
