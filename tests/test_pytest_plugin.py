"""The exported pytest plugin works for a downstream project: a test suite of its own that
only names the plugins in its conftest, run by pytest in a subprocess (a real server, a real
kernel, the queue helpers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOWNSTREAM_CONFTEST = """
pytest_plugins = ["pytest_jupyter.jupyter_server", "jupyter_canvas.pytest_plugin"]
"""

DOWNSTREAM_TEST = """
import pytest


async def test_hello(canvas_queue, canvas_kernel_id):
    entry = await canvas_queue.run(canvas_kernel_id, "print('hello')")
    assert entry["state"] == "done"
    assert entry["outputs"][0]["text"] == "hello\\n"


@pytest.mark.parametrize("canvas_app_config", [{"max_code_bytes": 10}])
async def test_settings_reach_the_extension(canvas_queue, canvas_kernel_id):
    status, answer = await canvas_queue.post(kernel_id=canvas_kernel_id, code="x" * 11)
    assert status == 413, answer
    assert "max_code_bytes" in answer["message"]
"""


def test_a_downstream_suite_uses_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(DOWNSTREAM_CONFTEST)
    (tmp_path / "test_downstream.py").write_text(DOWNSTREAM_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
