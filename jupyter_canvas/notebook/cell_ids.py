"""Stable cell ids for notebooks that have none, or duplicated ones.

Most notebooks on disk are nbformat 4.0-4.4: their cells have no ``id``. JupyterLab gives
every cell an id when it opens a notebook (jupyter_ydoc's ``YNotebook`` makes them with
``str(uuid4())``), but writes them back only if the notebook is nbformat 4.5 or newer, so
they change at every opening. A server-run cell must be found again when its entry starts
and when its outputs are written, so before anything is queued the notebook is upgraded the
way JupyterLab and nbformat's validator (``repair_duplicate_cell_ids``) do it:

- ``nbformat_minor`` becomes 5 (for nbformat 4), so the ids are kept when the file is saved;
- a cell without an id gets ``str(uuid4())``, as jupyter_ydoc gives one;
- a cell whose id an earlier cell already has gets a new one (the first keeps it).

The same rules apply to the live shared document (the ids its cells got when the room
loaded are kept) and to a notebook model read from the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import uuid4

#: The nbformat version from which cells carry ids.
IDS_FROM_MINOR = 5


def new_cell_id() -> str:
    """A fresh cell id, as JupyterLab's shared document makes them."""
    return str(uuid4())


def ids_to_assign(ids: Iterable[Any]) -> dict[int, str]:
    """Which cells (by index) need a new id: those without one and later duplicates."""
    seen: set[str] = set()
    new: dict[int, str] = {}
    for index, cell_id in enumerate(ids):
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            new[index] = new_cell_id()
        else:
            seen.add(cell_id)
    return new


def needs_upgrade(nbformat: Any, nbformat_minor: Any) -> bool:
    """Whether a notebook of this version drops cell ids when saved."""
    try:
        return int(nbformat) == 4 and int(nbformat_minor) < IDS_FROM_MINOR
    except (TypeError, ValueError):
        return False


def normalize_model_ids(notebook: Any) -> bool:
    """Give the cells of a notebook (an nbformat ``NotebookNode``) stable ids, in place.

    Returns whether anything changed (the notebook must then be saved).
    """
    changed = False
    if needs_upgrade(notebook.get("nbformat"), notebook.get("nbformat_minor")):
        notebook["nbformat_minor"] = IDS_FROM_MINOR
        changed = True
    cells = notebook.get("cells") or []
    for index, cell_id in ids_to_assign(cell.get("id") for cell in cells).items():
        cells[index]["id"] = cell_id
        changed = True
    return changed


def raw_needs_ids(text: str) -> bool:
    """Whether a notebook file's JSON text lacks ids or repeats one.

    The contents manager cannot tell: nbformat's validator renames duplicated ids with random
    ones each time it reads the file, without saving them.
    """
    try:
        notebook = json.loads(text)
    except ValueError:
        return False
    if not isinstance(notebook, dict):
        return False
    if needs_upgrade(notebook.get("nbformat"), notebook.get("nbformat_minor")):
        return True
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return False
    return bool(ids_to_assign(c.get("id") if isinstance(c, dict) else None for c in cells))


def normalize_live_ids(live: Any, origin: Any = None, force_save: bool = False) -> bool:
    """The same for a live ``YNotebook``, in one transaction; returns whether it changed.

    ``force_save``: the file behind the document lacks ids the document has (nbformat gave
    them when the room loaded it): change the document so that its autosave writes them.
    """
    changed = False
    with live.ydoc.transaction(origin=origin):
        ymeta = live._ymeta
        if needs_upgrade(ymeta.get("nbformat"), ymeta.get("nbformat_minor")):
            # Without this jupyter_ydoc strips every id when it saves the document (a float:
            # the shared document keeps numbers as JavaScript does).
            ymeta["nbformat_minor"] = float(IDS_FROM_MINOR)
            changed = True
        elif force_save:
            ymeta["nbformat_minor"] = ymeta.get("nbformat_minor")
            changed = True
        ycells = live.ycells
        for index, cell_id in ids_to_assign(ycell.get("id") for ycell in ycells).items():
            ycells[index]["id"] = cell_id
            changed = True
    return changed
