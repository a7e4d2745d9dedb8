"""The frontend's tests, run by the one test command.

- the unit tests of the frontend logic (vitest, ``labextension/src/__tests__``);
- the browser tests (Playwright, ``labextension/ui-tests``): JupyterLab with the installed
  extension, served by a real Jupyter server with real kernels, driven in Debian's Chromium
  (``/usr/bin/chromium``, or ``CHROMIUM_PATH``); no browser is downloaded.

Their JavaScript packages come from the npm registry (``jlpm install``, locked by the
``yarn.lock`` files). Where a prerequisite is missing (Node.js, Chromium, the built
extension) the tests are skipped with the reason, except under CI (``CI`` set), where that
is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABEXTENSION = ROOT / "labextension"
UI_TESTS = LABEXTENSION / "ui-tests"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: The name JupyterLab knows the extension by (``labextension/package.json``).
EXTENSION_NAME = "jupyter-canvas"


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI, where every test must run."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _jlpm() -> list[str]:
    """The ``jlpm`` of this Python environment (jupyter-builder's yarn)."""
    found = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")
    if found is None:
        _unavailable("jlpm is not installed (it comes with jupyterlab / jupyter-builder)")
    assert found is not None
    return [found]


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    # The scripts find jupyter, jlpm and jupyter-builder of this environment first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _ensure_packages(package_dir: Path) -> None:
    """Install a package's npm dependencies (from its yarn.lock) once."""
    if shutil.which("node") is None:
        _unavailable("Node.js is not installed")
    if (package_dir / "node_modules").is_dir():
        return
    result = subprocess.run(
        [*_jlpm(), "install"],
        cwd=package_dir,
        env=_node_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"jlpm install in {package_dir} failed:\n{_tail(result)}")


def _tail(result: subprocess.CompletedProcess[str], lines: int = 200) -> str:
    output = (result.stdout or "") + (result.stderr or "")
    return "\n".join(output.splitlines()[-lines:])


def _extension_installed() -> bool:
    from jupyter_core.paths import jupyter_path

    return any(
        (Path(base) / EXTENSION_NAME / "package.json").is_file()
        for base in jupyter_path("labextensions")
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(900)
def test_frontend_unit_tests() -> None:
    """Vitest: event stream reconnection, queue store, canvas geometry and room, labels."""
    _ensure_packages(LABEXTENSION)
    result = subprocess.run(
        [*_jlpm(), "test"],
        cwd=LABEXTENSION,
        env=_node_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"vitest failed:\n{_tail(result)}"


@pytest.mark.timeout(1800)
def test_browser_ui_tests(tmp_path: Path) -> None:
    """Playwright in Chromium: run cells, queued state, reopen during a run, dead kernel, canvas,
    live ipywidgets."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    if not _extension_installed():
        _unavailable(
            f"the {EXTENSION_NAME} JupyterLab extension is not installed in this environment "
            "(pip install . builds and installs it)"
        )
    _ensure_packages(UI_TESTS)
    root = tmp_path / "root"
    root.mkdir()
    env = _node_env()
    env.update(
        {
            "JUPYTER_CANVAS_PYTHON": sys.executable,
            "JUPYTER_CANVAS_UI_PORT": str(_free_port()),
            "JUPYTERLAB_GALATA_ROOT_DIR": str(root),
            # Nothing of the user's own Jupyter configuration.
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "CHROMIUM_PATH": CHROMIUM,
            "JUPYTER_CANVAS_UI_SERVER_LOG": str(tmp_path / "server.log"),
        }
    )
    result = subprocess.run(
        [*_jlpm(), "playwright", "test"],
        cwd=UI_TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    if result.returncode != 0:
        log = tmp_path / "server.log"
        server = log.read_text(errors="replace").splitlines()[-150:] if log.exists() else []
        pytest.fail(
            f"the browser tests failed:\n{_tail(result, 400)}\n\n"
            "-- last lines of the Jupyter server's log --\n" + "\n".join(server)
        )
