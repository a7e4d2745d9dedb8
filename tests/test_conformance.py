"""Conformance: a notebook run by the server is the notebook nbclient makes of it.

Each of nbclient's own test notebooks (tests/notebooks/, BSD-3, see its README) is run as
published, without cell ids for most, through ``POST /api/queue {"path", "select": "all"}``
with no browser, by a real ``jupyter server`` in a subprocess: once with
jupyter_server_ydoc's live document open (a websocket holds the room) and once without
jupyter_server_ydoc. The file the server leaves is compared with what nbclient makes of the
same file in the same environment, after the normalisation nbclient's own tests apply
(outputs without their metadata, memory addresses, widget model ids, SVG and base64
spelling, traceback input markers and colours; execution counts compared as they are).

nbclient runs with ``coalesce_streams=True``: consecutive stream messages then make one
output with ``\\r`` and ``\\b`` applied, which is what JupyterLab and the server write.

The variant with ``stop_on_error`` (the default of the API) is compared with nbclient's
``allow_errors=False``: both leave the cells after the first error as they were.

Differences inherent to nbclient, said where they apply:

- ``Check History in Memory.ipynb`` asserts that the kernel keeps its history in memory,
  which only nbclient's ``--HistoryManager.hist_file=:memory:`` kernel option does; the
  server's kernels are the user's, with their history file. nbclient runs it with that
  option left out (``ipython_hist_file=""``), so both kernels are alike.
- ``Autokill.ipynb`` kills its kernel: nbclient raises ``DeadKernelError`` and leaves the
  cell without output; the server writes the same fact into the cell, as an error output
  ``DeadKernelError`` (docs/notebook-fidelity.md). The kernel signals itself while it
  announces the cell, so whether its ``execute_input`` (the count) gets out first is the
  kernel's own race, in nbclient's run as in the server's: the count is 1 or null in each.

One difference is in the notebook itself: ``Sleep1s.ipynb`` prints the kernel's wall clock,
different in any two runs. Its times are compared with the cell's timing instead (the
server's ``metadata.execution``, from the kernel's messages) and a second apart.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from nbclient_support import run_nbclient
from server_process import TOKEN, free_port

pytestmark = pytest.mark.timeout(900)

SOURCE = Path(__file__).parent / "notebooks"
#: The environment nbclient's tests give kernels (traceback width).
KERNEL_ENV = {"COLUMNS": "80", "LINES": "24"}
#: Notebooks nbclient's parallel test runs together, each waiting for the other's file.
PARALLEL = ("Parallel Execute A.ipynb", "Parallel Execute B.ipynb")
#: Per notebook: what nbclient's own tests pass, and the same asked of the server.
OPTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Interrupt.ipynb": (
        {"timeout": 3, "interrupt_on_timeout": True},
        {"timeout": 3},
    ),
    "Disable Stdin.ipynb": ({"allow_stdin": False}, {"allow_stdin": False}),
    "Check History in Memory.ipynb": ({"ipython_hist_file": ""}, {}),
}
NOTEBOOKS = sorted(path.name for path in SOURCE.glob("*.ipynb"))
#: The two runs compared: (server's stop_on_error, nbclient's allow_errors).
VARIANTS = {"allow_errors": (False, True), "stop_on_error": (True, False)}
#: The notebooks in which a cell fails: only for them can the two variants differ, so only
#: they run both (the test checks that no other notebook has an error).
FAILING = (
    "Autokill.ipynb",
    "Check History in Memory.ipynb",
    "Disable Stdin.ipynb",
    "Error.ipynb",
    "Interrupt.ipynb",
    "Output.ipynb",
    "Skip Exceptions with Cell Tags.ipynb",
    "Skip Exceptions.ipynb",
)
RUNS = [
    (variant, name)
    for variant in VARIANTS
    for name in NOTEBOOKS
    if variant == "allow_errors" or name in FAILING
]


# -- normalisation (what nbclient's test_client.py compares) -------------------------------

_ADDRESS = re.compile(r"0x[0-9a-f]{7,9}")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INPUT_MARK = re.compile(
    r"((<ipython-input-\d+-[0-9a-f]+>|<IPY-INPUT>) in (<module>|<cell line: \d>\(\)))"
    r"|(((Cell|Input) In\s?\[\d+\]|<IPY-INPUT>), (in )?(line \d|<module>|<cell line: \d>\(\)))"
)


def _same_base64(value: str) -> str:
    try:
        return base64.b64encode(base64.b64decode(value.encode("ascii"))).decode("ascii")
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return value


def normalize_output(output: dict[str, Any]) -> dict[str, Any]:
    """One output as nbclient's tests compare it."""
    out = json.loads(json.dumps(output))
    out.pop("metadata", None)
    if isinstance(out.get("text"), str):
        out["text"] = _ADDRESS.sub("<HEXADDR>", out["text"])
    data = out.get("data", {})
    if isinstance(data.get("text/plain"), str):
        data["text/plain"] = _ADDRESS.sub("<HEXADDR>", data["text/plain"])
    view = data.get("application/vnd.jupyter.widget-view+json")
    if isinstance(view, dict):
        view["model_id"] = "<MODEL_ID>"
    if isinstance(data.get("image/svg+xml"), str):
        data["image/svg+xml"] = ElementTree.canonicalize(data["image/svg+xml"], strip_text=True)
    for key, value in data.items():
        if isinstance(value, str) and key != "image/svg+xml":
            data[key] = _same_base64(value)
    if "traceback" in out:
        out["traceback"] = [
            _INPUT_MARK.sub("<IPY-INPUT>", _ANSI.sub("", line)) for line in out["traceback"]
        ]
    return out


def comparable(notebook: Any) -> list[dict[str, Any]]:
    """Per cell: its type, normalised outputs and execution count."""
    return [
        {
            "cell_type": cell["cell_type"],
            "outputs": [normalize_output(o) for o in cell.get("outputs", [])],
            "execution_count": cell.get("execution_count"),
        }
        for cell in notebook["cells"]
    ]


# -- nbclient ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment both nbclient's kernels and the server's have."""
    parallel = tmp_path_factory.mktemp("parallel")
    values = {**KERNEL_ENV, "NBEXECUTE_TEST_PARALLEL_TMPDIR": str(parallel)}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield values
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def copy_notebooks(root: Path) -> None:
    for variant, name in RUNS:
        (root / variant).mkdir(parents=True, exist_ok=True)
        shutil.copy(SOURCE / name, root / variant / name)
    for variant in VARIANTS:  # the image Inline Image.ipynb shows
        shutil.copy(SOURCE / "python.png", root / variant / "python.png")


@pytest.fixture(scope="module")
def nbclient_results(
    environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], tuple[Any, str]]:
    """nbclient's run of every notebook and variant (two at a time; the pair that waits for
    each other together, once the rest is done)."""
    root = tmp_path_factory.mktemp("nbclient")
    copy_notebooks(root)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            job: pool.submit(
                run_nbclient,
                root / job[0] / job[1],
                VARIANTS[job[0]][1],
                OPTIONS.get(job[1], ({}, {}))[0],
            )
            for job in RUNS
            if job[1] not in PARALLEL
        }
        results = {job: future.result() for job, future in futures.items()}
    os.environ["NBEXECUTE_TEST_PARALLEL_TMPDIR"] = str(tmp_path_factory.mktemp("parallel"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        pair = {
            ("allow_errors", name): pool.submit(
                run_nbclient, root / "allow_errors" / name, True, {}
            )
            for name in PARALLEL
        }
        results.update({job: future.result() for job, future in pair.items()})
    return results


# -- the server ----------------------------------------------------------------------------


class Server:
    """``jupyter server`` with jupyter_canvas (and jupyter_server_ydoc or not)."""

    def __init__(self, base: Path, ydoc: bool, env: dict[str, str]) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.ydoc = ydoc
        self.port = free_port()
        extensions = {
            "jupyter_canvas": True,
            "jupyter_server_fileid": ydoc,
            "jupyter_server_ydoc": ydoc,
        }
        args = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            f"--ServerApp.jpserver_extensions={extensions!r}",
            "--NotebookService.file_flush_interval=0.2",
            "--YDocExtension.document_save_delay=0.2",
        ]
        process_env = dict(os.environ)
        process_env.update(env)
        process_env.update(
            JUPYTER_CONFIG_DIR=str(base / "config"),
            JUPYTER_DATA_DIR=str(base / "data"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTER_PLATFORM_DIRS="0",
        )
        self.log = (base / "server.log").open("ab")
        self.process = subprocess.Popen(args, env=process_env, stdout=self.log, stderr=self.log)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {TOKEN}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.session.get(self.url("api/status"), timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError((base / "server.log").read_text()[-3000:])
            time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def open_room(self, path: str) -> Any:
        """Open the notebook's live document, as a JupyterLab tab does; held till closed."""
        from websockets.sync.client import connect

        answer = self.session.put(
            self.url(f"api/collaboration/session/{path}"),
            json={"format": "json", "type": "notebook"},
            timeout=30,
        )
        assert answer.status_code in (200, 201), answer.text
        session = answer.json()
        room = f"json:notebook:{session['fileId']}"
        return connect(
            f"ws://127.0.0.1:{self.port}/api/collaboration/room/{room}"
            f"?sessionId={session['sessionId']}&token={TOKEN}"
        )

    def run(self, path: str, stop_on_error: bool, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue every cell of the notebook; return the entries once all ended."""
        room = self.open_room(path) if self.ydoc else None
        try:
            if room is not None:
                # The room's first message (its sync step) comes once it loaded the file.
                room.recv(timeout=60)
            answer = self.session.post(
                self.url("api/queue"),
                json={"path": path, "select": "all", "stop_on_error": stop_on_error, **body},
                timeout=60,
            )
            assert answer.status_code == 202, answer.text
            ended = []
            for entry in answer.json()["entries"]:
                while True:
                    got = self.session.get(
                        self.url(f"api/queue/{entry['id']}"), params={"wait": "60"}, timeout=90
                    ).json()
                    if got["state"] not in ("queued", "running", "awaiting_input"):
                        break
                ended.append(got)
            self.settled(path, ended)
        finally:
            if room is not None:
                room.close()
        return ended

    def settled(self, path: str, entries: list[dict[str, Any]]) -> None:
        """Wait until the file holds every ended entry's execution count (the last outputs
        written or autosaved) and has not changed for a moment."""
        file = self.root / path
        expected = {
            entry["cell_id"]: entry["execution_count"]
            for entry in entries
            if entry["state"] in ("done", "error")
        }
        last, since = b"", time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                now = file.read_bytes()
                cells = json.loads(now)["cells"]
            except ValueError:
                continue
            if now != last:
                last, since = now, time.monotonic()
            counts = {cell.get("id"): cell.get("execution_count") for cell in cells}
            if all(counts.get(k) == v for k, v in expected.items()):
                if time.monotonic() - since >= 0.5:
                    return
        raise AssertionError(f"{path}: the file never got the entries' results ({self.base})")


def run_on_server(
    base: Path, ydoc: bool, env: dict[str, str]
) -> dict[tuple[str, str], tuple[Any, list[dict[str, Any]]]]:
    server = Server(base, ydoc, env)
    results: dict[tuple[str, str], tuple[Any, list[dict[str, Any]]]] = {}
    try:
        copy_notebooks(server.root)

        def one(variant: str, name: str) -> None:
            body = OPTIONS.get(name, ({}, {}))[1]
            try:
                entries = server.run(f"{variant}/{name}", VARIANTS[variant][0], body)
            except AssertionError as err:
                entries = [{"request_failed": str(err)}]
            notebook = nbformat.read(server.root / variant / name, as_version=4)
            results[(variant, name)] = (notebook, entries)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            alone = [run for run in RUNS if run[1] not in PARALLEL]
            list(pool.map(one, [run[0] for run in alone], [run[1] for run in alone]))
            pair = [threading.Thread(target=one, args=("allow_errors", n)) for n in PARALLEL]
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join()
    finally:
        server.stop()
    results[("log", "")] = ((base / "server.log").read_text(errors="replace"), [])
    return results


@pytest.fixture(scope="module", params=["ydoc-live", "no-ydoc"])
def server_results(
    request: Any, environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[tuple[str, str], tuple[Any, list[dict[str, Any]]]]]:
    mode = str(request.param)
    base = tmp_path_factory.mktemp(mode)
    # A directory of its own for the pair that waits for each other's file.
    parallel = {"NBEXECUTE_TEST_PARALLEL_TMPDIR": str(tmp_path_factory.mktemp("parallel"))}
    return mode, run_on_server(base, mode == "ydoc-live", {**environment, **parallel})


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_sleep_times(notebook: Any) -> None:
    """Sleep1s's t0 and t1 are a second apart, both inside the sleeping cell's run as the
    kernel timed it (metadata.execution, from its message dates)."""
    t0, t1 = (_when(cell["outputs"][0]["text"]) for cell in notebook["cells"][2:4])
    assert (t1 - t0).total_seconds() >= 1
    timing = notebook["cells"][1]["metadata"]["execution"]
    assert _when(timing["iopub.execute_input"]) <= t0 < t1 <= _when(timing["iopub.status.idle"])


# -- the comparison ------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "name"), RUNS)
def test_notebook_matches_nbclient(
    name: str,
    variant: str,
    nbclient_results: dict[tuple[str, str], tuple[Any, str]],
    server_results: tuple[str, dict[tuple[str, str], tuple[Any, list[dict[str, Any]]]]],
) -> None:
    mode, results = server_results
    expected_nb, raised = nbclient_results[(variant, name)]
    actual_nb, entries = results[(variant, name)]
    assert "request_failed" not in entries[0], entries[0]
    if name not in FAILING:  # it would run the same under stop_on_error
        assert not raised
        assert not any(
            o.output_type == "error" for c in expected_nb.cells for o in c.get("outputs", [])
        )
    expected = comparable(expected_nb)
    actual = comparable(actual_nb)
    if name == "Autokill.ipynb":
        # nbclient raises DeadKernelError; the server writes it into the cell.
        assert raised == "DeadKernelError"
        died = actual[0]["outputs"].pop()
        assert died["output_type"] == "error" and died["ename"] == "DeadKernelError", died
        assert entries[0]["state"] == "error" and died["evalue"] == entries[0]["error"]["evalue"]
        # The kernel kills itself while it announces the cell: whether its execute_input
        # (the count) leaves before it dies is the kernel's race, in either run.
        assert actual[0]["execution_count"] == entries[0]["execution_count"] in (None, 1)
        assert expected[0]["execution_count"] in (None, 1)
        actual[0]["execution_count"] = expected[0]["execution_count"]
    if name == "Sleep1s.ipynb":
        # It prints the kernel's wall clock, different in any two runs: compare the rest,
        # and check the times against the timing the server took from the kernel's messages.
        check_sleep_times(actual_nb)
        for cells in (expected, actual):
            for cell in cells[2:]:
                for output in cell["outputs"]:
                    output["text"] = _TIME.sub("<TIME>", output["text"])
    assert actual == expected
    published = nbformat.read(SOURCE / name, as_version=4)
    if mode == "ydoc-live" and not all(cell.get("id") for cell in published.cells):
        # The ids went into the open live document (its autosave wrote the file).
        log = results[("log", "")][0]
        assert f"gave the cells of {variant}/{name} stable ids (live)" in log
    # Every cell has a stable id, the one its entry ran as.
    ids = [cell.get("id") for cell in actual_nb["cells"]]
    assert actual_nb["nbformat_minor"] >= 5 and all(ids) and len(set(ids)) == len(ids)
    assert {entry["cell_id"] for entry in entries} <= set(ids)
