"""Where a kernel's output messages go, for the entry whose execution they belong to.

One :class:`KernelOutputs` per kernel process. An output message of the running entry goes,
in this order:

1. when it carries a display id, into every output shown with that id by any entry run on
   the kernel (:mod:`~jupyter_canvas.queue.displays`); an ``update_display_data`` stops here;
2. into the Output widget that captures that execution, when one does
   (:mod:`~jupyter_canvas.queue.widgets`), and nowhere else;
3. into the entry's own outputs.

Every change is published (``publish(entry, msg_type, content)``) for the entry it changed;
the notebook writer follows each entry's :class:`~jupyter_canvas.outputs.OutputList`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .displays import DisplayRegistry, display_id_of
from .models import Entry
from .widgets import WidgetTracker

#: What JupyterLab's stdin widget shows instead of a password.
PASSWORD_MASK = "\u00b7" * 8

Publish = Callable[[Entry, str, dict[str, Any]], None]


class KernelOutputs:
    """Routes one kernel's output messages (see the module docstring)."""

    def __init__(self, publish: Publish, widgets: WidgetTracker) -> None:
        self._publish = publish
        self.displays = DisplayRegistry()
        self.widgets = widgets

    def observe(self, msg: dict[str, Any]) -> None:
        """Follow any IOPub message of the kernel (widget comms, whoever caused them)."""
        self.widgets.observe(msg)

    def apply(
        self,
        entry: Entry,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
    ) -> None:
        """Apply one output message (``OUTPUT_MSG_TYPES``) sent for ``entry``'s execution
        (``parent``: the header of its request)."""
        display_id = display_id_of(msg_type, content)
        if display_id is not None:
            for holder in self.displays.holders(display_id):
                if holder is not entry and holder.outputs.update_display(display_id, content):
                    self._publish(holder, "update_display_data", content)
            # The entry's own earlier outputs with that id, as JupyterLab and nbclient do.
            entry.outputs.update_display(display_id, content)
            if msg_type == "update_display_data":
                self._publish(entry, msg_type, content)
                return
        if self.widgets.capture(entry.msg_id, msg_type, content, parent or {}):
            return  # an Output widget's, not the cell's (nbclient ignores its display id too)
        entry.outputs.apply(msg_type, content)
        if display_id is not None:
            self.displays.shown(display_id, entry)
        self._publish(entry, msg_type, content)

    def echo_input(self, entry: Entry, prompt: str, password: bool, value: str) -> None:
        """Write an answered ``input()`` into the entry's outputs as JupyterLab does.

        JupyterLab's output area adds a ``stdin`` stream (so it never merges with stdout):
        the prompt, a space, the answer (eight middle dots for a password), a newline. It
        goes to the cell even while an Output widget captures (stdin is not IOPub).
        """
        shown = PASSWORD_MASK if password else value
        content = {"name": "stdin", "text": f"{prompt} {shown}\n"}
        entry.outputs.apply("stream", content)
        self._publish(entry, "stream", content)

    def reset(self) -> None:
        """The kernel process ended: its display ids and widgets mean nothing to the next."""
        self.displays.clear()
        self.widgets.reset()
