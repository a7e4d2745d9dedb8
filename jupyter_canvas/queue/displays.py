"""Display ids across the entries run on one kernel.

A kernel's ``display_data`` (or ``execute_result``) may carry ``transient.display_id``; a
later ``update_display_data`` with that id, sent while *any* cell runs, replaces the data and
metadata of every output shown with it, in every cell; a new ``display_data`` with an id
already shown updates the earlier outputs too before it is added. That is what JupyterLab's
kernel connection (``_handleDisplayId``) and nbclient (``_display_id_map``) do.

:class:`DisplayRegistry` remembers which entries show each display id, weakly: an entry that
is no longer retained drops out by itself, so the registry holds no more than the retained
entries' outputs do. Each entry's :class:`~jupyter_canvas.outputs.OutputList` knows at which
indexes it shows the id (and forgets them when it is cleared).
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

#: Output messages that may carry a display id.
DISPLAY_MSG_TYPES = frozenset({"display_data", "execute_result", "update_display_data"})


class DisplayHolder(Protocol):
    """Something that shows outputs (an entry): anything weakly referable and hashable."""

    def __hash__(self) -> int: ...


def display_id_of(msg_type: str, content: dict[str, Any]) -> str | None:
    """The display id an output message carries, if any (``transient`` may be None)."""
    if msg_type not in DISPLAY_MSG_TYPES:
        return None
    transient = content.get("transient")
    display_id = transient.get("display_id") if isinstance(transient, dict) else None
    return display_id if isinstance(display_id, str) and display_id else None


class DisplayRegistry:
    """Which holders (entries) show each display id, for one kernel process."""

    #: Sweep ids whose holders all went away once this many more ids were added.
    SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._holders: dict[str, weakref.WeakSet[Any]] = {}
        self._added = 0

    def __len__(self) -> int:
        """How many display ids are known (with at least one holder alive)."""
        return sum(1 for holders in self._holders.values() if len(holders))

    def shown(self, display_id: str, holder: DisplayHolder) -> None:
        """``holder`` now shows an output with ``display_id``."""
        holders = self._holders.get(display_id)
        if holders is None:
            holders = self._holders[display_id] = weakref.WeakSet()
            self._added += 1
            if self._added >= self.SWEEP_EVERY:
                self.sweep()
        holders.add(holder)

    def holders(self, display_id: str) -> list[Any]:
        """The live holders that showed ``display_id`` (an output may since be cleared)."""
        holders = self._holders.get(display_id)
        if holders is None:
            return []
        alive = list(holders)
        if not alive:
            del self._holders[display_id]
        return alive

    def sweep(self) -> None:
        """Forget the ids none of whose holders are alive any more."""
        self._added = 0
        for display_id in [d for d, holders in self._holders.items() if not len(holders)]:
            del self._holders[display_id]

    def clear(self) -> None:
        """Forget everything (the kernel restarted: its display ids start afresh)."""
        self._holders.clear()
        self._added = 0
