"""Kernel status (``GET /api/kernels/<id>/status``) through real kernels' whole lives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

import pytest

SERVICES_KEY = "jupyter_canvas.services"


def services_of(app: Any) -> Any:
    return app.web_app.settings[SERVICES_KEY]


class KernelEvents:
    """The ``kernel`` events of one kernel, as the events websocket delivers them."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.cursor = 0

    async def until(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """The next status (after the last one matched) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.events):
                status = self.events[self.cursor]
                self.cursor += 1
                if predicate(status):
                    return status
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching status; saw {self.summary()}"
            text = await asyncio.wait_for(self.ws.read_message(), remaining)
            assert text is not None, "the events websocket closed"
            event = json.loads(text)
            if event["type"] == "kernel":
                self.events.append(event["status"])

    def summary(self) -> list[tuple[str, str]]:
        return [(s["status"], s["execution_state"]) for s in self.events]

    def statuses(self) -> list[str]:
        """The status values in order, consecutive repeats merged."""
        merged: list[str] = []
        for status in self.events:
            if not merged or merged[-1] != status["status"]:
                merged.append(status["status"])
        return merged


async def kernel_events(jp_ws_fetch: Any, kernel_id: str) -> KernelEvents:
    ws = await jp_ws_fetch("api", "queue", "events", params={"kernel_id": kernel_id, "since": "0"})
    return KernelEvents(ws)


async def status_of(api: Any, kernel_id: str, **params: str) -> tuple[int, Any]:
    return await api("GET", "api", "kernels", kernel_id, "status", params=params or None)


def kernel_pid(app: Any, kernel_id: str) -> int:
    provisioner = app.kernel_manager.get_kernel(kernel_id).provisioner
    return int(provisioner.pid)


def is_(value: str) -> Any:
    return lambda s: value in (s["status"], s["execution_state"])


async def test_whole_life(jp_serverapp: Any, api: Any, jp_ws_fetch: Any, queue: Any) -> None:
    code, model = await api("POST", "api", "kernels", body={"name": "python3"})
    assert code == 201, model
    kernel_id = model["id"]
    events = await kernel_events(jp_ws_fetch, kernel_id)
    try:
        first = await events.until(lambda s: True)
        assert (first["status"], first["execution_state"]) == ("starting", "starting")
        await events.until(lambda s: s["status"] == "running" and s["execution_state"] == "idle")

        done = await queue.run(kernel_id, "import time; time.sleep(0.3)")
        assert done["state"] == "done"
        await events.until(is_("busy"))
        await events.until(is_("idle"))

        code, _ = await api("POST", "api", "kernels", kernel_id, "restart")
        assert code == 200
        await events.until(is_("restarting"))
        back = await events.until(is_("running"))
        assert back["execution_state"] == "idle" and back["reason"] is None

        code, _ = await api("DELETE", "api", "kernels", kernel_id)
        assert code == 204
        dead = await events.until(is_("dead"))
        assert dead["execution_state"] == "dead"
        assert "shut down" in dead["reason"]
        assert events.statuses() == [
            "starting",
            "running",
            "restarting",
            "running",
            "terminating",
            "dead",
        ], events.summary()
        states = [s["execution_state"] for s in events.events]
        busy = states.index("busy")
        assert "idle" in states[:busy] and "idle" in states[busy:]

        # The server forgot the kernel; its status still answers, dead with its reason.
        code, _ = await api("GET", "api", "kernels", kernel_id)
        assert code == 404
        code, model = await status_of(api, kernel_id)
        assert code == 200
        assert model["status"] == "dead" and model["execution_state"] == "dead"
        assert model["kernel_id"] == kernel_id and model["name"] == "python3"
        assert model["queue"] == {"running": None, "queued": 0}
        assert model["last_activity"].endswith("Z")
    finally:
        events.ws.close()


async def test_model_fields_and_queue_summary(
    jp_serverapp: Any, api: Any, kernel_id: str, queue: Any
) -> None:
    code, model = await status_of(api, kernel_id, wait_for="idle", timeout="30")
    assert code == 200
    assert set(model) == {
        "kernel_id",
        "name",
        "status",
        "execution_state",
        "reason",
        "last_activity",
        "queue",
    }
    assert (model["status"], model["execution_state"], model["reason"]) == ("running", "idle", None)
    status, data = await queue.post(kernel_id=kernel_id, code="import time; time.sleep(3)")
    assert status == 202
    running_id = data["entries"][0]["id"]
    status, data = await queue.post(kernel_id=kernel_id, code="1")
    assert status == 202
    code, model = await status_of(api, kernel_id, wait_for="busy", timeout="30")
    assert model["execution_state"] == "busy"
    assert model["queue"] == {"running": running_id, "queued": 1}
    await queue.wait(data["entries"][0]["id"])


async def test_crash_and_autorestart(
    jp_serverapp: Any, api: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    events = await kernel_events(jp_ws_fetch, kernel_id)
    try:
        await events.until(lambda s: s["status"] == "running")
        entry = await queue.run(
            kernel_id, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
        )
        assert entry["state"] == "error"
        restarting = await events.until(is_("autorestarting"))
        assert "died" in restarting["reason"]
        back = await events.until(is_("running"))
        assert back["reason"] is None and back["execution_state"] == "idle"
        assert events.statuses() == [
            "starting",
            "running",
            "autorestarting",
            "running",
        ], events.summary()
        # The new process serves code again.
        again = await queue.run(kernel_id, "print('back')")
        assert again["state"] == "done"
    finally:
        events.ws.close()


async def test_missing_command_is_dead_with_reason(
    jp_serverapp: Any, api: Any, jp_data_dir: Any
) -> None:
    spec_dir = jp_data_dir / "kernels" / "broken"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["no-such-kernel-command", "-f", "{connection_file}"],
                "display_name": "Broken",
                "language": "python",
            }
        )
    )
    # A client that picks the kernel id can ask for that kernel's status.
    chosen = str(uuid.uuid4())
    code, _ = await api("POST", "api", "kernels", body={"name": "broken", "kernel_id": chosen})
    assert code == 500
    code, model = await status_of(api, chosen, wait_for="dead", timeout="10")
    assert code == 200, model
    assert model["status"] == "dead" and model["execution_state"] == "dead"
    assert model["name"] == "broken"
    assert "no-such-kernel-command" in model["reason"]
    assert "not found" in model["reason"] and "kernel.json" in model["reason"]

    # One that did not pick an id finds the failed start in the listing.
    code, _ = await api("POST", "api", "kernels", body={"name": "broken"})
    assert code == 500
    code, listing = await api("GET", "api", "kernels", "status")
    assert code == 200
    failed = [k for k in listing["kernels"] if k["name"] == "broken"]
    assert len(failed) == 2
    assert all(k["status"] == "dead" and "no-such-kernel-command" in k["reason"] for k in failed)


async def test_listing_has_running_then_dead(jp_serverapp: Any, api: Any, kernel_id: str) -> None:
    km = jp_serverapp.kernel_manager
    other = await km.start_kernel(kernel_name="python3")
    await km.shutdown_kernel(other)
    code, listing = await api("GET", "api", "kernels", "status")
    assert code == 200
    ids = [k["kernel_id"] for k in listing["kernels"]]
    assert ids.index(kernel_id) < ids.index(other)
    assert listing["kernels"][ids.index(other)]["status"] == "dead"


async def test_wait_for_answers_promptly(
    jp_serverapp: Any, api: Any, kernel_id: str, queue: Any
) -> None:
    services = services_of(jp_serverapp)
    await status_of(api, kernel_id, wait_for="idle", timeout="30")
    published: dict[str, float] = {}
    subscription = services.bus.subscribe(kernel_id=kernel_id)

    async def watch_bus() -> None:
        while "busy" not in published:
            batch = await subscription.next_batch()
            assert batch is not None
            for text in batch:
                event = json.loads(text)
                if event["type"] == "kernel" and event["status"]["execution_state"] == "busy":
                    published["busy"] = time.perf_counter()

    watcher = asyncio.ensure_future(watch_bus())
    waiting = asyncio.ensure_future(status_of(api, kernel_id, wait_for="busy", timeout="30"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await queue.post(kernel_id=kernel_id, code="import time; time.sleep(2)")
    code, model = await waiting
    answered = time.perf_counter()
    await watcher
    subscription.close()
    assert code == 200 and model["execution_state"] == "busy"
    latency_ms = (answered - published["busy"]) * 1000
    print(f"\nwait_for=busy answered {latency_ms:.1f} ms after the kernel event")
    assert latency_ms < 1000


async def test_wait_for_times_out_with_model_as_is(
    jp_serverapp: Any, api: Any, kernel_id: str
) -> None:
    await status_of(api, kernel_id, wait_for="idle", timeout="30")
    started = time.monotonic()
    code, model = await status_of(api, kernel_id, wait_for="dead", timeout="0.5")
    elapsed = time.monotonic() - started
    assert code == 200 and model["status"] == "running"
    assert 0.4 < elapsed < 5


@pytest.mark.parametrize(
    "params, message",
    [
        ({"wait_for": "sleeping"}, "wait_for must be"),
        ({"wait_for": "idle", "timeout": "61"}, "timeout must be between 0 and 60"),
        ({"wait_for": "idle", "timeout": "soon"}, "timeout must be a number"),
    ],
)
async def test_bad_arguments_are_400(
    jp_serverapp: Any, api: Any, kernel_id: str, params: dict[str, str], message: str
) -> None:
    code, body = await status_of(api, kernel_id, **params)
    assert code == 400
    assert message in body["message"]


async def test_unknown_kernel_is_404(jp_serverapp: Any, api: Any) -> None:
    code, body = await status_of(api, str(uuid.uuid4()))
    assert code == 404
    assert "no kernel" in body["message"]
    code, _ = await status_of(api, str(uuid.uuid4()), wait_for="idle", timeout="1")
    assert code == 404


async def test_dead_kernel_is_forgotten_after_retention(
    jp_serverapp: Any, api: Any, kernel_id: str
) -> None:
    tracker = services_of(jp_serverapp).extras["status"]
    tracker.dead_retention_seconds = 0.5
    await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id)
    code, model = await status_of(api, kernel_id, wait_for="dead", timeout="10")
    assert code == 200 and model["status"] == "dead"
    await asyncio.sleep(0.8)
    code, _ = await status_of(api, kernel_id)
    assert code == 404


async def test_stopped_process_turns_unknown_then_running(
    jp_serverapp: Any, api: Any, kernel_id: str
) -> None:
    await status_of(api, kernel_id, wait_for="idle", timeout="30")
    pid = kernel_pid(jp_serverapp, kernel_id)
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code, model = await status_of(api, kernel_id, wait_for="unknown", timeout="15")
        noticed = time.monotonic() - started
        assert model["status"] == "unknown", model
        assert model["execution_state"] == "unknown"
        assert "heartbeat" in model["reason"]
        print(f"\nSIGSTOP noticed after {noticed:.1f} s")
        assert noticed < 10
    finally:
        os.kill(pid, signal.SIGCONT)
    code, model = await status_of(api, kernel_id, wait_for="running", timeout="15")
    assert code == 200 and model["status"] == "running" and model["reason"] is None


async def test_status_needs_authentication(
    jp_serverapp: Any, kernel_id: str, jp_fetch: Any
) -> None:
    unauthenticated = {"Authorization": "token not-the-token"}
    for parts in (("api", "kernels", kernel_id, "status"), ("api", "kernels", "status")):
        response = await jp_fetch(*parts, headers=unauthenticated, raise_error=False)
        assert response.code == 403


class TestWithoutAutorestart:
    """A kernel nobody restarts: its death is noticed through the heartbeat."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config: Any) -> Any:
        jp_server_config.KernelManager.autorestart = False
        return jp_server_config

    async def test_killed_process_is_dead_with_the_signal(
        self, jp_serverapp: Any, api: Any, kernel_id: str
    ) -> None:
        await status_of(api, kernel_id, wait_for="idle", timeout="30")
        os.kill(kernel_pid(jp_serverapp, kernel_id), signal.SIGKILL)
        code, model = await status_of(api, kernel_id, wait_for="dead", timeout="20")
        assert code == 200 and model["status"] == "dead", model
        assert model["reason"] == "the kernel process was killed by signal 9"


async def test_kernel_model_carries_status_and_reason(
    jp_serverapp: Any, api: Any, kernel_id: str, jp_ws_fetch: Any, queue: Any
) -> None:
    """jupyter_server's own kernel model (GET /api/kernels[/<id>], sessions) carries the
    tracker's status and reason, and an execution_state that is true for a kernel no
    websocket touched (the server's alone stays 'starting')."""
    code, _ = await status_of(api, kernel_id, wait_for="idle", timeout="30")
    assert code == 200
    code, model = await api("GET", "api", "kernels", kernel_id)
    assert code == 200
    assert (model["status"], model["reason"], model["execution_state"]) == (
        "running",
        None,
        "idle",
    )
    assert {"id", "name", "last_activity", "connections"} <= set(model)
    code, listing = await api("GET", "api", "kernels")
    assert code == 200
    mine = next(k for k in listing if k["id"] == kernel_id)
    assert (mine["status"], mine["execution_state"]) == ("running", "idle")

    # A crash: the model says so, with why, while the kernel restarts.
    events = await kernel_events(jp_ws_fetch, kernel_id)
    try:
        await events.until(lambda s: s["status"] == "running")
        seen: list[dict[str, Any]] = []

        async def watch_model() -> None:
            while True:
                code, model = await api("GET", "api", "kernels", kernel_id)
                if code == 200 and model["status"] == "autorestarting":
                    seen.append(model)
                    return
                await asyncio.sleep(0.02)

        watcher = asyncio.ensure_future(watch_model())
        await queue.run(kernel_id, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        restarting = await events.until(is_("autorestarting"))
        await asyncio.wait_for(watcher, 30)
        assert seen[0]["reason"] == restarting["reason"] and "died" in seen[0]["reason"]
        await events.until(is_("running"))
        code, model = await api("GET", "api", "kernels", kernel_id)
        assert (model["status"], model["reason"]) == ("running", None)
    finally:
        events.ws.close()


async def test_kernel_model_wrapper_installs_and_uninstalls() -> None:
    """The wrapper adds fields only, keeps a coroutine a coroutine, and gives the method back."""
    from jupyter_canvas.status.kernel_model import KernelModelStatus

    class Manager:
        def kernel_model(self, kernel_id: str) -> dict[str, Any]:
            return {"id": kernel_id, "execution_state": "starting", "connections": 0}

    class GatewayManager:
        async def kernel_model(self, kernel_id: str) -> dict[str, Any]:
            return {"id": kernel_id, "execution_state": "starting"}

    known = {"k": {"status": "running", "reason": None, "execution_state": "idle", "queue": {}}}
    km = Manager()
    wrapper = KernelModelStatus(km, known.get)
    assert wrapper.install() and not wrapper.install()
    assert km.kernel_model("k") == {
        "id": "k",
        "execution_state": "idle",
        "connections": 0,
        "status": "running",
        "reason": None,
    }
    assert km.kernel_model("other") == {
        "id": "other",
        "execution_state": "starting",
        "connections": 0,
    }
    wrapper.uninstall()
    assert "kernel_model" not in vars(km) and km.kernel_model("k")["execution_state"] == "starting"
    gateway = GatewayManager()
    KernelModelStatus(gateway, known.get).install()
    assert (await gateway.kernel_model("k"))["status"] == "running"
