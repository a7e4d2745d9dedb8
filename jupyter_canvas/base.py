"""What every jupyter_canvas handler shares: typed access to the engines, JSON helpers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

if TYPE_CHECKING:
    from .app import CanvasServices

SERVICES_KEY = "jupyter_canvas.services"


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
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise web.HTTPError(400, f"request body is not valid JSON: {err}") from None
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
