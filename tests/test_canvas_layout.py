"""The layout model alone: heading graph, stored places, defaults, PATCH validation."""

from __future__ import annotations

import math

import pytest

from jupyter_canvas.canvas.layout import (
    CellPlace,
    LayoutError,
    NotebookCell,
    PlaceDefaults,
    build_graphs,
    default_places,
    descendants,
    heading_level,
    initial_places,
    parse_moves,
)

DEFAULTS = PlaceDefaults(width=600, height=120, gap=20)


def graphs(*cells: tuple[str, str | None]) -> tuple[dict, dict]:
    """Graphs of (id, markdown source or None for a code cell)."""
    return build_graphs(
        (cell_id, heading_level("markdown" if src is not None else "code", src or ""))
        for cell_id, src in cells
    )


def test_contract_example() -> None:
    np_graph, pc_graph = graphs(
        ("A", "# A"), ("x", None), ("B", "## B"), ("y", None), ("C", "# C"), ("z", None)
    )
    assert pc_graph == {"A": ["x", "B"], "B": ["y"], "C": ["z"]}
    assert np_graph == {"A": ["C"], "C": []}
    assert descendants(pc_graph, "A") == ["x", "B", "y"]
    assert descendants(pc_graph, "C") == ["z"]
    assert descendants(pc_graph, "x") == []


def test_nested_headings_skipping_levels() -> None:
    np_graph, pc_graph = graphs(
        ("intro", None),
        ("A", "# A"),
        ("B", "### B"),
        ("b", None),
        ("C", "## C"),
        ("c", None),
        ("D", "#### D"),
        ("d", None),
        ("E", "## E"),
        ("F", "# F"),
        ("G", "# G"),
    )
    # C (level 2) closes B (level 3) but not A (level 1); E has no cells of its own.
    assert pc_graph == {
        "A": ["B", "C", "E"],
        "B": ["b"],
        "C": ["c", "D"],
        "D": ["d"],
        "E": [],
        "F": [],
        "G": [],
    }
    assert np_graph == {"intro": ["A"], "A": ["F"], "F": ["G"], "G": []}
    assert descendants(pc_graph, "A") == ["B", "b", "C", "c", "D", "d", "E"]


def test_every_cell_has_at_most_one_parent() -> None:
    cells = [(f"c{i}", f"{'#' * (1 + i % 4)} h" if i % 3 == 0 else None) for i in range(60)]
    np_graph, pc_graph = graphs(*cells)
    children = [child for kids in pc_graph.values() for child in kids]
    assert len(children) == len(set(children))
    top = [cell_id for cell_id, _ in cells if cell_id not in set(children)]
    assert list(np_graph) == top


def test_no_headings() -> None:
    np_graph, pc_graph = graphs(("a", None), ("b", "plain text"), ("c", None))
    assert pc_graph == {}
    assert np_graph == {"a": ["b"], "b": ["c"], "c": []}
    assert build_graphs([]) == ({}, {})


@pytest.mark.parametrize(
    ("cell_type", "source", "level"),
    [
        ("markdown", "# Title", 1),
        ("markdown", "###### Six", 6),
        ("markdown", "####### seven is not a heading", None),
        ("markdown", "\n\n  ## After blank lines\ntext", 2),
        ("markdown", "#", 1),
        ("markdown", "#hashtag", None),
        ("markdown", "    # indented code", None),
        ("markdown", "text\n# heading on line two", None),
        ("markdown", "", None),
        ("code", "# a comment", None),
        ("raw", "# raw", None),
    ],
)
def test_heading_level(cell_type: str, source: str, level: int | None) -> None:
    assert heading_level(cell_type, source) == level


def test_places_from_metadata_ganimede_and_defaults() -> None:
    cells = [
        NotebookCell.from_parts("a", "code", "", {}, DEFAULTS),
        NotebookCell.from_parts(
            "b", "code", "", {"jupyter_canvas": {"x": 10, "y": 500, "width": 300}}, DEFAULTS
        ),
        NotebookCell.from_parts("c", "code", "", {}, DEFAULTS),
        NotebookCell.from_parts(
            "d", "code", "", {"gm": {"top": 7, "left": 3, "width": 100, "height": 50}}, DEFAULTS
        ),
        NotebookCell.from_parts(
            "e",
            "code",
            "",
            {"gm": {"top": 1, "left": 1}, "jupyter_canvas": {"x": -5, "y": 2.5}},
            DEFAULTS,
        ),
        NotebookCell.from_parts("f", "code", "", {"jupyter_canvas": {"x": "1", "y": 2}}, DEFAULTS),
    ]
    places = initial_places(cells, DEFAULTS)
    assert places["a"].to_json() == {
        "x": 0,
        "y": 0,
        "width": 600,
        "height": 120,
        "collapsed": False,
        "placed": False,
    }
    assert places["b"].to_json() == {
        "x": 10,
        "y": 500,
        "width": 300,
        "height": 120,
        "collapsed": False,
        "placed": True,
    }
    # c has no place: its default one, in the column of the cells without a heading.
    assert places["c"] == CellPlace(0, 280, 600, 120, placed=False)
    assert places["d"] == CellPlace(3, 7, 100, 50)
    # jupyter_canvas wins over Ganimede's metadata.
    assert places["e"].to_json()["x"] == -5 and places["e"].to_json()["y"] == 2.5
    # An unreadable place counts as none.
    assert cells[5].stored is None
    assert cells[0].stored is None and cells[3].stored is None and cells[3].ganimede is not None


def test_default_places_are_columns_of_heading_groups() -> None:
    cells = [
        ("intro", None),
        ("A", 1),
        ("a1", None),
        ("B", 2),
        ("b1", None),
        ("C", 1),
        ("c1", None),
        ("c2", None),
    ]
    places = default_places(cells, DEFAULTS)
    assert not any(place.placed for place in places.values())
    # Cells before the first heading, then one column per top-level heading, side by side.
    assert {places[c].x for c in ("intro",)} == {0}
    column_a = 600 + 80
    # A's column holds a nested group (B): two frame paddings wider.
    column_c = column_a + 600 + 2 * 20 * 2 + 80
    assert places["A"].x == places["a1"].x == column_a + 20
    assert places["B"].x == places["b1"].x == column_a + 40
    assert places["C"].x == places["c1"].x == places["c2"].x == column_c + 20
    # Top to bottom in a column, with room for the frames.
    assert [places[c].y for c in ("A", "a1", "B", "b1")] == [20, 160, 320, 460]
    assert [places[c].y for c in ("C", "c1", "c2")] == [20, 160, 300]
    # No two default places overlap.
    boxes = list(places.values())
    for i, p in enumerate(boxes):
        for q in boxes[i + 1 :]:
            assert (
                p.x + p.width <= q.x
                or q.x + q.width <= p.x
                or p.y + p.height <= q.y
                or q.y + q.height <= p.y
            )


def test_placed_is_stored_only_when_false() -> None:
    chosen = CellPlace(1, 2, 3, 4)
    assert "placed" not in chosen.to_metadata()
    assert CellPlace(1, 2, 3, 4, placed=False).to_metadata()["placed"] is False
    # A stored place without the field was placed by someone (files written before it).
    cell = NotebookCell.from_parts("a", "code", "", {"jupyter_canvas": {"x": 1, "y": 2}}, DEFAULTS)
    assert cell.stored is not None and cell.stored.placed
    # A stored default place (folded, say) keeps its folding and takes the default position.
    folded = NotebookCell.from_parts(
        "b",
        "code",
        "",
        {"jupyter_canvas": {"x": 500, "y": 900, "collapsed": True, "placed": False}},
        DEFAULTS,
    )
    place = initial_places([folded], DEFAULTS)["b"]
    assert (place.x, place.y, place.collapsed, place.placed) == (0, 0, True, False)


def test_place_merge_ignores_invalid_fields() -> None:
    place = CellPlace(0, 0, 600, 120)
    merged = place.merged(
        {"x": 5, "y": math.nan, "width": -1, "height": True, "collapsed": "yes", "other": 1}
    )
    assert merged == CellPlace(5, 0, 600, 120)
    assert place.merged({"collapsed": True}).collapsed is True


def test_parse_moves_accepts_partial_moves() -> None:
    assert parse_moves({"cells": {"a": {"x": 1.5}, "b": {"collapsed": True, "width": 0}}}) == {
        "a": {"x": 1.5},
        "b": {"collapsed": True, "width": 0},
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, '"cells" must be an object'),
        ({"cells": []}, '"cells" must be an object'),
        ({"cells": {}}, "is empty"),
        ({"cells": {"a": {}}}, "at least one of"),
        ({"cells": {"a": 3}}, "at least one of"),
        ({"cells": {"a": {"z": 1}}}, "unknown field(s) z"),
        ({"cells": {"a": {"x": "1"}}}, "x must be a number"),
        ({"cells": {"a": {"x": True}}}, "x must be a number"),
        ({"cells": {"a": {"y": math.inf}}}, "y must be a number"),
        ({"cells": {"a": {"width": -1}}}, "width must be a number between 0"),
        ({"cells": {"a": {"height": 2e9}}}, "height must be a number between 0"),
        ({"cells": {"a": {"collapsed": 1}}}, "collapsed must be true or false"),
        ({"cells": {"a": {"placed": "yes"}}}, "placed must be true or false"),
        ({"cells": {"a": {"x": 1}}, "extra": 1}, "unknown field(s) extra"),
    ],
)
def test_parse_moves_refuses_bad_values(body: dict, words: str) -> None:
    with pytest.raises(LayoutError) as info:
        parse_moves(body)
    assert words in str(info.value)
