"""Fixtures for testing with jupyter_canvas: a real Jupyter server with the extension, a real
kernel, and helpers to queue code and wait for it.

Use it after pytest-jupyter's server plugin, in your root ``conftest.py``::

    pytest_plugins = ["pytest_jupyter.jupyter_server", "jupyter_canvas.pytest_plugin"]

(the order matters: this plugin overrides ``jp_server_config`` and ``jp_serverapp``). Then::

    async def test_hello(canvas_queue, canvas_kernel_id):
        entry = await canvas_queue.run(canvas_kernel_id, "print('hello')")
        assert entry["outputs"][0]["text"] == "hello\\n"

Settings of the extension come from ``canvas_app_config`` (``CanvasApp`` traits) and the server
extensions loaded from ``canvas_extensions``; override either fixture, or parametrize it.
Fixtures are synchronous where they start things: pytest-jupyter runs async tests on its own
loop (``jp_asyncio_loop``), which is where the server lives.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from traitlets.config import Config

#: ``(method, *path parts, body=…, params=…) -> (status, JSON body or text)``.
ApiCall = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
def canvas_extensions() -> dict[str, bool]:
    """The server extensions the test server loads (override to add jupyter_server_ydoc)."""
    return {"jupyter_canvas": True}


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    """``CanvasApp`` traits of the test server (override, or parametrize per test)."""
    return {}


@pytest.fixture
def jp_server_config(canvas_extensions: dict[str, bool], canvas_app_config: dict[str, Any]) -> Any:
    """Enable jupyter_canvas (and whatever ``canvas_extensions`` adds) in the test server."""
    return Config(
        {
            "ServerApp": {"jpserver_extensions": canvas_extensions},
            "CanvasApp": canvas_app_config,
        }
    )


@pytest.fixture
def jp_serverapp(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The test server, with every extension's start hook run as a real server does.

    pytest-jupyter initializes the server but never calls ``start_app``, so extensions'
    ``_start_jupyter_server_extension`` would not run without this.
    """
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return jp_serverapp


@pytest.fixture
def canvas_api(jp_fetch: Any) -> ApiCall:
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
def canvas_kernel_id(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[str]:
    """A real kernel (the default kernelspec) started by the server's kernel manager; shut
    down afterwards."""
    km = jp_serverapp.kernel_manager
    kid = jp_asyncio_loop.run_until_complete(km.start_kernel(kernel_name="python3"))
    yield str(kid)
    if kid in km:
        jp_asyncio_loop.run_until_complete(km.shutdown_kernel(kid, now=True))


class QueueHelpers:
    """Queue code through ``POST /api/queue`` and wait for entries (``GET ?wait=``)."""

    def __init__(self, api: ApiCall) -> None:
        self.api = api

    async def post(self, **body: Any) -> tuple[int, Any]:
        """``POST /api/queue`` with ``body``; returns ``(status, answer)``."""
        return await self.api("POST", "api", "queue", body=body)

    async def run(self, kernel_id: str, code: str, **extra: Any) -> dict[str, Any]:
        """Queue ``code`` on ``kernel_id`` and return the entry once it has ended."""
        status, data = await self.post(kernel_id=kernel_id, code=code, **extra)
        assert status == 202, data
        return await self.wait(data["entries"][0]["id"])

    async def wait(self, entry_id: str, seconds: float = 60) -> dict[str, Any]:
        """The entry once it has ended (or after ``seconds``, as it is then)."""
        status, data = await self.api(
            "GET", "api", "queue", entry_id, params={"wait": str(seconds)}
        )
        assert status == 200, data
        return data  # type: ignore[no-any-return]

    async def get(self, entry_id: str) -> dict[str, Any]:
        """The entry as it is now."""
        status, data = await self.api("GET", "api", "queue", entry_id)
        assert status == 200, data
        return data  # type: ignore[no-any-return]


@pytest.fixture
def canvas_queue(canvas_api: ApiCall) -> QueueHelpers:
    """Helpers to queue code and wait for entries (:class:`QueueHelpers`)."""
    return QueueHelpers(canvas_api)
