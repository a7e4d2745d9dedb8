"""Property-based API tests: schemathesis drives a live server from docs/rest-api.yaml.

A real ``jupyter server`` (this extension, jupyter_server_fileid and jupyter_server_ydoc, a
token) runs in a subprocess on a free port of 127.0.0.1, with a real kernel started through
its API and a small notebook in its root. For every REST operation of the document,
schemathesis generates requests (valid ones and, for most operations, invalid ones) and checks
every answer: no 5xx, a documented status, a documented content type and headers, a body that
matches the documented schema, and invalid requests refused with a 4xx.

Generated requests run code on the real kernel, so the test keeps them harmless and short:

- generated ``code`` strings are replaced with one of a few safe snippets (chosen from the
  generated string, so a failing example replays); oversized ones are kept, since the server
  refuses them with 413 before anything runs;
- generated ``kernel_id``, ``entry_id`` and ``path`` values are sometimes replaced with real
  ones (again chosen from the generated value), so the happy paths are reached too;
- waits (``wait``, ``timeout``, a ``wait_for`` without ``timeout``) are capped at one second;
- after every example the queues of the kernel and the notebook are cleared.

By default each operation gets a bounded number of fuzzed examples (the whole file runs in a
few minutes on 2 cores); ``JUPYTER_CANVAS_SCHEMATHESIS_EXAMPLES=1000`` runs a larger search,
and ``JUPYTER_CANVAS_SCHEMATHESIS_OPERATIONS=queueCode,getEntry`` (operation ids) only some
operations.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

try:  # schemathesis 4 keeps the generic checks here
    from schemathesis.checks import not_a_server_error
except ImportError:  # pragma: no cover
    from schemathesis.specs.openapi.checks import (  # type: ignore[no-redef,attr-defined]
        not_a_server_error,
    )

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "rest-api.yaml"
MAX_EXAMPLES = int(os.environ.get("JUPYTER_CANVAS_SCHEMATHESIS_EXAMPLES", "25"))
TOKEN = "schemathesis-" + hashlib.sha256(os.urandom(16)).hexdigest()[:16]
NOTEBOOK = "analysis.ipynb"
#: The code cells of the notebook, and valid selections of its cells.
CODE_CELLS = ("c3d4", "e5f6")
SELECTS: tuple[Any, ...] = ("all", {"from": "e5f6"}, {"group": "a1b2"})
#: Longest a single generated request may take (the longest legitimate one waits 1 s).
REQUEST_TIMEOUT = 30.0
#: What generated ``code`` becomes: quick, harmless, and covering done/error/input/outputs.
SAFE_CODE = (
    "",
    "1 + 1",
    "print('hello')",
    "x = 1",
    "1 / 0",
    "import time; time.sleep(0.05)",
    "input('name? ')",
    "from IPython.display import display, HTML; display(HTML('<b>hi</b>'))",
    "print('x' * 3000)",  # longer than the notebook stream cap below: cut, kept whole
)
MAX_CODE_BYTES = 4096
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

schema: BaseSchema = schemathesis.openapi.from_path(DOCUMENT)
# Websocket routes are described in words; schemathesis cannot speak websocket.
schema = schema.exclude(func=lambda ctx: bool(ctx.operation.definition.raw.get("x-websocket")))
if os.environ.get("JUPYTER_CANVAS_SCHEMATHESIS_OPERATIONS"):  # e.g. "queueCode,getEntry"
    schema = schema.include(
        operation_id=os.environ["JUPYTER_CANVAS_SCHEMATHESIS_OPERATIONS"].split(",")
    )
schema.config.generation.update(max_examples=MAX_EXAMPLES, with_security_parameters=False)


# -- the live server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Analysis", id="a1b2"),
        nbformat.v4.new_code_cell("x = 1", id="c3d4"),
        nbformat.v4.new_code_cell("print(x)", id="e5f6"),
    ]
    nbformat.write(notebook, path)


@dataclass
class LiveServer:
    """A running server, its real kernel, and what generated requests may be steered to."""

    url: str
    kernel_id: str
    process: subprocess.Popen[bytes]
    log: Path
    http: requests.Session
    entry_ids: list[str] = field(default_factory=list)
    #: Generated requests sent, and their answers' statuses, per operation.
    answers: Counter[str] = field(default_factory=Counter)
    #: Why the server is taken as stuck (a request went unanswered), once it is.
    stuck: str | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return self.http.request(method, self.url + path, **kwargs)

    def queue_code(self, code: str, state: str) -> str:
        """Queue ``code`` on the kernel and wait (briefly) until its entry is in ``state``."""
        response = self.call("POST", "/api/queue", json={"kernel_id": self.kernel_id, "code": code})
        assert response.status_code == 202, response.text
        entry_id: str = response.json()["entries"][0]["id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a subprocess: polling its REST API is all we have
            if self.call("GET", f"/api/queue/{entry_id}").json()["state"] == state:
                break
            time.sleep(0.02)
        return entry_id

    def remember(self, response: requests.Response) -> None:
        """Keep the ids of entries a generated request created (bounded)."""
        if response.status_code == 202:
            with_entries = response.json().get("entries", [])
            self.entry_ids.extend(e["id"] for e in with_entries[:3])
            del self.entry_ids[:-50]

    def clear_queues(self) -> None:
        """Cancel whatever generated requests left queued or running."""
        for params in ({"kernel_id": self.kernel_id}, {"path": NOTEBOOK}):
            response = self.call("DELETE", "/api/queue", params=params)
            assert response.status_code in (200, 404), response.text

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def die_with_parent() -> None:
    """In the server's process (Linux): SIGTERM when the test process dies, so a killed test
    run leaves no server behind (the server shuts its kernels down on SIGTERM)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    root = workdir / "root"
    root.mkdir()
    write_notebook(root / NOTEBOOK)
    (root / "notes.txt").write_text("not a notebook\n")
    port = free_port()
    config = {
        "ServerApp": {
            "ip": "127.0.0.1",
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "allow_root": True,
            "root_dir": str(root),
            "jpserver_extensions": {
                "jupyter_canvas": True,
                "jupyter_server_fileid": True,
                "jupyter_server_ydoc": True,
            },
        },
        "IdentityProvider": {"token": TOKEN},
        "CanvasApp": {"max_code_bytes": MAX_CODE_BYTES, "max_body_bytes": 65536},
        "NotebookService": {"stream_cap": 1000},
        "SQLiteYStore": {"db_path": str(workdir / "ystore.db")},
        "BaseFileIdManager": {
            "root_dir": str(root),
            "db_path": str(workdir / "fileid.db"),
            "db_journal_mode": "OFF",
        },
    }
    config_dir = workdir / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
    }
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the server to answer (a subprocess: nothing to await but its port)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if requests.get(url + "/api/status", timeout=2, headers=auth()).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within 90 s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (it shuts its kernels down); kill its process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the session we started: server and kernels
    except ProcessLookupError:
        pass
    process.wait(10)


def auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    process, url, log = start_server(workdir)
    try:
        wait_until_serving(url, process, log)
        http = requests.Session()
        http.headers.update(auth())
        response = http.post(url + "/api/kernels", json={"name": "python3"}, timeout=60)
        assert response.status_code == 201, response.text
        server = LiveServer(url, response.json()["id"], process, log, http)
        ready = server.call(
            "GET",
            f"/api/kernels/{server.kernel_id}/status",
            params={"wait_for": "idle", "timeout": "60"},
            timeout=90,
        )
        assert ready.json()["execution_state"] == "idle", ready.text
        # A few finished entries, so that generated entry ids can name real ones.
        for code in ("1 + 1", "1 / 0"):
            server.remember(
                server.call(
                    "POST", "/api/queue", json={"kernel_id": server.kernel_id, "code": code}
                )
            )
        for entry_id in list(server.entry_ids):
            server.call("GET", f"/api/queue/{entry_id}", params={"wait": "30"}, timeout=60)
        yield server
        print("answers to generated requests:", json.dumps(dict(sorted(server.answers.items()))))
    finally:
        stop_server(process)


# -- steering generated requests ------------------------------------------------------------------


def pick(value: Any, choices: int) -> int:
    """A stable choice among ``choices`` derived from a generated value (replays alike)."""
    digest = hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).digest()
    return digest[0] % choices


def as_seconds(value: Any) -> float | None:
    """A generated query value as the server reads it (a number of seconds), if it is one."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_positive(case: Any) -> bool:
    """Whether schemathesis generated the case to be valid (explicit examples are)."""
    meta = getattr(case, "meta", None)
    return meta is None or bool(meta.generation.mode.is_positive)


def make_code_safe(body: dict[str, Any] | None) -> None:
    """Replace generated code with a safe snippet (oversized code is refused unrun: keep it)."""
    if body is None or not isinstance(body.get("code"), str):
        return
    code = body["code"]
    if len(code.encode("utf-8", "surrogatepass")) <= MAX_CODE_BYTES:
        body["code"] = SAFE_CODE[pick(code, len(SAFE_CODE))]


def make_valid_request(body: dict[str, Any], server: LiveServer) -> None:
    """Turn a schema-valid POST body into one the server accepts (it checks more than types)."""
    seed = json.dumps(body, sort_keys=True, default=str)
    kept = {"stop_on_error": body["stop_on_error"]} if "stop_on_error" in body else {}
    code = body.get("code") if isinstance(body.get("code"), str) else SAFE_CODE[pick(seed, 4)]
    variant = pick(seed + "variant", 4)
    body.clear()
    body.update(kept)
    if variant == 0:
        body.update(kernel_id=server.kernel_id, code=code)
    elif variant == 1:
        body.update(path=NOTEBOOK, cell_id=CODE_CELLS[pick(seed, 2)], code=code)
    elif variant == 2:
        body.update(path=NOTEBOOK, cell_ids=list(CODE_CELLS[pick(seed, 2) :]))
    else:
        body.update(path=NOTEBOOK, select=SELECTS[pick(seed, len(SELECTS))])


def name_real_things(case: Any, body: dict[str, Any] | None, server: LiveServer) -> None:
    """Sometimes replace generated ids and paths with ones the server knows."""
    for where in (body, case.query, case.path_parameters):
        if not isinstance(where, dict):
            continue
        kernel_id = where.get("kernel_id")
        if isinstance(kernel_id, str) and kernel_id and pick(kernel_id, 3):
            where["kernel_id"] = server.kernel_id
        path = where.get("path")
        if isinstance(path, str) and path and pick(path, 3) == 0:
            where["path"] = NOTEBOOK
    entry_id = (case.path_parameters or {}).get("entry_id")
    if isinstance(entry_id, str) and entry_id and server.entry_ids and pick(entry_id, 2):
        case.path_parameters["entry_id"] = server.entry_ids[
            pick(entry_id + "#", len(server.entry_ids))
        ]
    index = (case.path_parameters or {}).get("index")
    if isinstance(index, int) and not isinstance(index, bool) and index > 0 and pick(index, 2):
        case.path_parameters["index"] = 0


def name_live_entry(case: Any, operation: str, server: LiveServer) -> None:
    """For some cancel and input requests, target an entry that is running or awaits input."""
    entry_id = (case.path_parameters or {}).get("entry_id")
    if not isinstance(entry_id, str) or pick(entry_id + "live", 3):
        return
    if operation == "answerInput":
        case.path_parameters["entry_id"] = server.queue_code("input('name? ')", "awaiting_input")
    else:
        running = server.queue_code("import time; time.sleep(10)", "running")
        queued = server.queue_code("1 + 1", "queued")
        case.path_parameters["entry_id"] = (running, queued)[pick(entry_id, 2)]


def cap_waits(case: Any) -> None:
    """Wait at most a second where the request may hold the answer."""
    if not isinstance(case.query, dict):
        return
    for name in ("wait", "timeout"):
        seconds = as_seconds(case.query.get(name))
        if seconds is not None and 1 < seconds <= 60:
            case.query[name] = 1
    if "wait_for" in case.query and "timeout" not in case.query:
        case.query["timeout"] = 1


def steer(case: Any, server: LiveServer, *, linked: bool = False) -> None:
    """Make a generated request harmless and quick, and often name real things.

    ``linked``: the case follows an OpenAPI link, so its ids come from an earlier answer
    and are left alone.
    """
    operation = case.operation.definition.raw.get("operationId")
    body = case.body if isinstance(case.body, dict) else None
    if operation == "queueCode" and body is not None and is_positive(case):
        if pick(json.dumps(body, sort_keys=True, default=str), 2) == 0:
            make_valid_request(body, server)
    make_code_safe(body)
    if not linked:
        name_real_things(case, body, server)
        if operation in ("answerInput", "cancelEntry"):
            name_live_entry(case, operation, server)
    cap_waits(case)


# -- the property ---------------------------------------------------------------------------------


@pytest.mark.timeout(max(300, MAX_EXAMPLES * 10))
@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
    database=None,
)
def test_answers_match_the_document(case: Any, live_server: LiveServer) -> None:
    # After a request went unanswered, fail every example at once rather than wait again.
    assert live_server.stuck is None, live_server.stuck
    try:
        steer(case, live_server)
        try:
            response = case.call(base_url=live_server.url, headers=auth(), timeout=REQUEST_TIMEOUT)
            live_server.remember(response)
            live_server.answers[f"{case.operation.label} {response.status_code}"] += 1
            case.validate_response(response, checks=CHECKS)
        finally:
            live_server.clear_queues()
    except requests.Timeout as err:
        live_server.stuck = (
            f"the server did not answer within {REQUEST_TIMEOUT:g} s ({err}); "
            f"its log ends with:\n{live_server.log_tail()}"
        )
        raise AssertionError(live_server.stuck) from None


# -- sequences: answers feed the next requests (the document's links) ----------------------------


@pytest.mark.timeout(max(300, MAX_EXAMPLES * 10))
def test_linked_requests_match_the_document(live_server: LiveServer) -> None:
    """Queue code, then read, cancel or answer its entry and look at its kernel, as linked."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            assert live_server.stuck is None, live_server.stuck
            steer(case, live_server, linked=True)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_server.url, "headers": auth(), "timeout": REQUEST_TIMEOUT}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            live_server.answers[f"linked {case.operation.label} {response.status_code}"] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

        def teardown(self) -> None:
            live_server.clear_queues()

    Workflow.run(
        settings=settings(
            max_examples=max(5, MAX_EXAMPLES // 2),
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            print_blob=True,
        )
    )
