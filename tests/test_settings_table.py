"""The README's settings table is the traits' own: every setting of the package, its default
and its help, made by ``python -m jupyter_canvas.settings_table`` (a setting added, changed or
documented without regenerating the table fails here)."""

from __future__ import annotations

from pathlib import Path

from jupyter_canvas.settings_table import END, START, configurable_classes, render

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_table_is_made_from_the_traits() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text
    shown = text.split(START, 1)[1].split(END, 1)[0].strip("\n")
    assert shown == render().strip("\n"), (
        "README.md's settings table differs from the traits: run "
        "`python -m jupyter_canvas.settings_table --write README.md`"
    )


def test_every_setting_is_documented_where_it_is_set() -> None:
    classes = {cls.__name__ for cls in configurable_classes()}
    assert {"CanvasApp", "NotebookService", "KernelStatusTracker"} <= classes
    for cls in configurable_classes():
        for name, trait in cls.class_own_traits(config=True).items():
            assert (trait.help or "").strip(), f"{cls.__name__}.{name} has no help"
