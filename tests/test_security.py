"""Security of every route: authentication, authorization, Origin, and paths out of the root.

The routes are not listed by hand: :func:`canvas_routes` walks the server's own tornado rules
and keeps every handler whose module is part of jupyter_canvas. ``CASES`` holds one request
per route and HTTP method (``WS`` for a websocket) with the permission the contract gives it,
and ``test_every_route_has_a_case`` fails when a route or method has none, so a new route
cannot escape the checks below.
"""

# Fixtures are imported from test_canvas_support, so their names are "redefined" here.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import nbformat
import pytest
from jupyter_server.auth.authorizer import Authorizer
from route_support import is_ours
from test_canvas_support import (  # noqa: F401  (fixtures)
    canvas_manager,
    code,
    jp_server_config,
    md,
    room_peer,
    stored_places,
    wait_until,
    write_notebook,
)
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.routing import Router
from tornado.websocket import WebSocketHandler, websocket_connect

SERVICES_KEY = "jupyter_canvas.services"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
TERMINAL = {"done", "error", "cancelled"}


# -- the routes, from the server itself -----------------------------------------------------------
def canvas_routes(serverapp: Any) -> list[tuple[str, type]]:
    """``(regex, handler class)`` of every jupyter_canvas route the server serves."""
    found: list[tuple[str, type]] = []

    def walk(router: Any) -> None:
        for rule in getattr(router, "rules", []):
            target = rule.target
            if isinstance(target, Router):
                walk(target)
            elif isinstance(target, type) and is_ours(target):
                found.append((rule.matcher.regex.pattern, target))

    walk(serverapp.web_app.default_router)
    return found


def route_methods(handler: type) -> list[str]:
    """The methods a handler serves: ``WS`` for a websocket, else the HTTP methods it defines."""
    if issubclass(handler, WebSocketHandler):
        return ["WS"]
    return [
        method
        for method in HTTP_METHODS
        if getattr(handler, method.lower()) is not getattr(web.RequestHandler, method.lower())
    ]


# -- one request per route and method -------------------------------------------------------------
@dataclass
class Context:
    """What the requests refer to: a kernel, a finished entry, a notebook and its file id."""

    kernel_id: str
    entry_id: str
    notebook: str
    file_id: str


@dataclass(frozen=True)
class Case:
    """A request to one route with one method, and the permission the contract gives it."""

    resource: str
    action: str
    #: URL path (after the base URL) and query, from the context.
    url: Callable[[Context], str]
    #: JSON body, from the context (POST/PATCH only).
    body: Callable[[Context], Any] | None = None


CASES: dict[tuple[str, str], Case] = {
    ("QueueHandler", "GET"): Case("kernels", "read", lambda c: "api/queue"),
    ("QueueHandler", "POST"): Case(
        "kernels",
        "execute",
        lambda c: "api/queue",
        lambda c: {"kernel_id": c.kernel_id, "code": "1"},
    ),
    ("QueueHandler", "DELETE"): Case(
        "kernels", "execute", lambda c: f"api/queue?kernel_id={c.kernel_id}"
    ),
    ("EntryHandler", "GET"): Case("kernels", "read", lambda c: f"api/queue/{c.entry_id}"),
    ("EntryHandler", "DELETE"): Case("kernels", "execute", lambda c: f"api/queue/{c.entry_id}"),
    # A run id nobody made: the permission is checked before the run is looked up (404).
    ("RunHandler", "GET"): Case("kernels", "read", lambda c: "api/queue/runs/no-such-run"),
    ("InputHandler", "POST"): Case(
        "kernels", "execute", lambda c: f"api/queue/{c.entry_id}/input", lambda c: {"value": "v"}
    ),
    ("StreamHandler", "GET"): Case(
        "kernels", "read", lambda c: f"api/queue/{c.entry_id}/streams/0"
    ),
    ("OutputHandler", "GET"): Case(
        "kernels", "read", lambda c: f"api/queue/{c.entry_id}/outputs/0"
    ),
    ("QueueEventsHandler", "WS"): Case("kernels", "read", lambda c: "api/queue/events"),
    ("KernelStatusListHandler", "GET"): Case("kernels", "read", lambda c: "api/kernels/status"),
    ("KernelStatusHandler", "GET"): Case(
        "kernels", "read", lambda c: f"api/kernels/{c.kernel_id}/status"
    ),
    ("CanvasLayoutHandler", "GET"): Case(
        "contents", "read", lambda c: f"api/canvas/layout/{quote(c.notebook)}"
    ),
    ("CanvasLayoutHandler", "PATCH"): Case(
        "contents",
        "write",
        lambda c: f"api/canvas/layout/{quote(c.notebook)}",
        lambda c: {"cells": {"x": {"x": 40}}},
    ),
    ("CanvasRoomHandler", "WS"): Case("contents", "read", lambda c: f"api/canvas/room/{c.file_id}"),
}


# -- a switchable authorizer ----------------------------------------------------------------------
@dataclass
class Policy:
    """What :class:`PolicyAuthorizer` allows right now: everything but ``refused``, or
    (when ``only`` is set) nothing but ``only``."""

    refused: set[tuple[str, str]] = field(default_factory=set)
    only: set[tuple[str, str]] | None = None

    def allows(self, resource: str, action: str) -> bool:
        if self.only is not None:
            return (resource, action) in self.only
        return (resource, action) not in self.refused


class PolicyAuthorizer(Authorizer):
    """An Authorizer whose policy a test changes between requests."""

    policy = Policy()

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return self.policy.allows(resource, action)


@pytest.fixture
def policy(jp_serverapp: Any) -> Iterator[Policy]:
    """Install a :class:`PolicyAuthorizer`; the test sets what it allows."""
    settings = jp_serverapp.web_app.settings
    original = settings["authorizer"]
    authorizer = PolicyAuthorizer(parent=jp_serverapp, identity_provider=original.identity_provider)
    authorizer.policy = Policy()
    settings["authorizer"] = authorizer
    yield authorizer.policy
    settings["authorizer"] = original


# -- a client with full control over the URL ------------------------------------------------------
@dataclass
class Answer:
    code: int
    body: Any


class Client:
    """Raw requests to the test server: the URL is sent as written (``..`` and all)."""

    def __init__(self, port: int, base_url: str, token: str) -> None:
        self.host = f"localhost:{port}"
        self.base_url = base_url
        self.token = token
        self.http = AsyncHTTPClient()

    def headers(self, auth: bool, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"token {self.token}"} if auth else {}
        headers.update(extra or {})
        return headers

    async def send(
        self,
        method: str,
        url: str,
        body: Any = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = None if body is None else json.dumps(body)
        return await self.send_text(method, url, data, auth, headers)

    async def send_text(
        self,
        method: str,
        url: str,
        data: str | None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send ``data`` as the body, exactly as given."""
        if data is None and method in ("POST", "PATCH", "PUT"):
            data = ""
        request = HTTPRequest(
            f"http://{self.host}{self.base_url}{url}",
            method=method,
            body=data,
            headers=self.headers(auth, headers),
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=60,
        )
        response = await self.http.fetch(request, raise_error=False)
        text = response.body.decode() if response.body else ""
        try:
            return Answer(response.code, json.loads(text) if text else None)
        except ValueError:
            return Answer(response.code, text)

    async def connect(
        self, url: str, auth: bool = True, headers: dict[str, str] | None = None
    ) -> Answer:
        """Open a websocket and close it again: 101 when let in, else the refusal's status."""
        request = HTTPRequest(
            f"ws://{self.host}{self.base_url}{url}",
            headers=self.headers(auth, headers),
            request_timeout=60,
        )
        try:
            connection = await websocket_connect(request)
        except HTTPClientError as err:
            return Answer(err.code, err.response.body.decode() if err.response else "")
        connection.close()
        return Answer(101, None)

    async def request(self, case: Case, context: Context, method: str, **kw: Any) -> Answer:
        """Send ``case`` (a websocket connect for ``WS``)."""
        url = case.url(context)
        if method == "WS":
            return await self.connect(url, **kw)
        body = case.body(context) if case.body is not None else None
        return await self.send(method, url, body, **kw)

    async def login_cookie(self) -> str:
        """A browser's login: the token traded for the server's login cookie."""
        response = await self.http.fetch(
            HTTPRequest(
                f"http://{self.host}{self.base_url}api/status",
                headers={"Authorization": f"token {self.token}"},
            )
        )
        cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
        assert cookies, "the server set no login cookie"
        return "; ".join(cookies)


@pytest.fixture
def client(jp_serverapp: Any, jp_fetch: Any, jp_http_port: int, jp_base_url: str) -> Client:
    # jp_fetch is requested for its side effect: it starts the HTTP server on jp_http_port.
    return Client(jp_http_port, jp_base_url, jp_serverapp.identity_provider.token)


@pytest.fixture
def context(
    jp_serverapp: Any, jp_root_dir: Path, canvas_manager: Any, kernel_id: str, jp_asyncio_loop: Any
) -> Context:
    """A kernel, a finished entry on it, and a notebook with its file id."""
    write_notebook(jp_root_dir, "secure.ipynb", [md("A", "# A"), code("x", "1"), code("y", "2")])
    queue = jp_serverapp.web_app.settings[SERVICES_KEY].queue
    from jupyter_canvas.queue.models import Entry

    async def run_one() -> Any:
        (entry,) = queue.submit([Entry(kernel_id=kernel_id, code="'ready'", owner="test")])
        await entry.wait_finished(60)
        return entry

    entry = jp_asyncio_loop.run_until_complete(run_one())
    assert entry.state.value == "done", entry
    file_id = str(canvas_manager.shared.file_id("secure.ipynb"))
    return Context(kernel_id, entry.id, "secure.ipynb", file_id)


def refused(answer: Answer) -> bool:
    return answer.code == 403


# -- the walk -------------------------------------------------------------------------------------
def test_every_route_has_a_case(jp_serverapp: Any, jp_base_url: str) -> None:
    routes = canvas_routes(jp_serverapp)
    assert routes, "no jupyter_canvas route found in the server's rules"
    walked = {
        (handler.__name__, method) for _, handler in routes for method in route_methods(handler)
    }
    missing = walked - set(CASES)
    assert not missing, f"routes without a security case (add them to CASES): {sorted(missing)}"
    stale = set(CASES) - walked
    assert not stale, f"cases for routes the server does not have: {sorted(stale)}"
    # One route per handler, so a case per handler and method is a case per route...
    names = [handler.__name__ for _, handler in routes]
    assert len(names) == len(set(names)), f"a handler serves two routes: extend CASES {names}"
    # ...and each case's URL reaches its route (the first rule that matches, as tornado does).
    context = Context("K", "E", "dir/n b.ipynb", "F")
    for (name, _method), case in CASES.items():
        path = jp_base_url + case.url(context).split("?", 1)[0]
        matched = next((rule for rule in routes if re.match(rule[0], path)), None)
        assert matched is not None and matched[1].__name__ == name, (name, path, matched)


async def test_unauthenticated_requests_are_refused_on_every_route(
    jp_serverapp: Any, client: Client, context: Context
) -> None:
    queue = jp_serverapp.web_app.settings[SERVICES_KEY].queue
    before = len(queue.list_entries())
    for route in canvas_routes(jp_serverapp):
        handler = route[1]
        for method in route_methods(handler):
            case = CASES[handler.__name__, method]
            for headers in ({}, {"Authorization": "token not-the-token"}):
                answer = await client.request(case, context, method, auth=False, headers=headers)
                assert refused(answer), (handler.__name__, method, headers, answer)
    assert len(queue.list_entries()) == before  # nothing was queued
    # The same requests with the token are let in (none of them answers 403).
    for (name, method), case in CASES.items():
        answer = await client.request(case, context, method)
        assert not refused(answer), (name, method, answer)


async def test_each_route_needs_exactly_its_permission(
    jp_serverapp: Any, client: Client, context: Context, policy: Policy
) -> None:
    for (name, method), case in CASES.items():
        permission = (case.resource, case.action)
        policy.only, policy.refused = None, {permission}
        answer = await client.request(case, context, method)
        assert refused(answer), (name, method, "refused", permission, answer)
        if method != "WS":
            # The refusal names what is missing.
            message = answer.body["message"]
            assert case.action in message and case.resource in message, (name, method, message)
        policy.only, policy.refused = {permission}, set()
        answer = await client.request(case, context, method)
        assert not refused(answer), (name, method, "allowed only", permission, answer)


async def test_refused_execute_stops_queueing_and_cancelling_not_reading(
    jp_serverapp: Any, client: Client, context: Context, policy: Policy
) -> None:
    kernel_id = context.kernel_id
    running = await client.send(
        "POST", "api/queue", {"kernel_id": kernel_id, "code": "import time; time.sleep(30)"}
    )
    queued = await client.send("POST", "api/queue", {"kernel_id": kernel_id, "code": "'later'"})
    assert running.code == queued.code == 202
    running_id = running.body["entries"][0]["id"]
    queued_id = queued.body["entries"][0]["id"]

    policy.refused = {("kernels", "execute")}
    answer = await client.send("POST", "api/queue", {"kernel_id": kernel_id, "code": "'no'"})
    assert answer.code == 403 and "execute" in answer.body["message"]
    answer = await client.send("POST", "api/queue", {"path": context.notebook, "select": "all"})
    assert answer.code == 403
    assert (await client.send("DELETE", f"api/queue/{queued_id}")).code == 403
    assert (await client.send("DELETE", f"api/queue/{running_id}")).code == 403
    assert (await client.send("DELETE", f"api/queue?kernel_id={kernel_id}")).code == 403
    assert (await client.send("DELETE", f"api/queue?path={context.notebook}")).code == 403
    answer = await client.send("POST", f"api/queue/{running_id}/input", {"value": "v"})
    assert answer.code == 403

    # Reading still works, and the refused requests changed nothing.
    listing = await client.send("GET", f"api/queue?kernel_id={kernel_id}")
    assert listing.code == 200
    states = {e["id"]: e["state"] for e in listing.body["entries"]}
    assert states[running_id] == "running" and states[queued_id] == "queued"
    assert len(states) == 3  # the setup entry, running and queued: nothing new
    assert (await client.send("GET", f"api/queue/{queued_id}")).code == 200
    status = await client.send("GET", f"api/kernels/{kernel_id}/status")
    assert status.code == 200 and status.body["queue"]["queued"] == 1
    assert (await client.send("GET", "api/kernels/status")).code == 200
    assert (await client.connect("api/queue/events")).code == 101
    assert (await client.send("GET", f"api/canvas/layout/{context.notebook}")).code == 200

    policy.refused = set()
    assert (await client.send("DELETE", f"api/queue?kernel_id={kernel_id}")).code == 200


async def test_refused_contents_write_stops_layout_changes(
    jp_serverapp: Any,
    client: Client,
    context: Context,
    policy: Policy,
    jp_ws_fetch: Any,
    jp_root_dir: Path,
) -> None:
    notebook = jp_root_dir / context.notebook
    layout_url = f"api/canvas/layout/{context.notebook}"
    default_place = (await client.send("GET", layout_url)).body["cells"]["x"]
    policy.refused = {("contents", "write")}
    answer = await client.send("PATCH", layout_url, {"cells": {"x": {"x": 500}}})
    assert answer.code == 403 and "write" in answer.body["message"]
    # A peer of the room may follow but its moves are dropped.
    async with room_peer(jp_ws_fetch, context.file_id) as peer:
        peer.move("x", x=777)
        await wait_until(lambda: peer.channel.other_messages, what="permission denied")
    layout = await client.send("GET", layout_url)
    assert layout.code == 200 and layout.body["cells"]["x"] == default_place
    await asyncio.sleep(0.5)
    assert "x" not in stored_places(notebook)
    # Queueing (kernels) is not affected by a contents refusal.
    answer = await client.send("POST", "api/queue", {"kernel_id": context.kernel_id, "code": "1"})
    assert answer.code == 202

    policy.refused = set()
    answer = await client.send("PATCH", layout_url, {"cells": {"x": {"x": 500}}})
    assert answer.code == 200 and answer.body["cells"]["x"]["x"] == 500


# -- Origin ---------------------------------------------------------------------------------------
async def test_foreign_origin_is_refused_on_every_websocket(
    jp_serverapp: Any, client: Client, context: Context, jp_http_port: int
) -> None:
    # A browser authenticates a websocket with its login cookie and cannot forge Origin:
    # that is the request the check protects (jupyter_server skips it for a token header).
    browser = {"Cookie": await client.login_cookie()}
    websockets = [
        handler for _, handler in canvas_routes(jp_serverapp) if "WS" in route_methods(handler)
    ]
    assert len(websockets) >= 2
    for handler in websockets:
        case = CASES[handler.__name__, "WS"]
        for origin in ("http://evil.example", f"http://localhost:{jp_http_port + 1}", "null"):
            answer = await client.request(
                case, context, "WS", auth=False, headers={**browser, "Origin": origin}
            )
            assert answer.code == 403, (handler.__name__, origin, answer)
        own = {**browser, "Origin": f"http://localhost:{jp_http_port}"}
        answer = await client.request(case, context, "WS", auth=False, headers=own)
        assert answer.code == 101, (handler.__name__, answer)


async def test_cross_site_rest_writes_are_refused(
    jp_serverapp: Any, client: Client, context: Context
) -> None:
    # A page on another site can make the browser send its cookie, but neither a matching
    # Origin (jupyter_server answers 404) nor the XSRF token (403).
    cookie = {"Cookie": await client.login_cookie()}
    for (name, method), case in CASES.items():
        if method in ("WS", "GET"):
            continue
        for headers in ({**cookie, "Origin": "http://evil.example"}, cookie):
            answer = await client.request(case, context, method, auth=False, headers=headers)
            assert answer.code in (403, 404), (name, method, headers, answer)
    queue = jp_serverapp.web_app.settings[SERVICES_KEY].queue
    assert [e.id for e, _ in queue.list_entries()] == [context.entry_id]


# -- paths out of the root ------------------------------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path, jp_root_dir: Path) -> Path:
    """A notebook outside the root (running it would create a marker file), and links to it."""
    directory = tmp_path / "outside"
    directory.mkdir()
    marker = tmp_path / "escaped"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(f"open({str(marker)!r}, 'w').close()", id="evil")]
    )
    path = directory / "outside.ipynb"
    path.write_text(nbformat.writes(notebook), encoding="utf-8")
    path.with_suffix(".orig").write_bytes(path.read_bytes())
    (jp_root_dir / "link.ipynb").symlink_to(path)
    (jp_root_dir / "linkdir").symlink_to(directory, target_is_directory=True)
    (jp_root_dir / "sub").mkdir()
    return path


def escaping_paths(outside: Path) -> list[str]:
    absolute = str(outside)
    return [
        "../outside/outside.ipynb",
        "sub/../../outside/outside.ipynb",
        "./../outside/outside.ipynb",
        absolute,
        "/" + absolute.lstrip("/"),
        "//" + absolute.lstrip("/"),
        "link.ipynb",
        "linkdir/outside.ipynb",
        "sub/../link.ipynb",
    ]


def untouched(outside: Path) -> None:
    """The outside notebook is as written and none of its code ran."""
    assert outside.read_bytes() == outside.with_suffix(".orig").read_bytes()
    assert not (outside.parent.parent / "escaped").exists(), "code of an outside notebook ran"


async def test_queue_refuses_notebooks_outside_the_root(
    jp_serverapp: Any, client: Client, context: Context, outside: Path
) -> None:
    queue = jp_serverapp.web_app.settings[SERVICES_KEY].queue
    for path in escaping_paths(outside):
        for request in (
            {"path": path, "select": "all"},
            {"path": path, "cell_ids": ["evil"]},
            {"path": path, "code": "1", "cell_id": "evil"},
            {"path": path, "code": "1", "kernel_id": context.kernel_id},
        ):
            answer = await client.send("POST", "api/queue", request)
            assert answer.code in (400, 404), (request, answer)
            assert "path" in answer.body["message"] or "root" in answer.body["message"]
    assert [e.id for e, _ in queue.list_entries()] == [context.entry_id]
    sessions = await client.send("GET", "api/sessions")
    assert sessions.body == []  # no session (and no kernel) was started for them
    # The filters are refused as POST refuses the path (or name no file: match nothing); either
    # way they touch nothing.
    for path in escaping_paths(outside):
        for method in ("GET", "DELETE"):
            answer = await client.send(method, "api/queue?" + urlencode({"path": path}))
            if answer.code == 400:
                assert "path" in answer.body["message"], answer
            else:
                assert answer.code == 200, answer
                assert answer.body.get("entries", []) == answer.body.get("cancelled", []) == []
    assert [e.id for e, _ in queue.list_entries()] == [context.entry_id]
    untouched(outside)


async def test_layout_refuses_notebooks_outside_the_root(
    client: Client, context: Context, outside: Path
) -> None:
    moves = {"cells": {"evil": {"x": 1}}}
    for path in escaping_paths(outside):
        for url in (
            "api/canvas/layout/" + path,
            "api/canvas/layout/" + quote(path, safe=""),
            "api/canvas/layout/" + path.replace("..", "%2E%2E"),
        ):
            for method, body in (("GET", None), ("PATCH", moves)):
                answer = await client.send(method, url, body)
                assert answer.code in (400, 404), (method, url, answer)
                assert "path" in answer.body["message"] or "root" in answer.body["message"]
    untouched(outside)


async def test_room_refuses_a_file_id_outside_the_root(
    client: Client, context: Context, outside: Path, canvas_manager: Any
) -> None:
    # The file id service indexes whatever path it is given: a link out gets an id too.
    for path in ("link.ipynb", "linkdir/outside.ipynb"):
        file_id = canvas_manager.shared.file_id(path)
        answer = await client.connect(f"api/canvas/room/{file_id}")
        assert answer.code == 404, (path, answer)
    untouched(outside)
