"""What the server writes into a notebook it runs: cell ids, skipped and empty cells, tags,
a dead kernel's error, the kernel's metadata and timing (docs/notebook-fidelity.md).

Every test runs with jupyter_server_ydoc enabled and disabled, except those that need a
peer in the live document.
"""

# Fixtures are imported from test_notebook_run, so their names are "redefined" here.
# ruff: noqa: F811

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_canvas_support import (
    canvas_server_config,
    code,
    wait_until,
    write_notebook,
)
from test_notebook_run import (  # noqa: F401  (fixtures used by name)
    NOTEBOOK,
    canvas_extensions,
    mode,
    notebook_peer,
    read_disk,
    run_cells,
    ws_connect,
)
from traitlets.config import Config

TIMING_KEYS = [
    "iopub.status.busy",
    "iopub.execute_input",
    "shell.execute_reply.started",
    "shell.execute_reply",
    "iopub.status.idle",
]


@pytest.fixture
def service_config() -> dict[str, Any]:
    return {"file_flush_interval": 0.2}


@pytest.fixture
def jp_server_config(
    jp_server_config: Any,
    jp_root_dir: Path,
    mode: str,
    service_config: dict[str, Any],
) -> Any:
    config = canvas_server_config(jp_server_config, jp_root_dir, {})
    config["NotebookService"] = Config(service_config)
    return config


def write_raw(root: Path, cells: list[dict[str, Any]], minor: int = 4, **metadata: Any) -> None:
    """Write a notebook as published: nbformat 4.<minor>, cells as given (maybe no ids)."""
    notebook = {"nbformat": 4, "nbformat_minor": minor, "metadata": metadata, "cells": cells}
    (root / NOTEBOOK).write_text(json.dumps(notebook), encoding="utf-8")


def raw_code(source: str, **extra: Any) -> dict[str, Any]:
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}
    cell["execution_count"] = None
    cell.update(extra)
    return cell


def raw_md(source: str, **extra: Any) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source, **extra}


async def saved(root: Path, predicate: Any, what: str) -> dict[str, Any]:
    """The notebook on disk once ``predicate(notebook)`` holds."""

    def ok() -> bool:
        notebook = read_disk(root)
        return notebook is not None and bool(predicate(notebook))

    try:
        await wait_until(ok, 10, what)
    except AssertionError:
        raise AssertionError(f"{what}: {read_disk(root)}") from None
    notebook = read_disk(root)
    assert notebook is not None
    return notebook


def text(output: dict[str, Any]) -> str:
    if "text" in output:
        return "".join(output["text"])
    return "".join(output["data"]["text/plain"])


# -- cell identity -----------------------------------------------------------------------------


async def test_notebook_without_ids_runs_each_cell_and_keeps_its_ids(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_raw(
        jp_root_dir,
        [
            raw_md("# Title"),  # a markdown first cell: it used to run in place of every cell
            raw_code("a = 1"),
            raw_code("a += 10\na"),
            raw_code("print('a is', a)"),
        ],
    )
    entries = await run_cells(api, select="all")
    assert [e["state"] for e in entries] == ["done"] * 3, entries
    assert [e["code"] for e in entries] == ["a = 1", "a += 10\na", "print('a is', a)"]
    assert text(entries[1]["outputs"][0]) == "11"
    assert text(entries[2]["outputs"][0]) == "a is 11\n"
    ids = [e["cell_id"] for e in entries]
    assert all(ids) and len(set(ids)) == 3

    disk = await saved(jp_root_dir, lambda nb: nb["cells"][3].get("outputs"), "outputs in the file")
    assert disk["nbformat_minor"] == 5
    assert [c["id"] for c in disk["cells"][1:]] == ids
    assert disk["cells"][0]["id"] not in ids
    assert "".join(disk["cells"][3]["outputs"][0]["text"]) == "a is 11\n"
    nbformat.validate(nbformat.reads(json.dumps(disk), as_version=4))

    # A later request sees the same ids.
    again = await run_cells(api, cell_ids=[ids[2]])
    assert again[0]["state"] == "done" and text(again[0]["outputs"][0]) == "a is 11\n"


async def test_duplicated_ids_are_renamed_and_both_cells_run(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_raw(
        jp_root_dir,
        [raw_code("'first'", id="same"), raw_code("'second'", id="same")],
        minor=5,
    )
    entries = await run_cells(api, select="all")
    assert [text(e["outputs"][0]) for e in entries] == ["'first'", "'second'"], entries
    assert entries[0]["cell_id"] == "same" and entries[1]["cell_id"] != "same"
    disk = await saved(jp_root_dir, lambda nb: nb["cells"][1].get("outputs"), "outputs")
    assert [c["id"] for c in disk["cells"]] == [e["cell_id"] for e in entries]
    assert text(disk["cells"][1]["outputs"][0]) == "'second'"


async def blocked(api: Any, kernel_id: str, seconds: float = 1.5) -> None:
    """Queue a sleep on the kernel, so what is queued next waits for it."""
    status, _ = await api(
        "POST",
        "api",
        "queue",
        body={"kernel_id": kernel_id, "code": f"import time; time.sleep({seconds})"},
    )
    assert status == 202


async def save_through_api(api: Any, notebook: dict[str, Any]) -> None:
    status, _ = await api(
        "PUT",
        "api",
        "contents",
        NOTEBOOK,
        body={"type": "notebook", "format": "json", "content": notebook},
    )
    assert status == 200


async def test_cell_gone_or_no_longer_code_is_cancelled(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_raw(jp_root_dir, [raw_code("'one'"), raw_code("'two'"), raw_code("'three'")])
    first = await run_cells(api, select="all")
    kernel_id = first[0]["kernel_id"]
    await blocked(api, kernel_id)
    status, data = await api("POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"})
    assert status == 202
    queued = data["entries"]
    disk = await saved(jp_root_dir, lambda nb: nb["cells"][2].get("outputs"), "first run")
    # While they wait: the second cell becomes markdown, the third is deleted.
    disk["cells"][1] = {
        "cell_type": "markdown",
        "id": disk["cells"][1]["id"],
        "metadata": {},
        "source": "'two'",
    }
    del disk["cells"][2]
    await save_through_api(api, disk)
    ended = []
    for entry in queued:
        _, done = await api("GET", "api", "queue", entry["id"], params={"wait": "30"})
        ended.append(done)
    assert ended[0]["state"] == "done"
    assert ended[1]["state"] == "cancelled", ended[1]
    assert (
        ended[1]["reason"]
        == f"not run: cell {queued[1]['cell_id']!r} is now a markdown cell, not code"
    )
    assert ended[2]["state"] == "cancelled", ended[2]
    assert (
        ended[2]["reason"] == f"not run: cell {queued[2]['cell_id']!r} is no longer in {NOTEBOOK!r}"
    )
    assert ended[1]["outputs"] == [] and ended[2]["outputs"] == []


# -- cells as nbclient and JupyterLab treat them ----------------------------------------------


async def test_empty_cell_is_not_sent_and_is_cleared(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    stale = {"output_type": "stream", "name": "stdout", "text": "from an old run\n"}
    write_raw(
        jp_root_dir,
        [
            raw_code("'one'"),
            raw_code("  \n\t\n", execution_count=7, outputs=[stale]),
            raw_code("'two'"),
        ],
    )
    entries = await run_cells(api, select="all")
    assert [e["state"] for e in entries] == ["done"] * 3, entries
    assert entries[1]["execution_count"] is None and entries[1]["outputs"] == []
    # Nothing reached the kernel: the next cell has the next count.
    assert [entries[0]["execution_count"], entries[2]["execution_count"]] == [1, 2]
    disk = await saved(jp_root_dir, lambda nb: nb["cells"][2].get("outputs"), "outputs")
    assert disk["cells"][1]["outputs"] == [] and disk["cells"][1]["execution_count"] is None


async def test_skip_execution_tag(jp_serverapp: Any, api: Any, jp_root_dir: Path) -> None:
    kept = {"output_type": "stream", "name": "stdout", "text": "published\n"}
    skipped = raw_code(
        "print('should not run')",
        metadata={"tags": ["skip-execution"]},
        execution_count=3,
        outputs=[kept],
    )
    write_raw(jp_root_dir, [skipped, raw_code("'ok'")])
    entries = await run_cells(api, select="all")
    assert entries[0]["state"] == "cancelled"
    assert entries[0]["reason"] == "skipped: tagged skip-execution"
    assert entries[0]["outputs"] == [] and entries[0]["execution_count"] is None
    assert entries[1]["state"] == "done" and entries[1]["execution_count"] == 1
    disk = await saved(jp_root_dir, lambda nb: nb["cells"][1].get("outputs"), "outputs")
    (output,) = disk["cells"][0]["outputs"]
    assert text(output) == "published\n" and disk["cells"][0]["execution_count"] == 3


async def test_raises_exception_tag_does_not_stop_the_queue(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    tagged = raw_code("raise ValueError('expected')", metadata={"tags": ["raises-exception"]})
    write_raw(jp_root_dir, [tagged, raw_code("1 / 0"), raw_code("'never'")])
    entries = await run_cells(api, select="all")
    assert entries[0]["state"] == "error" and entries[0]["error"]["ename"] == "ValueError"
    assert entries[1]["state"] == "error" and entries[1]["error"]["ename"] == "ZeroDivisionError"
    assert entries[2]["state"] == "cancelled"  # an untagged error still stops the queue
    assert entries[2]["reason"].startswith("an earlier cell failed: ZeroDivisionError")


# -- a kernel that dies ------------------------------------------------------------------------


async def test_dead_kernel_leaves_its_error_in_the_cell(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_raw(
        jp_root_dir,
        [
            raw_code(
                "import os, time\nprint('alive', flush=True)\ntime.sleep(0.5)\n"
                "os.kill(os.getpid(), 9)"
            )
        ],
    )
    (entry,) = await run_cells(api, select="all")
    assert entry["state"] == "error" and entry["error"]["ename"] == "KernelDied", entry
    assert entry["outputs"][-1] == {
        "output_type": "error",
        "ename": "DeadKernelError",
        "evalue": entry["error"]["evalue"],
        "traceback": [],
    }
    disk = await saved(
        jp_root_dir, lambda nb: len(nb["cells"][0].get("outputs", [])) == 2, "the error saved"
    )
    assert text(disk["cells"][0]["outputs"][0]) == "alive\n"
    died = disk["cells"][0]["outputs"][1]
    assert died["ename"] == "DeadKernelError" and died["evalue"] == entry["error"]["evalue"]


# -- metadata and timing -----------------------------------------------------------------------


async def test_language_info_and_kernelspec_refreshed(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_raw(
        jp_root_dir,
        [raw_code("1")],
        minor=5,
        kernelspec={"name": "python3", "display_name": "Stale name", "language": "stale"},
        language_info={"name": "stale"},
    )
    await run_cells(api, select="all")
    disk = await saved(
        jp_root_dir, lambda nb: nb["metadata"]["language_info"]["name"] == "python", "metadata"
    )
    version = ".".join(map(str, sys.version_info[:3]))
    assert disk["metadata"]["language_info"]["version"] == version
    assert disk["metadata"]["language_info"]["mimetype"] == "text/x-python"
    spec = jp_serverapp.kernel_spec_manager.get_kernel_spec("python3")
    assert disk["metadata"]["kernelspec"] == {
        "name": "python3",
        "display_name": spec.display_name,
        "language": "python",
    }


async def test_timing_from_the_kernel(jp_serverapp: Any, api: Any, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir, NOTEBOOK, [code("c1", "import time; time.sleep(0.2)")])
    seen: dict[str, str] = {}

    def remember(kernel_id: str, msg: dict[str, Any]) -> None:
        if msg["header"]["msg_type"] in ("status", "execute_input"):
            state = msg["content"].get("execution_state", "")
            seen[f"{msg['header']['msg_type']}.{state}"] = msg["header"]["date"]

    from jupyter_canvas.base import SERVICES_KEY

    services = jp_serverapp.web_app.settings[SERVICES_KEY]
    services.queue.add_message_hook(remember)
    await run_cells(api, select="all")
    disk = await saved(
        jp_root_dir,
        lambda nb: "iopub.status.idle" in nb["cells"][0]["metadata"].get("execution", {}),
        "timing saved",
    )
    timing = disk["cells"][0]["metadata"]["execution"]
    assert sorted(timing) == sorted(TIMING_KEYS)
    # The strings the kernel sent, as it sent them.
    assert timing["iopub.execute_input"] == seen["execute_input."]
    assert timing["iopub.status.idle"] == seen["status.idle"]
    dates = sorted(timing.values())
    assert timing["iopub.status.busy"] == dates[0] and timing["iopub.status.idle"] == dates[-1]
    assert timing["shell.execute_reply.started"] < timing["shell.execute_reply"]


class TestTimingOff:
    @pytest.fixture
    def service_config(self) -> dict[str, Any]:
        return {"file_flush_interval": 0.2, "record_timing": False}

    @pytest.fixture
    def mode(self) -> str:
        return "file"

    async def test_no_timing_when_off(self, jp_serverapp: Any, api: Any, jp_root_dir: Path) -> None:
        write_notebook(jp_root_dir, NOTEBOOK, [code("c1", "'x'")])
        await run_cells(api, select="all")
        disk = await saved(jp_root_dir, lambda nb: nb["cells"][0].get("outputs"), "outputs")
        assert "execution" not in disk["cells"][0]["metadata"]


# -- with a peer in the live document ----------------------------------------------------------


class TestLiveDocument:
    @pytest.fixture
    def mode(self) -> str:
        return "ydoc"

    async def test_ids_go_into_the_live_document(
        self,
        jp_serverapp: Any,
        api: Any,
        ws_connect: Any,
        jp_root_dir: Path,
    ) -> None:
        write_raw(
            jp_root_dir,
            [raw_md("# Title"), raw_code("b = 2", id="dup"), raw_code("b * 21", id="dup")],
        )
        async with notebook_peer(api, ws_connect) as peer:
            live_ids = [ycell.get("id") for ycell in peer.notebook.ycells]
            entries = await run_cells(api, select="all")
            assert [e["state"] for e in entries] == ["done", "done"], entries
            assert text(entries[1]["outputs"][0]) == "42"
            ids = [ycell.get("id") for ycell in peer.notebook.ycells]
            assert [e["cell_id"] for e in entries] == ids[1:]
            assert len(set(ids)) == 3 and ids[:2] == live_ids[:2]  # the first keeps its id
            await wait_until(
                lambda: peer.notebook._ymeta.get("nbformat_minor") == 5, 10, "upgraded to 4.5"
            )
            await wait_until(
                lambda: "42" in str(peer.cell(ids[2])["outputs"]), 10, "output in the document"
            )
            # Metadata and timing are writes of their own: they may reach the peer after the
            # output on a loaded machine.
            await wait_until(
                lambda: (
                    (peer.notebook._ymeta["metadata"].get("language_info") or {}).get("name")
                    == "python"
                ),
                10,
                "language_info in the document",
            )
            await wait_until(
                lambda: (
                    sorted(peer.cell(ids[2])["metadata"].get("execution") or {})
                    == sorted(TIMING_KEYS)
                ),
                10,
                "timing in the document",
            )
        disk = await saved(
            jp_root_dir,
            lambda nb: nb["nbformat_minor"] == 5 and nb["cells"][2].get("outputs"),
            "document autosave",
        )
        assert [c["id"] for c in disk["cells"]] == ids
