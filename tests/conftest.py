"""Shared fixtures: a real jupyter server with jupyter_canvas enabled, real ipykernel kernels."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

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
def canvas_extensions() -> dict[str, bool]:
    """The server extensions a test server loads (override to add jupyter_server_ydoc)."""
    return {"jupyter_canvas": True}


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    """Extra ``CanvasApp`` traits for the test server (override per module)."""
    return {}


@pytest.fixture
def canvas_room_config() -> dict[str, Any]:
    """``CanvasRoomManager`` traits of the canvas tests' server (override with parametrize)."""
    return {}


@pytest.fixture
def canvas_ydoc_config() -> dict[str, Any]:
    """``YDocExtension`` traits of the canvas tests' server (override with parametrize)."""
    return {}


@pytest.fixture
def jp_server_config(canvas_extensions: dict[str, bool], canvas_app_config: dict[str, Any]) -> Any:
    """Enable the extension (and whatever ``canvas_extensions`` adds) in the test server."""
    from traitlets.config import Config

    config = Config(
        {
            "ServerApp": {"jpserver_extensions": canvas_extensions},
            "CanvasApp": canvas_app_config,
        }
    )
    return config


@pytest.fixture
def jp_serverapp(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The test server, with every extension's start hook run as a real server does.

    pytest-jupyter initializes the server but never calls ``start_app``, so extensions'
    ``_start_jupyter_server_extension`` would not run without this.
    """
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return jp_serverapp


@pytest.fixture
def api(jp_fetch: Fetch) -> Callable[..., Awaitable[tuple[int, Any]]]:
    """Call a JSON route; returns ``(status, body)`` without raising on 4xx/5xx."""

    async def call(
        method: str, *parts: str, body: Any = None, params: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {
            "method": method,
            "raise_error": False,
            "request_timeout": 90,
            **kw,
        }
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
            kwargs["allow_nonstandard_methods"] = True
        if params:
            kwargs["params"] = params
        response = await jp_fetch(*parts, **kwargs)
        text = response.body.decode() if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return response.code, data

    return call


@pytest.fixture
def kernel_id(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """A real ipykernel started by the server's kernel manager; shut down afterwards.

    Fixtures are synchronous: pytest-jupyter runs async tests on ``jp_asyncio_loop`` itself
    (do not use pytest-asyncio fixtures, they would run on another loop).
    """
    km = jp_serverapp.kernel_manager
    kid = jp_asyncio_loop.run_until_complete(km.start_kernel(kernel_name="python3"))
    yield kid
    if kid in km:
        jp_asyncio_loop.run_until_complete(km.shutdown_kernel(kid, now=True))


@pytest.fixture
def queue(api: Any) -> Any:
    """Helpers to queue code and wait for entries."""

    class Q:
        async def post(self, **body: Any) -> tuple[int, Any]:
            return await api("POST", "api", "queue", body=body)

        async def run(self, kernel_id: str, code: str, **extra: Any) -> dict[str, Any]:
            status, data = await self.post(kernel_id=kernel_id, code=code, **extra)
            assert status == 202, data
            return await self.wait(data["entries"][0]["id"])

        async def wait(self, entry_id: str, seconds: float = 60) -> dict[str, Any]:
            status, data = await api("GET", "api", "queue", entry_id, params={"wait": str(seconds)})
            assert status == 200, data
            return data

        async def get(self, entry_id: str) -> dict[str, Any]:
            status, data = await api("GET", "api", "queue", entry_id)
            assert status == 200, data
            return data

    return Q()
