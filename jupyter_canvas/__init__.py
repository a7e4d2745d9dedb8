"""jupyter_canvas: a server-side execution layer and a shared canvas for Jupyter."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CanvasApp

    return [{"module": "jupyter_canvas.app", "app": CanvasApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-canvas"}]
