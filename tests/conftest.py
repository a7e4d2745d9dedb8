"""Shared fixtures: a real jupyter server with jupyter_canvas enabled, real ipykernel kernels.

The server, the kernel and the queue helpers come from the plugin the package exports
(``jupyter_canvas.pytest_plugin``), as a downstream project would use them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported by pytest as a plugin (below), so its asserts are rewritten
    from jupyter_canvas.pytest_plugin import ApiCall, QueueHelpers

pytest_plugins = ["pytest_jupyter.jupyter_server", "jupyter_canvas.pytest_plugin"]

Fetch = Callable[..., Awaitable[Any]]

#: Set to 1 to run the long variants too (same as ``pytest --long``).
LONG_ENV = "JUPYTER_CANVAS_LONG"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: also run the tests marked ``long`` (e.g. the one-minute soak)."""
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help=f"also run the long variants (tests marked long); or set {LONG_ENV}=1",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``long`` marker."""
    config.addinivalue_line(
        "markers", f"long: a long variant, run only with --long or {LONG_ENV}=1"
    )


def long_variants_enabled(config: pytest.Config) -> bool:
    """Whether this run includes the long variants."""
    return bool(config.getoption("--long")) or os.environ.get(LONG_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``long`` tests unless asked for (CI runs the short variants by default)."""
    if long_variants_enabled(config):
        return
    skip = pytest.mark.skip(reason=f"long variant: run with --long or {LONG_ENV}=1")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def canvas_room_config() -> dict[str, Any]:
    """``CanvasRoomManager`` traits of the canvas tests' server (override with parametrize)."""
    return {}


@pytest.fixture
def canvas_ydoc_config() -> dict[str, Any]:
    """``YDocExtension`` traits of the canvas tests' server (override with parametrize)."""
    return {}


# The project's own tests use the exported plugin's fixtures under their short names.
@pytest.fixture
def api(canvas_api: ApiCall) -> ApiCall:
    """Call a JSON route; returns ``(status, body)`` (``canvas_api``)."""
    return canvas_api


@pytest.fixture
def kernel_id(canvas_kernel_id: str) -> str:
    """A real ipykernel started by the server's kernel manager (``canvas_kernel_id``)."""
    return canvas_kernel_id


@pytest.fixture
def queue(canvas_queue: QueueHelpers) -> QueueHelpers:
    """Helpers to queue code and wait for entries (``canvas_queue``)."""
    return canvas_queue
