"""stdin and time limits: ``allow_stdin``, the per-cell ``timeout``, ``input_timeout``, and the
echo of an answered ``input()`` as JupyterLab writes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_canvas_support import code, wait_until, write_notebook
from test_notebook_run import (  # noqa: F401  (fixtures used by name)
    NOTEBOOK,
    canvas_extensions,
    jp_server_config,
    mode,
    read_disk,
)

from jupyter_canvas.queue.routing import PASSWORD_MASK

INPUT_TIMEOUT = 1.5


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    return {"input_timeout": INPUT_TIMEOUT}


async def test_allow_stdin_false_raises_at_once(api: Any, queue: Any, kernel_id: str) -> None:
    done = await queue.run(kernel_id, "name = input('name: ')", allow_stdin=False)
    assert done["state"] == "error"
    assert done["error"]["ename"] == "StdinNotImplementedError"
    assert done["allow_stdin"] is False
    # The same kernel still asks when allowed (the default).
    status, data = await queue.post(kernel_id=kernel_id, code="answer = input('name: ')")
    entry_id = data["entries"][0]["id"]
    await wait_until_state(queue, entry_id, "awaiting_input")
    status, _ = await api("POST", "api", "queue", entry_id, "input", body={"value": "x"})
    assert status == 200
    assert (await queue.wait(entry_id))["state"] == "done"


async def wait_until_state(queue: Any, entry_id: str, state: str) -> dict[str, Any]:
    for _ in range(600):
        entry = await queue.get(entry_id)
        if entry["state"] == state:
            return entry  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"entry never reached {state}")


async def test_timeout_interrupts_and_stops_the_queue(queue: Any, kernel_id: str) -> None:
    status, data = await queue.post(
        kernel_id=kernel_id, code="import time\nwhile True: time.sleep(0.1)", timeout=1
    )
    assert status == 202, data
    first = data["entries"][0]
    assert first["timeout"] == 1
    status, behind = await queue.post(kernel_id=kernel_id, code="print('behind')")
    done = await queue.wait(first["id"])
    assert done["state"] == "error"
    assert done["reason"] == "timed out after 1 s"
    assert done["error"]["ename"] == "CellTimeoutError"
    assert any(o.get("ename") == "KeyboardInterrupt" for o in done["outputs"])
    cancelled = await queue.wait(behind["entries"][0]["id"])
    assert cancelled["state"] == "cancelled"
    assert "CellTimeoutError" in cancelled["reason"]
    # The kernel is free again; a cell under its limit is not touched.
    assert (await queue.run(kernel_id, "1 + 1", timeout=30))["state"] == "done"


async def test_timeout_without_stop_on_error_runs_the_rest(queue: Any, kernel_id: str) -> None:
    _status, data = await queue.post(
        kernel_id=kernel_id, code="import time; time.sleep(60)", timeout=0.5, stop_on_error=False
    )
    _status, behind = await queue.post(kernel_id=kernel_id, code="'after'")
    assert (await queue.wait(data["entries"][0]["id"]))["reason"] == "timed out after 0.5 s"
    assert (await queue.wait(behind["entries"][0]["id"]))["state"] == "done"


async def test_input_timeout_ends_an_unanswered_input(queue: Any, kernel_id: str) -> None:
    _status, data = await queue.post(kernel_id=kernel_id, code="input('anyone? ')")
    _status, behind = await queue.post(kernel_id=kernel_id, code="'after'")
    done = await queue.wait(data["entries"][0]["id"])
    assert done["state"] == "error"
    assert done["reason"] == f"timed out after {INPUT_TIMEOUT:g} s waiting for input"
    assert (await queue.wait(behind["entries"][0]["id"]))["state"] == "cancelled"


async def test_answered_input_is_not_timed_out(api: Any, queue: Any, kernel_id: str) -> None:
    _status, data = await queue.post(
        kernel_id=kernel_id, code=f"a = input('a')\nimport time; time.sleep({INPUT_TIMEOUT + 1})"
    )
    entry_id = data["entries"][0]["id"]
    await wait_until_state(queue, entry_id, "awaiting_input")
    await api("POST", "api", "queue", entry_id, "input", body={"value": "x"})
    assert (await queue.wait(entry_id))["state"] == "done"


@pytest.mark.parametrize(
    "extra",
    [
        {"allow_stdin": "no"},
        {"allow_stdin": None},
        {"timeout": "5"},
        {"timeout": True},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": 1e12},
    ],
)
async def test_bad_limits_are_400(queue: Any, kernel_id: str, extra: dict[str, Any]) -> None:
    status, data = await queue.post(kernel_id=kernel_id, code="1", **extra)
    assert status == 400
    assert next(iter(extra)) in data["message"]


async def test_nan_timeout_is_400(api: Any, kernel_id: str) -> None:
    body = f'{{"kernel_id": "{kernel_id}", "code": "1", "timeout": NaN}}'
    status, _data = await api("POST", "api", "queue", body=body)
    assert status == 400


# -- the echo ------------------------------------------------------------------------------------


async def test_answered_input_is_echoed_into_the_cell(
    api: Any,
    queue: Any,
    jp_root_dir: Path,
    jp_ws_fetch: Any,
    mode: str,  # noqa: F811
) -> None:
    events = await jp_ws_fetch("api", "queue", "events", params={"path": NOTEBOOK})
    write_notebook(
        jp_root_dir,
        NOTEBOOK,
        [
            code("plain", "name = input('name:')\nprint('hi', name)"),
            code("secret", "import getpass\npw = getpass.getpass('pw:')\nprint(len(pw))"),
        ],
    )
    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"})
    assert status == 202, data
    answers = {"plain": "alice", "secret": "hunter"}
    for entry in data["entries"]:
        await wait_until_state(queue, entry["id"], "awaiting_input")
        status, _ = await api(
            "POST", "api", "queue", entry["id"], "input", body={"value": answers[entry["cell_id"]]}
        )
        assert status == 200
        assert (await queue.wait(entry["id"]))["state"] == "done"
    expected = {
        "plain": [("stdin", "name: alice\n"), ("stdout", "hi alice\n")],
        "secret": [("stdin", f"pw: {PASSWORD_MASK}\n"), ("stdout", "6\n")],
    }
    for entry in data["entries"]:
        done = await queue.get(entry["id"])
        assert [(o["name"], o["text"]) for o in done["outputs"]] == expected[entry["cell_id"]]
    # The events websocket carried the echo too, as an output of each entry.
    echoed: dict[str, str] = {}
    while len(echoed) < 2:
        event = json.loads(await asyncio.wait_for(events.read_message(), 30))
        output = event.get("output") or {}
        if event["type"] == "output" and output.get("name") == "stdin":
            echoed[event["cell_id"]] = output["text"]
    assert echoed == {"plain": "name: alice\n", "secret": f"pw: {PASSWORD_MASK}\n"}
    events.close()

    def on_disk(cell_id: str) -> list[tuple[str, str]] | None:
        notebook = read_disk(jp_root_dir)
        if notebook is None:
            return None
        (cell,) = [c for c in notebook["cells"] if c["id"] == cell_id]
        return [(o["name"], "".join(o["text"])) for o in cell["outputs"]]

    for cell_id, outputs in expected.items():
        await wait_until(lambda c=cell_id, o=outputs: on_disk(c) == o, 20, f"{cell_id} on disk")
    assert "hunter" not in (jp_root_dir / NOTEBOOK).read_text()
