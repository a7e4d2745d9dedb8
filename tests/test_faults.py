"""Faults survived, nothing lost: killed and stopped kernels, vanishing clients, a crowd of
clients, a cancel racing the end of a cell, and the server stopped mid-run.

Each test reports its figures (``figure``): printed, recorded as junit properties, and
appended as JSON lines to ``$JUPYTER_CANVAS_FIGURES`` when that is set. The one-minute soak
with 50 clients on 10 kernels is the ``long`` variant (``pytest --long``); by default a
10-second soak with 20 clients on 4 kernels runs. Timed assertions only where the issue gives
a bound (5 s for a killed kernel's entries, 10 s for a stopped kernel's status), measured from
the signal.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest
from server_process import TOKEN, ServerProcess, servers_fixture, start  # noqa: F401  (fixture)
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

SERVICES_KEY = "jupyter_canvas.services"
TERMINAL = {"done", "error", "cancelled"}
FIGURES_ENV = "JUPYTER_CANVAS_FIGURES"

Figure = Callable[[str, Any], None]


@pytest.fixture
def figure(request: pytest.FixtureRequest, record_property: Any) -> Figure:
    """Report a measured figure of this test (see the module docstring)."""

    def report(name: str, value: Any) -> None:
        record_property(name, value)
        print(f"\nFIGURE {request.node.name} {name} = {value}")
        path = os.environ.get(FIGURES_ENV)
        if path:
            line = json.dumps({"test": request.node.name, "name": name, "value": value})
            with open(path, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    return report


def services_of(app: Any) -> Any:
    return app.web_app.settings[SERVICES_KEY]


def kernel_pid(app: Any, kernel_id: str) -> int:
    return int(app.kernel_manager.get_kernel(kernel_id).provisioner.process.pid)


async def wait_for_output(queue: Any, entry_id: str) -> None:
    for _ in range(600):
        if (await queue.get(entry_id))["outputs"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"entry {entry_id} printed nothing")


async def timed_wait(queue: Any, entry_id: str) -> tuple[dict[str, Any], float]:
    """Long-poll an entry to its end; return it and the monotonic time the answer came."""
    entry = await queue.wait(entry_id, 30)
    return entry, time.monotonic()


# -- a kernel killed mid-cell -------------------------------------------------------------------
async def test_sigkill_of_a_kernel_mid_cell(
    jp_serverapp: Any, kernel_id: str, queue: Any, figure: Figure
) -> None:
    _, running = await queue.post(
        kernel_id=kernel_id, code="import time\nprint('alive', flush=True)\ntime.sleep(60)"
    )
    running_id = running["entries"][0]["id"]
    queued_ids = []
    for i in range(3):
        _, queued = await queue.post(kernel_id=kernel_id, code=f"'never {i}'")
        queued_ids.append(queued["entries"][0]["id"])
    await wait_for_output(queue, running_id)
    waits = [
        asyncio.ensure_future(timed_wait(queue, entry_id)) for entry_id in [running_id, *queued_ids]
    ]
    await asyncio.sleep(0.3)  # the long polls have reached the server

    os.kill(kernel_pid(jp_serverapp, kernel_id), signal.SIGKILL)
    killed = time.monotonic()
    ended = await asyncio.gather(*waits)

    died, *cancelled = (entry for entry, _ in ended)
    assert died["state"] == "error" and "died" in died["reason"], died
    assert died["error"]["ename"] == "KernelDied"
    assert died["outputs"][0]["text"] == "alive\n"  # what it printed before is kept
    for entry in cancelled:
        assert entry["state"] == "cancelled" and "died" in entry["reason"], entry
    seconds = max(at for _, at in ended) - killed
    figure("entries_ended_s", round(seconds, 2))
    assert seconds < 5, f"the entries ended {seconds:.1f} s after the kill"

    # The next request, queued while the kernel restarts, runs on the new process.
    _, posted = await queue.post(kernel_id=kernel_id, code="'back'")
    after = await queue.wait(posted["entries"][0]["id"], 60)
    assert after["state"] == "done", after
    assert after["outputs"][0]["data"]["text/plain"] == "'back'"
    figure("next_entry_done_s", round(time.monotonic() - killed, 2))


# -- a kernel stopped mid-cell ------------------------------------------------------------------
async def test_sigstop_of_a_kernel_mid_cell(
    jp_serverapp: Any, kernel_id: str, queue: Any, api: Any, figure: Figure
) -> None:
    code = "import time\nfor i in range(30):\n    print(i, flush=True)\n    time.sleep(0.1)"
    _, running = await queue.post(kernel_id=kernel_id, code=code)
    running_id = running["entries"][0]["id"]
    _, queued = await queue.post(kernel_id=kernel_id, code="'after'")
    queued_id = queued["entries"][0]["id"]
    await wait_for_output(queue, running_id)
    status_url = ("api", "kernels", kernel_id, "status")

    pid = kernel_pid(jp_serverapp, kernel_id)
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        code_, model = await api(
            "GET", *status_url, params={"wait_for": "unknown", "timeout": "20"}
        )
        noticed = time.monotonic() - stopped
        assert code_ == 200 and model["status"] == "unknown", model
        assert "heartbeat" in model["reason"], model
        figure("status_unknown_after_s", round(noticed, 2))
        assert noticed < 10, f"the status changed {noticed:.1f} s after SIGSTOP"
        # A stopped kernel is not a dead one: its entries wait, none is failed.
        assert (await queue.get(running_id))["state"] == "running"
        assert (await queue.get(queued_id))["state"] == "queued"
    finally:
        os.kill(pid, signal.SIGCONT)
    continued = time.monotonic()
    code_, model = await api("GET", *status_url, params={"wait_for": "running", "timeout": "30"})
    assert model["status"] == "running" and model["reason"] is None, model
    figure("status_running_after_sigcont_s", round(time.monotonic() - continued, 3))
    done = await queue.wait(running_id, 60)
    assert done["state"] == "done"
    assert "".join(o["text"] for o in done["outputs"]) == "".join(f"{i}\n" for i in range(30))
    after = await queue.wait(queued_id, 60)
    assert after["state"] == "done" and after["execution_count"] == done["execution_count"] + 1


# -- clients that go away -----------------------------------------------------------------------
def entry_waiters(services: Any, entry_id: str) -> int:
    """Long polls the server is holding on an entry (its pending ``finished_waiter`` futures)."""
    return len(services.queue.get(entry_id)._waiters or ())


async def until(predicate: Callable[[], bool], timeout: float = 30) -> float:
    """Wait until ``predicate()``; return the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def raw_request(port: int, token: str, target: str, extra: str = "") -> asyncio.StreamWriter:
    """Send a GET over a socket of our own (to drop it under the server's feet)."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\n"
        f"Authorization: token {token}\r\n{extra}\r\n".encode()
    )
    await writer.drain()
    return writer


async def test_clients_that_disconnect_during_a_long_poll(
    jp_serverapp: Any,
    kernel_id: str,
    queue: Any,
    jp_fetch: Any,
    jp_http_port: int,
    jp_base_url: str,
    figure: Figure,
) -> None:
    token = jp_serverapp.identity_provider.token
    services = services_of(jp_serverapp)
    tracker = services.extras["status"]
    _, running = await queue.post(
        kernel_id=kernel_id, code="import time\nprint('started', flush=True)\ntime.sleep(30)"
    )
    entry_id = running["entries"][0]["id"]
    await wait_for_output(queue, entry_id)
    base = jp_base_url
    ws_handshake = (
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    # A well-behaved client waits on the same entry throughout.
    patient = asyncio.ensure_future(queue.wait(entry_id, 60))
    await until(lambda: entry_waiters(services, entry_id) == 1)

    writers = []
    for _ in range(10):
        writers.append(
            await raw_request(jp_http_port, token, f"{base}api/queue/{entry_id}?wait=60")
        )
        writers.append(
            await raw_request(
                jp_http_port,
                token,
                f"{base}api/kernels/{kernel_id}/status?wait_for=dead&timeout=60",
            )
        )
        writers.append(
            await raw_request(jp_http_port, token, f"{base}api/queue/events", ws_handshake)
        )
    record = tracker.track(kernel_id)
    await until(
        lambda: (
            entry_waiters(services, entry_id) == 11
            and len(record.waiters) == 10
            and services.bus.subscriber_count == 10
        )
    )

    for writer in writers:  # gone without a word: no close frame, no FIN handshake wait
        writer.transport.abort()
    gone = time.monotonic()
    await until(
        lambda: (
            entry_waiters(services, entry_id) == 1
            and not record.waiters
            and services.bus.subscriber_count == 0
        )
    )
    figure("released_after_disconnect_s", round(time.monotonic() - gone, 3))

    # The server carries on: the patient client gets its answer when the entry ends.
    cancelled = await jp_fetch("api", "queue", entry_id, method="DELETE")
    assert cancelled.code == 200
    entry = await patient
    assert entry["state"] == "cancelled"
    assert (await queue.run(kernel_id, "1"))["state"] == "done"


# -- cancels racing the start and the end of a cell ---------------------------------------------
async def test_cancel_racing_the_start_and_the_end_of_a_cell(
    jp_serverapp: Any, kernel_id: str, queue: Any, api: Any, figure: Figure
) -> None:
    # ipykernel ignores an interrupt that lands before the code starts, and drops the reply
    # when one lands after the code ended but before the reply was sent. Whenever the cancel
    # comes, the entry must end and the kernel's queue go on.
    states: Counter[str] = Counter()
    started = time.monotonic()
    for i in range(40):
        long_cell = i % 4 == 3
        code = "import time\ntime.sleep(20)\nprint('ran to the end')" if long_cell else str(i)
        _, posted = await queue.post(kernel_id=kernel_id, code=code)
        entry_id = posted["entries"][0]["id"]
        await asyncio.sleep(0.002 * (i % 8))
        if i % 2:
            status, _ = await api("DELETE", "api", "queue", entry_id)
            assert status in (200, 409)
        else:
            status, _ = await api("DELETE", "api", "queue", params={"kernel_id": kernel_id})
            assert status == 200
        entry = await queue.wait(entry_id, 30)
        assert entry["state"] in ("done", "cancelled"), entry
        if long_cell:  # the interrupt took effect: the cell did not run to its end
            assert entry["state"] == "cancelled", entry
            assert not [o for o in entry["outputs"] if o["output_type"] == "stream"], entry
        states[entry["state"]] += 1
    figure("cancel_race_states", dict(states))
    figure("cancel_race_seconds_for_40", round(time.monotonic() - started, 1))
    assert (await queue.run(kernel_id, "'still fine'"))["state"] == "done"


# -- many clients on many kernels ---------------------------------------------------------------
class Http:
    """A client of a server process with room for many requests at once."""

    def __init__(self, url: str, max_clients: int, server_may_stop: bool = False) -> None:
        self.url = url
        self.client = AsyncHTTPClient(force_instance=True, max_clients=max_clients)
        #: Answer 599 instead of failing when the server goes away.
        self.server_may_stop = server_may_stop

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        request = HTTPRequest(
            self.url + path,
            method=method,
            body=data,
            headers={"Authorization": f"token {TOKEN}"},
            request_timeout=120,
            allow_nonstandard_methods=True,
        )
        try:
            # raise_error=False only turns HTTP error codes into answers: a connection that
            # fails or closes mid-request still raises (OSError when it is refused, an
            # HTTPClientError of code 599, e.g. HTTPStreamClosedError, when the server closes
            # it while the request is in flight, as a stopping server does).
            response = await self.client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as err:
            if isinstance(err, HTTPClientError) and err.code != 599:
                raise
            assert self.server_may_stop, f"{method} {path}: {err!r}"
            return 599, None
        text = response.body.decode() if response.body else ""
        return response.code, json.loads(text) if text else None

    async def wait(self, entry_id: str) -> dict[str, Any]:
        code, entry = await self.call("GET", f"api/queue/{entry_id}?wait=60")
        assert code == 200, entry
        return entry  # type: ignore[no-any-return]

    async def run(self, kernel_id: str, code: str) -> dict[str, Any]:
        status, posted = await self.call(
            "POST", "api/queue", {"kernel_id": kernel_id, "code": code}
        )
        assert status == 202, posted
        entry = await self.wait(posted["entries"][0]["id"])
        assert entry["state"] == "done", entry
        return entry

    def close(self) -> None:
        self.client.close()


async def test_a_request_in_flight_when_the_server_stops_counts_as_stopped() -> None:
    """A server that stops closes the connections of requests it is still serving: the soak
    clients take that (tornado's HTTPStreamClosedError, code 599) as the server stopping, as
    they take a refused connection; CI once saw it fail the SIGTERM test below."""

    async def close_mid_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request arrived; answer nothing
        writer.close()

    listener = await asyncio.start_server(close_mid_request, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    stopping = Http(f"http://127.0.0.1:{port}/", max_clients=2, server_may_stop=True)
    running = Http(f"http://127.0.0.1:{port}/", max_clients=2)
    try:
        assert await stopping.call("DELETE", "api/queue/x") == (599, None)
        with pytest.raises(AssertionError, match="Stream closed"):
            await running.call("DELETE", "api/queue/x")
    finally:
        stopping.close()
        running.close()
        listener.close()
        await listener.wait_closed()
    listener_port_gone = Http(f"http://127.0.0.1:{port}/", max_clients=2, server_may_stop=True)
    try:  # and a refused connection, as before
        assert await listener_port_gone.call("GET", "api/queue") == (599, None)
    finally:
        listener_port_gone.close()


async def start_server(servers: list[ServerProcess], base: Path, *args: str) -> ServerProcess:
    return await start(servers, base, "--CanvasApp.retain_finished=1000000", *args)


async def start_kernels(http: Http, count: int) -> list[str]:
    async def one() -> str:
        code, kernel = await http.call("POST", "api/kernels", {"name": "python3"})
        assert code == 201, kernel
        code, _ = await http.call(
            "GET", f"api/kernels/{kernel['id']}/status?wait_for=idle&timeout=60"
        )
        return str(kernel["id"])

    return list(await asyncio.gather(*(one() for _ in range(count))))


@dataclass
class Accepted:
    """An entry a soak client got a 202 for."""

    id: str
    kernel_id: str
    token: str
    client: int
    seq: int
    kind: str  # print | raise | cancel
    stop_on_error: bool
    #: The entry as the client last saw it finished, when it waited for it.
    seen_finished: dict[str, Any] | None = None


@dataclass
class EventLog:
    """Every event of the soak, read from the events websocket (reconnecting with since=)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0
    stopped: bool = False

    async def follow(self, url: str) -> None:
        since: int | None = None
        while not self.stopped:
            query = "" if since is None else f"?since={since}"
            request = HTTPRequest(
                url.replace("http", "ws", 1) + "api/queue/events" + query,
                headers={"Authorization": f"token {TOKEN}"},
            )
            connection = await websocket_connect(request)
            try:
                while True:
                    text = await connection.read_message()
                    if text is None:
                        break
                    event = json.loads(text)
                    if event["type"] == "gap":
                        self.gaps.append(event)
                        continue
                    self.events.append(event)
                    since = event["seq"]
            finally:
                connection.close()
            self.reconnects += 1


async def soak_client(
    http: Http,
    number: int,
    kernels: list[str],
    deadline: float,
    refused: Counter[int],
) -> list[Accepted]:
    rng = random.Random(number)
    accepted: list[Accepted] = []
    seq = 0
    while time.monotonic() < deadline:
        kernel_id = rng.choice(kernels)
        token = f"c{number}n{seq}"
        roll = rng.random()
        stop_on_error = False
        if roll < 0.05:
            kind, body = "raise", f"raise ValueError({token!r})"
            stop_on_error = rng.random() < 0.5
        elif roll < 0.12:
            kind, body = "cancel", f"__import__('time').sleep(0.2)\nprint({token!r})"
        else:
            pause = rng.choice([0, 0, 0, 0.005, 0.02])
            kind, body = "print", f"__import__('time').sleep({pause})\nprint({token!r})"
        code, answer = await http.call(
            "POST",
            "api/queue",
            {
                "kernel_id": kernel_id,
                "code": f"_soak.append({token!r})\n{body}",
                "stop_on_error": stop_on_error,
            },
        )
        if code == 599:
            break  # the server stopped
        if code == 429:
            refused[number] += 1
            await asyncio.sleep(0.05)
            continue
        assert code == 202, answer
        entry_id = answer["entries"][0]["id"]
        mine = Accepted(entry_id, kernel_id, token, number, seq, kind, stop_on_error)
        accepted.append(mine)
        seq += 1
        if kind == "cancel":
            code, answer = await http.call("DELETE", f"api/queue/{entry_id}")
            if code == 599:
                break
            assert code in (200, 409), answer
        if seq % 4 == 0:  # a client that also waits for its results
            code, answer = await http.call("GET", f"api/queue/{entry_id}?wait=60")
            if code == 599:
                break
            assert code == 200, answer
            if answer["state"] in TERMINAL:
                mine.seen_finished = answer
    return accepted


async def kernel_log(http: Http, kernel_id: str, out: Path) -> list[str]:
    """The tokens the kernel executed, in order (written to a file by the kernel)."""
    await http.run(kernel_id, f"import json; open({str(out)!r}, 'w').write(json.dumps(_soak))")
    return list(read_json(out))


ALLOWED_NEXT: dict[str | None, set[str]] = {
    None: {"queued"},
    "queued": {"running", "cancelled"},
    "running": {"awaiting_input", "done", "error", "cancelled"},
    "awaiting_input": {"running", "done", "error", "cancelled"},
}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def soak(
    servers: list[ServerProcess],
    tmp_path: Path,
    figure: Figure,
    seconds: float,
    clients: int,
    kernel_count: int,
) -> None:
    server = await start_server(servers, tmp_path)
    http = Http(server.url, max_clients=clients * 2 + 20)
    try:
        kernels = await start_kernels(http, kernel_count)
        setup_ids = set()
        for kernel_id in kernels:
            setup_ids.add((await http.run(kernel_id, "_soak = []"))["id"])
        events = EventLog()
        follower = asyncio.ensure_future(events.follow(server.url))
        await asyncio.sleep(0.5)

        refused: Counter[int] = Counter()
        started = time.monotonic()
        deadline = started + seconds
        per_client = await asyncio.gather(
            *(soak_client(http, n, kernels, deadline, refused) for n in range(clients))
        )
        accepted = [a for batch in per_client for a in batch]
        finals: dict[str, dict[str, Any]] = {}
        for chunk in range(0, len(accepted), 100):
            batch = accepted[chunk : chunk + 100]
            for entry in await asyncio.gather(*(http.wait(a.id) for a in batch)):
                finals[entry["id"]] = entry
        drained = time.monotonic()
        logs = {
            kernel_id: await kernel_log(http, kernel_id, tmp_path / f"log-{i}.json")
            for i, kernel_id in enumerate(kernels)
        }
        await asyncio.sleep(0.5)  # the last events reach the follower
        events.stopped = True
        follower.cancel()
        code, listing = await http.call("GET", "api/queue")
        assert code == 200
    finally:
        http.close()

    # -- every entry accounted for: done, error or cancelled; none lost, none duplicated ------
    ids = [a.id for a in accepted]
    assert len(ids) == len(set(ids)), "an id was given twice"
    by_id = {a.id: a for a in accepted}
    states = Counter(entry["state"] for entry in finals.values())
    assert set(states) <= TERMINAL, states
    assert len(finals) == len(accepted)
    listed = [e["id"] for e in listing["entries"] if e["id"] in by_id]
    assert len(listed) == len(set(listed)) == len(accepted), "listing lost or repeated entries"

    for entry in finals.values():
        mine = by_id[entry["id"]]
        assert entry["kernel_id"] == mine.kernel_id
        if entry["state"] == "done":
            assert mine.kind in ("print", "cancel"), entry
            assert entry["outputs"] == [
                {"output_type": "stream", "name": "stdout", "text": mine.token + "\n"}
            ], entry
        elif entry["state"] == "error":
            assert mine.kind == "raise", entry
            assert entry["error"]["ename"] == "ValueError", entry
            assert entry["error"]["evalue"] == mine.token, entry
        else:
            reason = entry["reason"]
            if reason.startswith("cancelled by"):
                assert mine.kind == "cancel", entry
            else:
                assert reason.startswith("an earlier cell failed: ValueError in "), entry
                failed = by_id[entry["caused_by"]]
                assert failed.kind == "raise" and failed.stop_on_error, entry
                assert failed.kernel_id == mine.kernel_id

    # -- each kernel ran each entry at most once, in the order they were queued --------------
    ran_total = 0
    for kernel_id, log in logs.items():
        assert len(log) == len(set(log)), "an entry ran twice"
        tokens = {a.token: a for a in accepted if a.kernel_id == kernel_id}
        assert set(log) <= set(tokens), "the kernel ran something nobody queued"
        ran = [finals[tokens[t].id] for t in log]
        for entry in ran:
            assert entry["started_at"] is not None, entry
        for a in tokens.values():
            entry = finals[a.id]
            if entry["state"] in ("done", "error"):
                assert a.token in log, entry
            if entry["started_at"] is None:
                assert a.token not in log, entry
        # Run order = queue order = execution count order.
        queued_at = [moment(e["queued_at"]) for e in ran]
        assert queued_at == sorted(queued_at), "entries ran out of queue order"
        counts = [e["execution_count"] for e in ran if e["execution_count"] is not None]
        assert counts == sorted(counts)
        for client in {a.client for a in tokens.values()}:
            seqs = [tokens[t].seq for t in log if tokens[t].client == client]
            assert seqs == sorted(seqs), "one client's entries ran out of its order"
        ran_total += len(log)

    # -- the event stream: numbered without gaps, each entry's life once and in order --------
    assert not events.gaps, events.gaps
    seqs = [e["seq"] for e in events.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "events skipped or repeated"
    lives: dict[str, list[str]] = defaultdict(list)
    for event in events.events:
        if event["type"] == "entry" and event["entry"]["id"] in by_id:
            lives[event["entry"]["id"]].append(event["entry"]["state"])
    assert set(lives) == set(by_id), "an entry had no events"
    for entry_id, life in lives.items():
        previous = None
        for state in life:
            assert state in ALLOWED_NEXT.get(previous, set()), (entry_id, life)
            previous = state
        assert life[-1] == finals[entry_id]["state"], (entry_id, life)
        assert sum(state in TERMINAL for state in life) == 1, (entry_id, life)

    elapsed = drained - started
    figure("clients", clients)
    figure("kernels", kernel_count)
    figure("seconds_queueing", seconds)
    figure("entries_accepted", len(accepted))
    figure("entries_by_state", dict(states))
    figure("entries_that_ran", ran_total)
    figure("refused_429", sum(refused.values()))
    figure("events", len(events.events))
    figure("event_reconnects", events.reconnects)
    figure("drain_after_deadline_s", round(drained - deadline, 1))
    figure("finished_per_s", round(len(accepted) / elapsed, 1))


async def test_soak_short(servers: list[ServerProcess], tmp_path: Path, figure: Figure) -> None:
    await soak(servers, tmp_path, figure, seconds=10, clients=20, kernel_count=4)


@pytest.mark.long
@pytest.mark.timeout(600)
async def test_soak_one_minute(
    servers: list[ServerProcess], tmp_path: Path, figure: Figure
) -> None:
    await soak(servers, tmp_path, figure, seconds=60, clients=50, kernel_count=10)


# -- the server stopped mid-run, then started again ---------------------------------------------
async def test_sigterm_of_the_server_under_load_then_restart(
    servers: list[ServerProcess], tmp_path: Path, figure: Figure
) -> None:
    server = await start_server(servers, tmp_path)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("print('first', flush=True)", id="first"),
            nbformat.v4.new_code_cell(
                "import time\nfor i in range(3):\n    print(i, flush=True)\ntime.sleep(60)",
                id="long",
            ),
            nbformat.v4.new_code_cell("'never'", id="never"),
        ]
    )
    nbformat.write(notebook, str(server.root / "load.ipynb"))
    http = Http(server.url, max_clients=40, server_may_stop=True)
    try:
        kernels = await start_kernels(http, 3)
        for kernel_id in kernels:
            await http.run(kernel_id, "_soak = []")
        code, run = await http.call("POST", "api/queue", {"path": "load.ipynb", "select": "all"})
        assert code == 202, run
        notebook_ids = [e["id"] for e in run["entries"]]
        # Eight clients queue on three kernels until the server goes away.
        refused: Counter[int] = Counter()
        clients = asyncio.gather(
            *(soak_client(http, n, kernels, time.monotonic() + 120, refused) for n in range(8))
        )
        for _ in range(400):
            entry = (await http.call("GET", f"api/queue/{notebook_ids[1]}"))[1]
            if entry["outputs"] and entry["outputs"][0]["text"] == "0\n1\n2\n":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3)

        signalled = time.monotonic()
        assert await server.stop(signal.SIGTERM) == 0
        figure("sigterm_to_exit_s", round(time.monotonic() - signalled, 2))
        accepted = [a for batch in await clients for a in batch]
    finally:
        http.close()
    assert len(accepted) > 50

    # Outputs printed before the stop are in the notebook on disk.
    on_disk = read_json(server.root / "load.ipynb")
    cells = {cell["id"]: cell for cell in on_disk["cells"]}
    assert "".join(cells["first"]["outputs"][0]["text"]) == "first\n"
    assert "".join(cells["long"]["outputs"][0]["text"]) == "0\n1\n2\n"
    assert cells["never"]["outputs"] == []

    restarted = time.monotonic()
    again = await start_server(servers, tmp_path)
    figure("restart_to_answering_s", round(time.monotonic() - restarted, 2))
    http = Http(again.url, max_clients=40)
    try:
        ids = [*notebook_ids, *(a.id for a in accepted)]
        answers = await asyncio.gather(*(http.call("GET", f"api/queue/{i}") for i in ids))
    finally:
        http.close()
    after = {entry["id"]: entry for code, entry in answers if code == 200}
    assert set(after) == set(ids), "entries lost across the restart"
    assert [after[i]["state"] for i in notebook_ids] == ["done", "cancelled", "cancelled"]
    stopped = [e for e in after.values() if e["reason"] == "server stopped"]
    for a in accepted:
        entry = after[a.id]
        assert entry["state"] in TERMINAL, entry
        if a.seen_finished is not None:  # the journal answers what the client saw
            assert entry == a.seen_finished
        if entry["state"] == "done":
            assert entry["outputs"][-1]["text"] == a.token + "\n", entry
    figure("entries_accepted", len(ids))
    figure("entries_open_at_stop_cancelled_server_stopped", len(stopped))
    figure("entries_by_state_after_restart", dict(Counter(e["state"] for e in after.values())))
