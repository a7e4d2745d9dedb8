"""``jupyter canvas run NOTEBOOK``: the command line, as a user runs it (a subprocess).

Against a real server in a subprocess (found as ``jupyter server list`` finds it, or named
with ``--url``/``--token``) and embedded (no server runs: the command starts one).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from server_process import TOKEN, ServerProcess, servers_fixture, start
from test_canvas_support import code, md, write_notebook

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "run-report.schema.json").read_text()
)
JUPYTER = str(Path(sys.executable).parent / "jupyter")

servers = servers_fixture

pytestmark = pytest.mark.timeout(240)


def notebook_cells() -> list[Any]:
    return [
        md("h1", "# Load the data"),
        code("c1", "rows = list(range(10))"),
        code("c2", "# Check the total\nprint('total', sum(rows))"),
        md("h2", "## Fit"),
        code("c3", "print('fitted')"),
    ]


async def cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 180
) -> tuple[int, str, str]:
    """Run ``jupyter canvas run …``; answer (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        JUPYTER,
        "canvas",
        "run",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_run_through_a_running_server(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = await start(servers, tmp_path)
    write_notebook(server.root / "sub", "analysis.ipynb", notebook_cells())
    status, out, err = await cli("sub/analysis.ipynb", "--json", env=server.env(), cwd=server.root)
    assert status == 0, err
    # Not a TTY: a plain line per cell, then the outcome.
    lines = err.strip().splitlines()
    assert lines[0].startswith("[1/3] ok") and lines[0].endswith("Load the data"), err
    assert lines[1].startswith("[2/3] ok") and lines[1].endswith("Check the total"), err
    assert lines[2].startswith("[3/3] ok") and lines[2].endswith("Fit"), err
    assert lines[3].startswith("sub/analysis.ipynb: ok in "), err
    assert "starting one" not in err  # the running server was found
    report = json.loads(out)
    Draft202012Validator(SCHEMA, format_checker=FormatChecker()).validate(report)
    assert report["status"] == "ok" and report["notebook"] == "sub/analysis.ipynb"
    # The run happened on that server: it answers the same report.
    code_, again = await server.request("GET", f"api/queue/runs/{report['run_id']}")
    assert code_ == 200 and again["cell_results"] == report["cell_results"]

    # A failing cell: exit 1, the error said in one line.
    write_notebook(server.root, "fails.ipynb", [code("a", "1/0"), code("b", "print(2)")])
    status, out, err = await cli("fails.ipynb", env=server.env(), cwd=server.root)
    assert status == 1, err
    assert "fails.ipynb: error in" in err and "ZeroDivisionError" in err
    assert out == ""

    # --url and --token, --stream prints the outputs as they come; --select picks cells.
    env = dict(server.env(), JUPYTER_RUNTIME_DIR=str(tmp_path / "elsewhere"))
    status, out, err = await cli(
        "sub/analysis.ipynb",
        f"--url={server.url}",
        f"--token={TOKEN}",
        "--stream",
        "--select=c1,c2",
        env=env,
        cwd=tmp_path,
    )
    assert status == 0, err
    assert out == "total 45\n"
    assert "[2/2] ok" in err

    # A wrong token, an unknown cell: one clear line each, exit 2.
    status, out, err = await cli(
        "sub/analysis.ipynb", f"--url={server.url}", "--token=wrong", env=env, cwd=tmp_path
    )
    assert status == 2
    assert err.strip().splitlines() == [
        f"jupyter canvas run: the Jupyter server at {server.url} refused the token (403): "
        "give the right one with --token"
    ]
    status, out, err = await cli(
        "sub/analysis.ipynb", "--select=from:nope", env=server.env(), cwd=server.root
    )
    assert status == 2
    assert (
        err.strip() == "jupyter canvas run: sub/analysis.ipynb: no cell with id 'nope' in "
        "'sub/analysis.ipynb'"
    )


async def test_ctrl_c_cancels_the_run_on_the_server(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = await start(servers, tmp_path)
    write_notebook(
        server.root,
        "slow.ipynb",
        [code("a", "import time\ntime.sleep(120)"), code("b", "print('never')")],
    )
    process = await asyncio.create_subprocess_exec(
        JUPYTER,
        "canvas",
        "run",
        "slow.ipynb",
        env=server.env(),
        cwd=server.root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    running: list[dict[str, Any]] = []
    while not running:
        assert time.monotonic() < deadline, "the cell never started"
        await asyncio.sleep(0.2)
        _, listed = await server.request("GET", "api/queue?state=running")
        running = listed["entries"]
    process.send_signal(signal.SIGINT)
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 130, err.decode()
    run_id = running[0]["run_id"]
    assert f"interrupted: cancelled run {run_id} on the server (2 cell(s)" in err.decode()
    _, report = await server.request("GET", f"api/queue/runs/{run_id}")
    assert report["status"] == "cancelled"
    assert [r["status"] for r in report["cell_results"]] == ["cancelled", "cancelled"]


async def test_embedded_server_and_bad_input(tmp_path: Path) -> None:
    # No server runs with this runtime dir: the command starts one for the run, stops it after.
    root = tmp_path / "work"
    write_notebook(root, "analysis.ipynb", notebook_cells())
    base = ServerProcess(tmp_path / "base")
    env = base.env()
    status, out, err = await cli("analysis.ipynb", "--json", env=env, cwd=root)
    assert status == 0, err
    assert "no Jupyter server runs here: starting one for the run" in err
    assert json.loads(out)["status"] == "ok"
    saved = json.loads((root / "analysis.ipynb").read_text())
    (c2,) = [c for c in saved["cells"] if c["id"] == "c2"]
    assert "".join(c2["outputs"][0]["text"]) == "total 45\n"
    assert not list((tmp_path / "base" / "runtime").glob("jpserver-*.json"))  # it stopped

    bad = [
        (("missing.ipynb",), "jupyter canvas run: no notebook at missing.ipynb"),
        (
            (),
            "jupyter canvas run: give exactly one notebook: jupyter canvas run NOTEBOOK [options]",
        ),
        (
            ("analysis.ipynb", "--url=http://127.0.0.1:9/", "--token=x"),
            "jupyter canvas run: cannot reach the Jupyter server at http://127.0.0.1:9/:",
        ),
        (
            ("analysis.ipynb", "--select=,"),
            "jupyter canvas run: --select ',': give all, from:<cell id>, group:<cell id> or "
            "cell ids a,b,c",
        ),
    ]
    for args, message in bad:
        status, out, err = await cli(*args, env=env, cwd=root, timeout=60)
        assert status == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith(message), (args, err)


def test_progress_bar_on_a_terminal() -> None:
    """On a TTY one line is redrawn in place: cells done of total, elapsed, the running cell."""
    import io

    from jupyter_canvas.cli.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream, 4, tty=True)
    progress.cell_started("Load the data")
    assert stream.getvalue().endswith("\r\x1b[K[------------------------] 0/4 00:00 Load the data")
    progress.cell_ended("Load the data", "ok", 12.0)
    progress.cell_started("Fit")
    assert stream.getvalue().endswith("\r\x1b[K[######------------------] 1/4 00:00 Fit")
    assert "\n" not in stream.getvalue()  # no plain lines on a terminal
