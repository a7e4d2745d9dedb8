"""What every jupyter_canvas handler shares: typed access to the engines, JSON helpers."""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

if TYPE_CHECKING:
    from .app import CanvasServices

SERVICES_KEY = "jupyter_canvas.services"

#: How deeply a request body may nest arrays and objects (no route needs more than a few).
MAX_JSON_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_path(path: str) -> str:
    """An API path checked (relative, no ``..``) and normalized (``./a.ipynb`` is
    ``a.ipynb``), as ``POST /api/queue`` and the ``path`` filters use it; else 400."""
    if not path or "\0" in path or "\\" in path:
        raise web.HTTPError(400, f"{path!r} is not a valid notebook path")
    if path.startswith("/") or os.path.splitdrive(path)[0]:
        raise web.HTTPError(400, f"{path!r}: give the path relative to the server root")
    if ".." in path.split("/"):
        raise web.HTTPError(400, f"{path!r}: a notebook path may not contain '..'")
    return posixpath.normpath(path)


def parse_json(body: bytes | str) -> Any:
    """Parse a request body as JSON, or answer 400 saying what is wrong.

    Refused: invalid UTF-8, invalid JSON, nesting deeper than :data:`MAX_JSON_DEPTH`, and a
    lone surrogate (``"\\ud800"``) in any string or key: it is not text, and would fail
    later when encoded (in a kernel message, the journal, a notebook).
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise web.HTTPError(400, f"request body is not valid UTF-8: {err}") from None
    try:
        data = json.loads(body)
    except RecursionError:
        raise web.HTTPError(
            400, f"request body nests deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as err:
        raise web.HTTPError(400, f"request body is not valid JSON: {err}") from None
    # Walked without recursion: depth and lone surrogates.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise web.HTTPError(
                    400, "request body holds a lone surrogate (\\ud800-\\udfff): not text"
                )
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise web.HTTPError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    return data


class CanvasHandlerMixin:
    """Gives a handler typed properties for the extension's engines."""

    settings: dict[str, Any]

    @property
    def services(self) -> CanvasServices:
        """The extension's engines, created by :class:`~jupyter_canvas.app.CanvasApp`."""
        return self.settings[SERVICES_KEY]  # type: ignore[no-any-return]


class CanvasAPIHandler(CanvasHandlerMixin, ExtensionHandlerMixin, APIHandler):
    """A JSON API handler of the extension; errors are written by APIHandler."""

    def user_name(self) -> str:
        """The authenticated user's name, as the contract's ``owner`` and reasons use it."""
        user = self.current_user
        name = getattr(user, "username", None) or getattr(user, "name", None)
        return str(name or "anonymous")

    def user_display_name(self) -> str:
        """The authenticated user's name for people to read (the identity provider's
        ``display_name``), as reasons name who cancelled; the unique name if it has none."""
        display = getattr(self.current_user, "display_name", None)
        return str(display or self.user_name())

    def json_body(self) -> dict[str, Any]:
        """Parse the request body as a JSON object, or answer 400 saying what is wrong."""
        limit = self.services.config.max_body_bytes
        body = self.request.body
        if limit and len(body) > limit:
            raise web.HTTPError(
                413,
                f"request body is {len(body)} bytes; the limit is {limit} "
                "(CanvasApp.max_body_bytes)",
            )
        if not body:
            raise web.HTTPError(400, "request body is empty: send a JSON object")
        data = parse_json(body)
        if not isinstance(data, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        return data

    def write_json(self, model: Any, status: int = 200) -> None:
        """Write ``model`` as the JSON answer with ``status``."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=str))

    def float_argument(self, name: str, maximum: float) -> float | None:
        """Read a query argument as seconds in ``[0, maximum]``, or answer 400."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be a number of seconds, got {raw!r}") from None
        if not (0 <= value <= maximum) or value != value:
            raise web.HTTPError(400, f"{name} must be between 0 and {maximum:g} seconds, got {raw}")
        return value
