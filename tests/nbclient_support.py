"""nbclient, the reference executor, run the way every comparison here runs it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from traitlets.config import Config


def run_nbclient(path: Path, allow_errors: bool, options: dict[str, Any]) -> tuple[Any, str]:
    """What nbclient makes of the file: the notebook, and the exception it ended with.

    Its kernels talk over IPC sockets (an absolute path of their own): kernels started at
    once on TCP can pick the same free port (a CI machine runs other suites too) and then
    talk to the wrong client or hang; one lost kernel would fail every test of the module.
    A kernel that does not start is started again. No cell of these notebooks runs for long:
    a cell still running after 120 s fails instead of hanging the suite.
    """
    for attempt in range(3):
        notebook = nbformat.read(path, as_version=4)
        sockets = Path(tempfile.mkdtemp(prefix="k", dir=path.parent.parent))
        client = NotebookClient(
            notebook,
            kernel_name="python3",
            allow_errors=allow_errors,
            coalesce_streams=True,
            resources={"metadata": {"path": str(path.parent)}},
            config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "k")}}),
            **{"timeout": 120, **options},
        )
        try:
            client.execute()
        except (CellExecutionError, DeadKernelError) as err:
            return notebook, type(err).__name__
        except RuntimeError as err:  # the kernel did not start: not the notebook's doing
            if ("kernel_info" not in str(err) and "respond" not in str(err)) or attempt == 2:
                raise
            continue
        return notebook, ""
    raise AssertionError("unreachable")
