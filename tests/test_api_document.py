"""docs/rest-api.yaml stays true: valid OpenAPI, the same routes as the server, real answers fit.

The document is the project's written contract for HTTP clients; these tests hold it to the
server: every route the extension registers is documented (with the methods its handler
implements) and every documented path is served by one of our handlers; answers the server
really gives (on a real kernel) validate against the documented schemas.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from route_support import is_ours
from tornado import web
from tornado.routing import PathMatches, Router, Rule
from tornado.websocket import WebSocketHandler
from traitlets.config import Config

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "rest-api.yaml"
DOC_URI = "urn:jupyter-canvas:rest-api"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Sample values put in documented path templates to find the route that serves them.
PATH_SAMPLES = {"path": "sub dir/analysis.ipynb", "index": "0"}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, parsed."""
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def registry() -> Registry:
    return Registry().with_resource(DOC_URI, DRAFT202012.create_resource(document()))


def validator(pointer: str) -> Draft202012Validator:
    """A JSON Schema validator for the schema at ``pointer`` (e.g. ``/components/schemas/X``)."""
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"}, registry=registry(), format_checker=FormatChecker()
    )


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def documented_response(path: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    """The documented response of an operation: (JSON pointer of its JSON schema, response)."""
    operation = document()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method.upper()} {path} answered {status}, which the document does not list "
        f"(documented: {', '.join(responses)})"
    )
    response = responses[str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = document()["components"]["responses"][name]
        pointer = f"/components/responses/{name}"
    else:
        pointer = f"/paths/{_pointer_escape(path)}/{method.lower()}/responses/{status}"
    assert "application/json" in response.get("content", {}), f"{pointer} has no JSON schema"
    return f"{pointer}/content/application~1json/schema", response


def assert_documented(path: str, method: str, status: int, body: Any, headers: Any = None) -> None:
    """Assert that ``body`` (and the required headers) match the documented answer."""
    pointer, response = documented_response(path, method, status)
    errors = sorted(validator(pointer).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, (
        f"{method.upper()} {path} {status} does not match the document:\n"
        + "\n".join(f"- at {list(e.path)}: {e.message}" for e in errors[:10])
        + f"\nbody: {json.dumps(body)[:2000]}"
    )
    for name, spec in response.get("headers", {}).items():
        if spec.get("required") and headers is not None:
            assert headers.get(name), f"{method.upper()} {path} {status} lacks header {name}"


# -- the server these tests run against ------------------------------------------------------


@pytest.fixture
def canvas_extensions() -> dict[str, bool]:
    """The canvas routes need jupyter_server_fileid (and read live documents from ydoc)."""
    return {"jupyter_canvas": True, "jupyter_server_fileid": True, "jupyter_server_ydoc": True}


@pytest.fixture
def canvas_app_config() -> dict[str, Any]:
    """Small limits, so that the 413 answers are reachable with small requests."""
    return {"max_code_bytes": 4096, "max_body_bytes": 16384}


@pytest.fixture
def jp_server_config(jp_server_config: Any, jp_root_dir: Path) -> Any:
    """Collaboration stores outside the served root (they are not contents)."""
    config = jp_server_config
    config["NotebookService"] = Config({"stream_cap": 1000})  # cut streams early
    config["SQLiteYStore"] = Config({"db_path": str(jp_root_dir.parent / "ystore.db")})
    config["BaseFileIdManager"] = Config(
        {
            "root_dir": str(jp_root_dir),
            "db_path": str(jp_root_dir.parent / "fileid.db"),
            "db_journal_mode": "OFF",
        }
    )
    return config


# -- the document itself ----------------------------------------------------------------------


def test_document_is_valid_openapi() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.")
    validate_openapi(doc)


def test_every_schema_is_valid_json_schema() -> None:
    for name in document()["components"]["schemas"]:
        Draft202012Validator.check_schema(document()["components"]["schemas"][name])
        # Every $ref resolves (a dangling one raises here).
        validator(f"/components/schemas/{name}").is_valid(None)


def test_every_operation_documents_errors_and_security() -> None:
    doc = document()
    assert doc["security"], "the document must say how requests authenticate"
    schemes = doc["components"]["securitySchemes"]
    assert schemes["token"] == {**schemes["token"], "in": "header", "name": "Authorization"}
    assert schemes["cookie"]["in"] == "cookie"
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            assert "403" in operation["responses"], f"{method} {path} does not document 403"
            if operation.get("x-websocket"):
                assert "101" in operation["responses"], f"websocket {path} does not document 101"
                continue
            for status in operation["responses"]:
                if status.startswith(("4", "5")):
                    pointer, _ = documented_response(path, method, int(status))
                    schema = validator(pointer).schema
                    assert validator(pointer).is_valid({"message": "m", "reason": None}), (
                        f"{method} {path} {status}: error answers are {{message, reason}} "
                        f"({schema})"
                    )


# -- the document and the server's routes ------------------------------------------------------


def canvas_rules(router: Router) -> list[tuple[re.Pattern[str], type[web.RequestHandler]]]:
    """Every route of the server, in matching order: (regex, handler class)."""
    found: list[tuple[re.Pattern[str], type[web.RequestHandler]]] = []

    def walk(rules: list[Rule]) -> None:
        for rule in rules:
            target = rule.target
            if isinstance(target, Router) and hasattr(target, "rules"):
                walk(target.rules)
            elif isinstance(rule.matcher, PathMatches) and isinstance(target, type):
                found.append((rule.matcher.regex, target))

    walk(router.rules)  # type: ignore[attr-defined]
    return found


def implemented_methods(handler: type[web.RequestHandler]) -> set[str]:
    """The HTTP methods the handler class answers (beyond tornado's 405 defaults)."""
    methods = set()
    for name in HTTP_METHODS:
        impl = getattr(handler, name, None)
        if impl is not None and impl is not getattr(web.RequestHandler, name):
            methods.add(name)
    return methods


def sample_url(base_url: str, template: str) -> str:
    """A URL the documented path template stands for (path parameters filled in)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return quote(PATH_SAMPLES.get(name, f"sample-{name}"), safe="/")

    return base_url.rstrip("/") + re.sub(r"\{([^}]+)\}", fill, template)


def route_of(rules: list[tuple[re.Pattern[str], type]], url: str) -> tuple[re.Pattern[str], type]:
    for regex, handler in rules:
        if regex.match(url):
            return regex, handler
    raise AssertionError(f"no route of the server serves {url}")


def test_documented_paths_and_registered_routes_agree(jp_serverapp: Any, jp_base_url: str) -> None:
    rules = canvas_rules(jp_serverapp.web_app.default_router)
    ours = [(regex, handler) for regex, handler in rules if is_ours(handler)]
    assert ours, "the extension registered no route"
    served: set[str] = set()
    problems: list[str] = []
    for template, item in document()["paths"].items():
        url = sample_url(jp_base_url, template)
        regex, handler = route_of(rules, url)
        if not is_ours(handler):
            problems.append(f"{template} is served by {handler.__module__}.{handler.__name__}")
            continue
        served.add(regex.pattern)
        documented = {m for m in HTTP_METHODS if m in item}
        implemented = implemented_methods(handler)
        if documented != implemented:
            problems.append(
                f"{template} ({handler.__name__}): documented {sorted(documented)}, "
                f"implemented {sorted(implemented)}"
            )
        websocket = any(item[m].get("x-websocket") for m in documented)
        if websocket != issubclass(handler, WebSocketHandler):
            problems.append(f"{template}: x-websocket does not say what {handler.__name__} is")
    for regex, handler in ours:
        if regex.pattern not in served:
            problems.append(f"route {regex.pattern} ({handler.__name__}) is not documented")
    assert not problems, "\n".join(problems)


# -- real answers fit the document ---------------------------------------------------------------

RICH_CODE = """\
import sys
from IPython.display import display, clear_output, HTML
print("gone"); clear_output(wait=True)
print("hello")
print("warn", file=sys.stderr)
handle = display(HTML("<b>1</b>"), display_id=True)
handle.update(HTML("<b>2</b>"))
40 + 2
"""


async def test_snippet_answers_match_the_document(api: Any, kernel_id: str, jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api",
        "queue",
        method="POST",
        body=json.dumps({"kernel_id": kernel_id, "code": RICH_CODE}),
    )
    body = json.loads(response.body)
    assert response.code == 202
    assert_documented("/api/queue", "post", 202, body, response.headers)
    assert response.headers["Location"].endswith(f"api/queue/{body['entries'][0]['id']}")
    entry_id = body["entries"][0]["id"]

    status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
    assert status == 200 and entry["state"] == "done", entry
    assert_documented("/api/queue/{entry_id}", "get", 200, entry)
    kinds = [o["output_type"] for o in entry["outputs"]]
    assert {"stream", "display_data", "execute_result"} <= set(kinds), kinds

    status, failed = await api("POST", "api", "queue", body={"kernel_id": kernel_id, "code": "1/0"})
    assert status == 202
    done = await api("GET", "api", "queue", failed["entries"][0]["id"], params={"wait": "60"})
    assert done[0] == 200 and done[1]["state"] == "error", done
    assert_documented("/api/queue/{entry_id}", "get", 200, done[1])
    assert done[1]["error"]["ename"] == "ZeroDivisionError"

    status, listed = await api("GET", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200 and len(listed["entries"]) == 2
    assert_documented("/api/queue", "get", 200, listed)
    assert all("outputs" not in e for e in listed["entries"])

    status, error = await api("DELETE", "api", "queue", entry_id)
    assert status == 409
    assert_documented("/api/queue/{entry_id}", "delete", 409, error)

    status, cleared = await api("DELETE", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200
    assert_documented("/api/queue", "delete", 200, cleared)


async def test_input_answers_match_the_document(api: Any, kernel_id: str) -> None:
    status, body = await api(
        "POST", "api", "queue", body={"kernel_id": kernel_id, "code": "print(input('name? '))"}
    )
    assert status == 202
    entry_id = body["entries"][0]["id"]
    for _ in range(600):  # the state changes when the kernel's input_request arrives
        status, entry = await api("GET", "api", "queue", entry_id)
        if entry["state"] == "awaiting_input":
            break
        await asyncio.sleep(0.05)
    assert entry["state"] == "awaiting_input", entry
    assert_documented("/api/queue/{entry_id}", "get", 200, entry)
    assert entry["input_request"] == {"prompt": "name? ", "password": False}

    status, error = await api("POST", "api", "queue", entry_id, "input", body={"value": 3})
    assert status == 400
    assert_documented("/api/queue/{entry_id}/input", "post", 400, error)

    status, entry = await api("POST", "api", "queue", entry_id, "input", body={"value": "ada"})
    assert status == 200
    assert_documented("/api/queue/{entry_id}/input", "post", 200, entry)
    status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
    # The answer is echoed as JupyterLab writes it (a stdin stream), then what the code printed.
    assert entry["state"] == "done", entry
    assert [(o["name"], o["text"]) for o in entry["outputs"]] == [
        ("stdin", "name?  ada\n"),
        ("stdout", "ada\n"),
    ], entry

    status, error = await api("POST", "api", "queue", entry_id, "input", body={"value": "late"})
    assert status == 409
    assert_documented("/api/queue/{entry_id}/input", "post", 409, error)


async def test_cancel_answers_match_the_document(api: Any, kernel_id: str) -> None:
    status, body = await api(
        "POST", "api", "queue", body={"kernel_id": kernel_id, "code": "import time; time.sleep(30)"}
    )
    assert status == 202
    running = body["entries"][0]["id"]
    status, body = await api("POST", "api", "queue", body={"kernel_id": kernel_id, "code": "1"})
    queued = body["entries"][0]
    assert_documented("/api/queue", "post", 202, body)

    status, entry = await api("DELETE", "api", "queue", queued["id"])
    assert status == 200 and entry["state"] == "cancelled", entry
    assert_documented("/api/queue/{entry_id}", "delete", 200, entry)
    status, cleared = await api("DELETE", "api", "queue", params={"kernel_id": kernel_id})
    assert status == 200 and cleared["cancelled"] == [running], cleared
    assert_documented("/api/queue", "delete", 200, cleared)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("{not json", 400),
        ("[1, 2]", 400),
        ({"code": "1"}, 400),  # neither kernel_id nor path
        ({"kernel_id": "k", "code": "1", "cell_ids": ["a"]}, 400),  # two of code/cell_ids/select
        ({"kernel_id": "k", "code": "1", "colour": "blue"}, 400),  # unknown field
        ({"kernel_id": "k", "code": 5}, 400),
        ({"kernel_id": "k", "cell_ids": []}, 400),
        ({"kernel_id": "no-such-kernel", "code": "1"}, 404),
        ({"kernel_id": "k", "code": "x" * 5000}, 413),  # over max_code_bytes (4096 here)
    ],
)
async def test_post_errors_match_the_document(api: Any, body: Any, status: int) -> None:
    code, error = await api("POST", "api", "queue", body=body)
    assert code == status, error
    assert_documented("/api/queue", "post", status, error)
    assert error["message"]


async def test_oversized_body_answers_413(api: Any) -> None:
    body = json.dumps({"kernel_id": "k", "code": "1", "path": "p" * 20000})
    code, error = await api("POST", "api", "queue", body=body)
    assert code == 413, error
    assert_documented("/api/queue", "post", 413, error)


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "template"),
    [
        ("GET", "api/queue/no-such-entry", None, 404, "/api/queue/{entry_id}"),
        ("DELETE", "api/queue/no-such-entry", None, 404, "/api/queue/{entry_id}"),
        ("GET", "api/queue/no-such-entry", {"wait": "61"}, 400, "/api/queue/{entry_id}"),
        ("GET", "api/queue", {"state": "sleeping"}, 400, "/api/queue"),
        ("DELETE", "api/queue", None, 400, "/api/queue"),
        ("DELETE", "api/queue", {"kernel_id": "no-such-kernel"}, 404, "/api/queue"),
    ],
)
async def test_error_answers_match_the_document(
    api: Any, method: str, path: str, params: Any, status: int, template: str
) -> None:
    code, error = await api(method, *path.split("/"), params=params)
    assert code == status, error
    assert_documented(template, method, status, error)


async def test_unauthenticated_requests_get_403(api: Any) -> None:
    for method, path, template in [
        ("GET", "api/queue", "/api/queue"),
        ("POST", "api/queue", "/api/queue"),
        ("GET", "api/queue/x", "/api/queue/{entry_id}"),
        ("GET", "api/kernels/status", "/api/kernels/status"),
        ("GET", "api/kernels/x/status", "/api/kernels/{kernel_id}/status"),
        ("GET", "api/canvas/layout/a.ipynb", "/api/canvas/layout/{path}"),
    ]:
        code, error = await api(
            method,
            *path.split("/"),
            body={} if method == "POST" else None,
            headers={"Authorization": "token wrong"},
        )
        assert code == 403, (method, path, error)
        assert_documented(template, method, 403, error)


async def test_event_frames_match_the_document(api: Any, kernel_id: str, jp_ws_fetch: Any) -> None:
    status, body = await api(
        "POST", "api", "queue", body={"kernel_id": kernel_id, "code": RICH_CODE}
    )
    assert status == 202
    entry_id = body["entries"][0]["id"]
    status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
    assert entry["state"] == "done", entry

    ws = await jp_ws_fetch("api", "queue", "events", params={"since": "0"})
    frames: list[dict[str, Any]] = []
    try:
        while not any(
            f["type"] == "entry" and f["entry"]["id"] == entry_id and f["entry"]["state"] == "done"
            for f in frames
        ):
            frames.append(json.loads(await asyncio.wait_for(ws.read_message(), 30)))
    finally:
        ws.close()
    schema = validator("/components/schemas/QueueEvent")
    for frame in frames:
        errors = list(schema.iter_errors(frame))
        assert not errors, f"{frame} does not match QueueEvent: {[e.message for e in errors]}"
    types = {f["type"] for f in frames}
    assert {"entry", "output", "clear_output"} <= types, types
    outputs = [f["output"]["output_type"] for f in frames if f["type"] == "output"]
    assert "update_display_data" in outputs, outputs


async def test_kernel_status_answers_match_the_document(api: Any, kernel_id: str) -> None:
    status, model = await api(
        "GET", "api", "kernels", kernel_id, "status", params={"wait_for": "idle", "timeout": "60"}
    )
    assert status == 200 and model["execution_state"] == "idle", model
    assert_documented("/api/kernels/{kernel_id}/status", "get", 200, model)
    status, listed = await api("GET", "api", "kernels", "status")
    assert status == 200 and kernel_id in [k["kernel_id"] for k in listed["kernels"]]
    assert_documented("/api/kernels/status", "get", 200, listed)
    for params, expected in [({"wait_for": "asleep"}, 400), ({"timeout": "-1"}, 400)]:
        status, error = await api("GET", "api", "kernels", kernel_id, "status", params=params)
        assert status == expected, error
        assert_documented("/api/kernels/{kernel_id}/status", "get", expected, error)
    status, error = await api("GET", "api", "kernels", "no-such-kernel", "status")
    assert status == 404, error
    assert_documented("/api/kernels/{kernel_id}/status", "get", 404, error)


@pytest.fixture
def canvas_notebook(jp_root_dir: Path) -> str:
    """A notebook with a heading and cells under it."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# A", id="head"),
        nbformat.v4.new_code_cell("x = 1", id="code-x"),
        nbformat.v4.new_markdown_cell("## B", id="sub"),
        nbformat.v4.new_code_cell("y = 2", id="code-y"),
    ]
    (jp_root_dir / "sub dir").mkdir()
    nbformat.write(notebook, jp_root_dir / "sub dir" / "canvas.ipynb")
    (jp_root_dir / "notes.txt").write_text("not a notebook")
    return "sub dir/canvas.ipynb"


async def test_canvas_answers_match_the_document(api: Any, canvas_notebook: str) -> None:
    layout_path = ("api", "canvas", "layout", *canvas_notebook.split("/"))
    template = "/api/canvas/layout/{path}"
    status, layout = await api("GET", *layout_path)
    assert status == 200, layout
    assert_documented(template, "get", 200, layout)
    assert layout["pc_graph"]["head"] == ["code-x", "sub"]

    status, layout = await api("PATCH", *layout_path, body={"cells": {"code-x": {"x": 40.5}}})
    assert status == 200, layout
    assert_documented(template, "patch", 200, layout)
    assert layout["cells"]["code-x"]["x"] == 40.5

    for body, expected in [
        ({"cells": {"code-x": {"x": "left"}}}, 400),
        ({"cells": {}}, 400),
        ({"cells": {"code-x": {"x": 1}}, "colour": "red"}, 400),
        ({"cells": {"no-such-cell": {"x": 1}}}, 404),
    ]:
        status, error = await api("PATCH", *layout_path, body=body)
        assert status == expected, (body, error)
        assert_documented(template, "patch", expected, error)
    for path, expected in [("missing.ipynb", 404), ("notes.txt", 400)]:
        status, error = await api("GET", "api", "canvas", "layout", path)
        assert status == expected, (path, error)
        assert_documented(template, "get", expected, error)


async def test_whole_stream_answers_match_the_document(
    api: Any, jp_fetch: Any, canvas_notebook: str
) -> None:
    code = "print('x' * 5000)"
    status, body = await api("POST", "api", "queue", body={"path": canvas_notebook, "code": code})
    assert status == 202, body
    entry_id = body["entries"][0]["id"]
    status, entry = await api("GET", "api", "queue", entry_id, params={"wait": "60"})
    assert entry["state"] == "done", entry
    assert "were cut" in entry["outputs"][0]["text"]
    template = "/api/queue/{entry_id}/streams/{index}"

    response = await jp_fetch("api", "queue", entry_id, "streams", "0")
    assert response.code == 200
    documented = document()["paths"][template]["get"]["responses"]["200"]["content"]
    media_type = response.headers["Content-Type"].split(";")[0]
    assert media_type in documented, media_type
    assert response.body.decode() == "x" * 5000 + "\n"

    status, error = await api("GET", "api", "queue", entry_id, "streams", "1")
    assert status == 404, error
    assert_documented(template, "get", 404, error)
    status, error = await api("GET", "api", "queue", entry_id, "streams", "-1")
    assert status == 400, error
    assert_documented(template, "get", 400, error)
