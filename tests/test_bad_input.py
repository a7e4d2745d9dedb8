"""A body that cannot be parsed is a 400 with a message, never a 500; path filters are
normalised as ``POST`` normalises paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_canvas_support import canvas_server_config, code, write_notebook

DEEP = 100_000

#: Bodies no route can accept, whatever it expects.
BAD_BODIES = {
    "100k-deep arrays": b"[" * DEEP + b"]" * DEEP,
    "100k-deep objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "65 levels": b'{"a":' * 65 + b"1" + b"}" * 65,
    "invalid UTF-8": b'{"code": "\xff\xfe", "value": "\xc3\x28"}',
    "lone surrogate in a value": b'{"code": "print(\'\\ud800\')", "value": "\\udfff"}',
    "lone surrogate in a key": b'{"\\ud83d": 1}',
    "lone surrogate deep inside": b'{"cells": {"a": {"x": ["\\udc00"]}}}',
}


@pytest.fixture
def canvas_extensions() -> dict[str, bool]:
    return {"jupyter_canvas": True, "jupyter_server_fileid": True}


@pytest.fixture
def jp_server_config(jp_server_config: Any, jp_root_dir: Path) -> Any:
    return canvas_server_config(jp_server_config, jp_root_dir, {})


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
async def test_unparseable_bodies_are_400(
    jp_serverapp: Any, api: Any, jp_root_dir: Path, kernel_id: str, name: str
) -> None:
    write_notebook(jp_root_dir, "a.ipynb", [code("c1", "1")])
    body = BAD_BODIES[name]
    for method, parts in (
        ("POST", ("api", "queue")),
        ("POST", ("api", "queue", "0" * 32, "input")),
        ("PATCH", ("api", "canvas", "layout", "a.ipynb")),
    ):
        status, data = await api(method, *parts, body=body)
        assert status == 400, (method, parts, status, data)
        assert data["message"].startswith("request body"), data
    # The server still runs code.
    status, data = await api("POST", "api", "queue", body={"kernel_id": kernel_id, "code": "1"})
    assert status == 202, data


async def test_lone_surrogate_in_code_never_reaches_the_kernel(
    jp_serverapp: Any, api: Any, kernel_id: str
) -> None:
    body = '{"kernel_id": "KID", "code": "x = \'\\ud800\'"}'.replace("KID", kernel_id)
    status, data = await api("POST", "api", "queue", body=body)
    assert status == 400 and "lone surrogate" in data["message"], data
    status, data = await api("GET", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200 and data["entries"] == []


async def test_path_filters_are_normalised_like_post(
    jp_serverapp: Any, api: Any, jp_root_dir: Path
) -> None:
    write_notebook(
        jp_root_dir,
        "a.ipynb",
        [code("slow", "import time; time.sleep(30)"), code("next", "1")],
    )
    status, data = await api(
        "POST", "api", "queue", body={"path": "./a.ipynb", "cell_ids": ["slow", "next"]}
    )
    assert status == 202, data
    assert {e["path"] for e in data["entries"]} == {"a.ipynb"}
    for spelling in ("./a.ipynb", "a.ipynb", ".//a.ipynb"):
        status, listed = await api("GET", "api", "queue", params={"path": spelling})
        assert status == 200 and len(listed["entries"]) == 2, (spelling, listed)
    for bad in ("../a.ipynb", "/a.ipynb"):
        status, answer = await api("GET", "api", "queue", params={"path": bad})
        assert status == 400, answer
        status, answer = await api("DELETE", "api", "queue", params={"path": bad})
        assert status == 400, answer
    status, cleared = await api("DELETE", "api", "queue", params={"path": "./a.ipynb"})
    assert status == 200 and len(cleared["cancelled"]) == 2, cleared
