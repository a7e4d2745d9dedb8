"""Runs and RunReports: ``run_id`` on entries and events, ``GET /api/queue/runs/<run_id>``.

Real server, real kernels; the reports are checked against ``docs/run-report.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from server_process import ServerProcess, servers_fixture, start
from test_api_document import assert_documented
from test_canvas_support import code, md, write_notebook
from test_events_ws import connect, read_until

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "run-report.schema.json").read_text()
)
NOTEBOOK = "report.ipynb"

servers = servers_fixture


def assert_valid_report(report: dict[str, Any]) -> None:
    """The report fits its published JSON Schema."""
    Draft202012Validator(SCHEMA, format_checker=FormatChecker()).validate(report)


@pytest.fixture
def notebook(jp_root_dir: Path) -> Path:
    return write_notebook(
        jp_root_dir,
        NOTEBOOK,
        [
            code("c0", "x = 1"),
            md("h1", "# Load the data"),
            code("c1", "y = x + 1"),
            code("c2", "# Check the total\nprint(y)"),
            code("c3", "print('never')", tags=["skip-execution"]),
            md("h2", "## Fit\n\ntext"),
            code("c4", "print('fit', y)"),
        ],
    )


async def wait_report(canvas_api: Any, run_id: str) -> dict[str, Any]:
    status, report = await canvas_api("GET", "api", "queue", "runs", run_id, params={"wait": "60"})
    assert status == 200, report
    assert report["status"] != "running", report
    return report  # type: ignore[no-any-return]


async def test_run_report_of_a_notebook(canvas_api: Any, notebook: Path, jp_ws_fetch: Any) -> None:
    ws = await connect(jp_ws_fetch)
    status, answer = await canvas_api(
        "POST", "api", "queue", body={"path": NOTEBOOK, "select": "all"}
    )
    assert status == 202, answer
    run_id = answer["run_id"]
    assert run_id and all(e["run_id"] == run_id for e in answer["entries"])
    assert_documented("/api/queue", "post", 202, answer)
    report = await wait_report(canvas_api, run_id)
    assert_valid_report(report)
    assert_documented("/api/queue/runs/{run_id}", "get", 200, report)
    assert report["schema_version"] == 1
    assert report["run_id"] == run_id
    assert report["notebook"] == NOTEBOOK
    assert report["kernel_id"] == answer["entries"][0]["kernel_id"]
    assert report["status"] == "ok"
    results = report["cell_results"]
    assert [r["cell_id"] for r in results] == ["c0", "c1", "c2", "c3", "c4"]
    assert [r["cell_name"] for r in results] == [
        "x = 1",
        "Load the data",
        "Check the total",
        "Load the data",
        "Fit",
    ]
    assert [r["status"] for r in results] == ["ok", "ok", "ok", "skipped", "ok"]
    assert results[3]["reason"] == "skipped: tagged skip-execution"
    assert all(r["duration_ms"] is not None for r in results if r["status"] == "ok")
    assert report["total_duration_ms"] >= max(r["duration_ms"] or 0 for r in results)
    # Every event about the run's entries carries its id: entry and output events alike.
    last = answer["entries"][-1]["id"]
    events = await read_until(
        ws,
        lambda e: (
            e["type"] == "entry"
            and e["entry"]["id"] == last
            and e["entry"]["state"] in ("done", "error", "cancelled")
        ),
    )
    ws.close()
    mine = [e for e in events if e["type"] in ("entry", "output")]
    assert {e["type"] for e in mine} == {"entry", "output"}
    for event in mine:
        carried = event["entry"]["run_id"] if event["type"] == "entry" else event["run_id"]
        assert carried == run_id, event
    # The entries answer with the run id too.
    status, entry = await canvas_api("GET", "api", "queue", answer["entries"][0]["id"])
    assert entry["run_id"] == run_id


async def test_run_report_error_and_cancelled(
    canvas_api: Any, canvas_kernel_id: str, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir,
        "fails.ipynb",
        [code("a", "print(1)"), code("b", "1/0"), code("c", "print(3)")],
    )
    status, answer = await canvas_api(
        "POST", "api", "queue", body={"path": "fails.ipynb", "select": "all"}
    )
    assert status == 202, answer
    report = await wait_report(canvas_api, answer["run_id"])
    assert_valid_report(report)
    assert report["status"] == "error"
    a, b, c = report["cell_results"]
    assert (a["status"], b["status"], c["status"]) == ("ok", "error", "cancelled")
    assert b["error"]["ename"] == "ZeroDivisionError"
    assert "earlier cell failed" in c["reason"]

    # A snippet is a run of one cell; cancelled by its user, the run is cancelled.
    status, answer = await canvas_api(
        "POST",
        "api",
        "queue",
        body={"kernel_id": canvas_kernel_id, "code": "import time\ntime.sleep(30)"},
    )
    run_id = answer["run_id"]
    status, running = await canvas_api("GET", "api", "queue", "runs", run_id)
    assert status == 200 and running["status"] == "running"
    assert running["notebook"] is None
    assert running["cell_results"][0]["cell_name"] == "import time"
    assert_valid_report(running)
    status, _ = await canvas_api("DELETE", "api", "queue", answer["entries"][0]["id"])
    assert status == 200
    report = await wait_report(canvas_api, run_id)
    assert report["status"] == "cancelled"
    assert report["cell_results"][0]["status"] == "cancelled"


async def test_run_report_bad_requests(canvas_api: Any) -> None:
    status, body = await canvas_api("GET", "api", "queue", "runs", "nope")
    assert status == 404 and "no run with id 'nope'" in body["message"]
    status, body = await canvas_api("GET", "api", "queue", "runs", "nope", params={"wait": "x"})
    assert status == 400


async def test_run_report_answers_after_a_restart(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = await start(servers, tmp_path)
    write_notebook(server.root, NOTEBOOK, [md("h", "# Only"), code("a", "print('hi')")])
    status, answer = await server.request("POST", "api/queue", {"path": NOTEBOOK, "select": "all"})
    assert status == 202, answer
    run_id = answer["run_id"]
    status, report = await server.request("GET", f"api/queue/runs/{run_id}?wait=60")
    assert report["status"] == "ok", report
    # A second run still going when the server stops answers cancelled afterwards.
    status, slow = await server.request(
        "POST",
        "api/queue",
        {"path": NOTEBOOK, "code": "import time\ntime.sleep(60)", "cell_id": "a"},
    )
    assert status == 202, slow
    await server.stop()
    await server.start()
    status, again = await server.request("GET", f"api/queue/runs/{run_id}")
    assert status == 200, again
    assert_valid_report(again)
    assert again["status"] == "ok"
    assert again["cell_results"] == report["cell_results"]
    status, stopped = await server.request("GET", f"api/queue/runs/{slow['run_id']}")
    assert status == 200, stopped
    assert_valid_report(stopped)
    assert stopped["status"] == "cancelled"
    assert stopped["cell_results"][0]["reason"] == "server stopped"
