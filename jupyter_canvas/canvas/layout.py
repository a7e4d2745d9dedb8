"""The canvas layout model: where each cell sits and how markdown headings group the cells.

Pure code (no I/O, no Y documents) shared by the room, the REST handlers and anyone who needs
the heading graph (``select: {"group": …}`` of the queue uses :func:`descendants`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

#: The key of a cell's metadata that holds its place on the canvas.
CANVAS_METADATA_KEY = "jupyter_canvas"
#: Where Ganimede keeps a cell's place (``top``, ``left``, ``width``, ``height``).
GANIMEDE_METADATA_KEY = "gm"
#: The fields of a place, in the order the contract lists them (``placed`` is an addition).
PLACE_FIELDS = ("x", "y", "width", "height", "collapsed", "placed")
#: Coordinates and sizes beyond this are refused (they are mistakes, not canvases).
MAX_COORDINATE = 1e9

#: An ATX heading (CommonMark): up to three spaces, 1-6 ``#``, then a blank or the line's end.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")

Graph = dict[str, list[str]]


class LayoutError(ValueError):
    """A value that cannot be a cell's place; the message says which and why."""


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_number(value: float) -> int | float:
    """Integral floats become ints, so files and answers read ``40`` rather than ``40.0``."""
    return int(value) if float(value).is_integer() else value


def _valid_field(name: str, value: Any) -> bool:
    if name in ("collapsed", "placed"):
        return isinstance(value, bool)
    if not _finite_number(value):
        return False
    if name in ("width", "height"):
        return 0 <= value <= MAX_COORDINATE
    return abs(value) <= MAX_COORDINATE


@dataclass(frozen=True)
class CellPlace:
    """Where one cell sits on the canvas (canvas units, y grows downwards).

    ``placed`` tells a place someone chose (a move in the room or by PATCH, a stored or
    Ganimede place) from a default one, which clients may lay out again as they see fit.
    """

    x: float
    y: float
    width: float
    height: float
    collapsed: bool = False
    placed: bool = True

    def __post_init__(self) -> None:
        # Y documents hold every number as a float: keep one type so places compare equal.
        for name in ("x", "y", "width", "height"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON form (integral numbers as ints), as stored in cell metadata."""
        return {
            "x": _json_number(self.x),
            "y": _json_number(self.y),
            "width": _json_number(self.width),
            "height": _json_number(self.height),
            "collapsed": self.collapsed,
            "placed": self.placed,
        }

    def to_y(self) -> dict[str, Any]:
        """The form written into a Y map (numbers as floats, as Yjs expects)."""
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "collapsed": self.collapsed,
            "placed": self.placed,
        }

    def to_metadata(self, *, y: bool = False) -> dict[str, Any]:
        """The form stored in ``metadata.jupyter_canvas`` (``y``: for a Y map).

        ``placed`` is only written when false: a stored place without it was placed by
        someone, as every place stored before the field existed.
        """
        values = self.to_y() if y else self.to_json()
        if self.placed:
            del values["placed"]
        return values

    def merged(self, values: Mapping[str, Any]) -> CellPlace:
        """This place with the valid fields of ``values`` applied; invalid ones are ignored."""
        changes = {
            name: values[name]
            for name in PLACE_FIELDS
            if name in values and _valid_field(name, values[name])
        }
        return replace(self, **changes) if changes else self


@dataclass(frozen=True)
class PlaceDefaults:
    """How cells without a stored place are laid out: one column per top-level heading group
    (see :func:`default_places`), ``width`` by ``height``, ``gap`` apart."""

    width: float = 600.0
    height: float = 120.0
    gap: float = 20.0
    #: Between two columns.
    column_gap: float = 80.0
    #: Room left around a nested heading group for its frame.
    frame_padding: float = 20.0

    def first(self) -> CellPlace:
        """The place of a first cell that has none."""
        return CellPlace(0.0, 0.0, self.width, self.height, placed=False)


def place_from_canvas_metadata(value: Any, defaults: PlaceDefaults) -> CellPlace | None:
    """Read ``metadata.jupyter_canvas``: numeric ``x`` and ``y`` are required, the rest default."""
    if not isinstance(value, Mapping):
        return None
    if not (_valid_field("x", value.get("x")) and _valid_field("y", value.get("y"))):
        return None
    return CellPlace(value["x"], value["y"], defaults.width, defaults.height).merged(value)


def place_from_ganimede_metadata(value: Any, defaults: PlaceDefaults) -> CellPlace | None:
    """Read Ganimede's ``metadata.gm`` (``left``/``top``/``width``/``height``)."""
    if not isinstance(value, Mapping):
        return None
    left: Any = value.get("left")
    top: Any = value.get("top")
    if not (_valid_field("x", left) and _valid_field("y", top)):
        return None
    place = CellPlace(left, top, defaults.width, defaults.height)
    return place.merged({k: value[k] for k in ("width", "height") if k in value})


def heading_level(cell_type: str, source: str) -> int | None:
    """The heading level of a markdown cell whose first non-blank line is a heading, else None."""
    if cell_type != "markdown":
        return None
    for line in source.splitlines():
        if line.strip():
            match = _HEADING.match(line)
            return len(match.group(1)) if match else None
    return None


@dataclass(frozen=True)
class NotebookCell:
    """What the canvas needs to know of one notebook cell."""

    id: str
    cell_type: str
    heading_level: int | None
    #: The place stored in ``metadata.jupyter_canvas`` (None when there is none).
    stored: CellPlace | None
    #: The place Ganimede stored in ``metadata.gm`` (None when there is none).
    ganimede: CellPlace | None

    @classmethod
    def from_parts(
        cls,
        cell_id: str,
        cell_type: str,
        source: str,
        metadata: Mapping[str, Any],
        defaults: PlaceDefaults,
    ) -> NotebookCell:
        """Build from a cell's id, type, source and metadata (as any notebook reader gives)."""
        return cls(
            id=cell_id,
            cell_type=cell_type,
            heading_level=heading_level(cell_type, source),
            stored=place_from_canvas_metadata(metadata.get(CANVAS_METADATA_KEY), defaults),
            ganimede=place_from_ganimede_metadata(metadata.get(GANIMEDE_METADATA_KEY), defaults),
        )


def build_graphs(cells: Iterable[tuple[str, int | None]]) -> tuple[Graph, Graph]:
    """The chain ``np_graph`` and the heading graph ``pc_graph`` of ``(cell id, heading level)``.

    A heading of level L owns the cells after it up to the next heading of level <= L; a deeper
    heading in that run is its child and owns its own run. Every heading is a key of
    ``pc_graph`` (with ``[]`` when it owns nothing). ``np_graph`` links each cell without a
    parent to the next one, in notebook order; the last one points to ``[]``.
    """
    pc_graph: Graph = {}
    top_level: list[str] = []
    open_headings: list[tuple[int, str]] = []
    for cell_id, level in cells:
        if level is not None:
            while open_headings and open_headings[-1][0] >= level:
                open_headings.pop()
        if open_headings:
            pc_graph[open_headings[-1][1]].append(cell_id)
        else:
            top_level.append(cell_id)
        if level is not None:
            pc_graph[cell_id] = []
            open_headings.append((level, cell_id))
    np_graph: Graph = {a: [b] for a, b in pairwise(top_level)}
    if top_level:
        np_graph[top_level[-1]] = []
    return np_graph, pc_graph


def descendants(pc_graph: Mapping[str, Sequence[str]], heading_id: str) -> list[str]:
    """Every cell under ``heading_id`` at any depth, in notebook order (not the heading itself)."""
    found: list[str] = []
    pending = list(reversed(pc_graph.get(heading_id, ())))
    while pending:
        cell_id = pending.pop()
        found.append(cell_id)
        pending.extend(reversed(pc_graph.get(cell_id, ())))
    return found


def default_places(
    cells: Sequence[tuple[str, int | None]], defaults: PlaceDefaults
) -> dict[str, CellPlace]:
    """Default places of ``(cell id, heading level)``, as the JupyterLab canvas lays them out.

    Each top-level heading group is a column, the columns side by side (the cells before the
    first heading make a column of their own); in a column the cells go top to bottom in
    notebook order, a nested group indented and padded by ``frame_padding`` for its frame.
    Every cell gets the default size (the server does not know how tall a card is drawn).
    """
    _, pc_graph = build_graphs(cells)
    step = defaults.frame_padding
    places: dict[str, CellPlace] = {}

    def flow(cell_id: str, depth: int, x0: float, y: float) -> float:
        heading = cell_id in pc_graph
        if heading:
            y += step  # the frame's top
        places[cell_id] = CellPlace(
            x0 + depth * step, y, defaults.width, defaults.height, placed=False
        )
        y += defaults.height + defaults.gap
        if heading:
            for child in pc_graph[cell_id]:
                y = flow(child, depth + 1 if child in pc_graph else depth, x0, y)
            y += step  # the frame's bottom
        return y

    children = {child for kids in pc_graph.values() for child in kids}
    x = 0.0
    column: list[str] = []
    columns: list[list[str]] = []
    for cell_id, _level in cells:
        if cell_id in children:
            continue
        if cell_id in pc_graph and column:
            columns.append(column)
            column = []
        column.append(cell_id)
    if column:
        columns.append(column)
    for members in columns:
        y = 0.0
        for cell_id in members:
            y = flow(cell_id, 1 if cell_id in pc_graph else 0, x, y)
        x += defaults.width + 2 * step * _max_depth(members, pc_graph) + defaults.column_gap
    return places


def _max_depth(roots: Sequence[str], pc_graph: Mapping[str, Sequence[str]]) -> int:
    """How many heading levels nest in ``roots`` (0: no heading)."""
    deepest = 0
    pending = [(cell_id, 1) for cell_id in roots if cell_id in pc_graph]
    while pending:
        cell_id, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((kid, depth + 1) for kid in pc_graph[cell_id] if kid in pc_graph)
    return deepest


def initial_places(cells: Sequence[NotebookCell], defaults: PlaceDefaults) -> dict[str, CellPlace]:
    """Each cell's place: stored, else Ganimede's, else its default place (in columns)."""
    fallback = default_places([(cell.id, cell.heading_level) for cell in cells], defaults)
    return {cell.id: choose_place(cell, fallback[cell.id]) for cell in cells}


def choose_place(cell: NotebookCell, fallback: CellPlace) -> CellPlace:
    """A cell's place: stored, else Ganimede's, else ``fallback`` (its default place).

    A stored place that was not placed by anyone (a default place whose size or folding
    changed) keeps its size and folding but takes the default position.
    """
    place = cell.stored or cell.ganimede or fallback
    if not place.placed:
        place = replace(place, x=fallback.x, y=fallback.y)
    return place


def layout_json(
    path: str,
    file_id: str,
    places: Mapping[str, CellPlace],
    np_graph: Graph,
    pc_graph: Graph,
) -> dict[str, Any]:
    """The contract's layout model."""
    return {
        "path": path,
        "file_id": file_id,
        "room": f"api/canvas/room/{file_id}",
        "cells": {cell_id: place.to_json() for cell_id, place in places.items()},
        "np_graph": np_graph,
        "pc_graph": pc_graph,
    }


def parse_moves(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a ``PATCH /api/canvas/layout`` body; return cell id → the fields to change.

    Raises :class:`LayoutError` saying what is wrong (the handler answers 400).
    """
    unknown = sorted(set(body) - {"cells"})
    if unknown:
        raise LayoutError(f'unknown field(s) {", ".join(unknown)}; the body is {{"cells": {{…}}}}')
    cells = body.get("cells")
    if not isinstance(cells, Mapping):
        raise LayoutError('"cells" must be an object of cell id → {"x", "y", …}')
    if not cells:
        raise LayoutError('"cells" is empty: name at least one cell to move')
    moves: dict[str, dict[str, Any]] = {}
    for cell_id, move in cells.items():
        if not isinstance(move, Mapping) or not move:
            raise LayoutError(
                f"cell {cell_id!r}: give an object with at least one of {', '.join(PLACE_FIELDS)}"
            )
        extra = sorted(set(move) - set(PLACE_FIELDS))
        if extra:
            raise LayoutError(
                f"cell {cell_id!r}: unknown field(s) {', '.join(extra)}; "
                f"allowed: {', '.join(PLACE_FIELDS)}"
            )
        for name, value in move.items():
            if _valid_field(name, value):
                continue
            if name in ("collapsed", "placed"):
                raise LayoutError(f"cell {cell_id!r}: {name} must be true or false, got {value!r}")
            bound = "between 0 and 1e9" if name in ("width", "height") else "between -1e9 and 1e9"
            raise LayoutError(f"cell {cell_id!r}: {name} must be a number {bound}, got {value!r}")
        moves[str(cell_id)] = dict(move)
    return moves
