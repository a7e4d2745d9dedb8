"""Which routes of a server are jupyter_canvas's own (for the tests that walk every route)."""

from __future__ import annotations


def is_ours(handler: type) -> bool:
    """A route of the extension: its handler is ours, and not a subclass of another package's
    handler put on that package's route (the collaboration rooms' TCP_NODELAY handler, whose
    authentication and permissions are jupyter_server_ydoc's)."""
    if not handler.__module__.startswith("jupyter_canvas"):
        return False
    return all(
        base.__module__.startswith(("jupyter_canvas", "jupyter_server.", "tornado"))
        or base.__module__ in ("builtins", "abc", "typing")
        for base in handler.__mro__[1:]
    )
