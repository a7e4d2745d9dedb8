"""The README's settings table, made from the traits themselves.

Every setting of jupyter_canvas is a configurable trait on the class it configures; this
module finds those classes, reads their own ``config=True`` traits (name, default, help) and
renders the Markdown table the README shows between its ``settings`` markers, so the table
cannot drift from the code (``tests/test_settings_table.py`` fails when it does).

``python -m jupyter_canvas.settings_table`` prints the table; ``--write README.md`` replaces
the table in that file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

from traitlets import TraitType, Undefined
from traitlets.config import Configurable

import jupyter_canvas

START = (
    "<!-- settings:start (made by python -m jupyter_canvas.settings_table --write README.md) -->"
)
END = "<!-- settings:end -->"

#: Modules never imported to look for settings (the frontend's build output, this module).
_SKIP = (
    "jupyter_canvas.labextension",
    "jupyter_canvas.settings_table",
    "jupyter_canvas.pytest_plugin",
)


def configurable_classes() -> list[type[Configurable]]:
    """Every class of the package with a setting of its own, in a stable order."""
    for module in pkgutil.walk_packages(jupyter_canvas.__path__, "jupyter_canvas."):
        if not module.name.startswith(_SKIP):
            importlib.import_module(module.name)
    found: dict[str, type[Configurable]] = {}
    stack: list[type[Configurable]] = [Configurable]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("jupyter_canvas.") and cls.class_own_traits(config=True):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    app_first = sorted(found.values(), key=lambda c: (c.__name__ != "CanvasApp", c.__name__))
    return app_first


def _default(name: str, trait: TraitType[Any, Any]) -> str:
    value = trait.default_value
    if value is Undefined:  # containers make their default per instance
        return f"`{trait.default_value_repr()}`"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) and "bytes" in name and value >= 1024 and value % 1024 == 0:
        mib = value % (1024 * 1024) == 0
        return f"{value // (1024 * 1024)} MiB" if mib else f"{value // 1024} KiB"
    if isinstance(value, (int, float)):
        return f"{value:,}"
    if value == "":
        return "(empty)"
    if isinstance(value, type):
        return f"`{value.__module__}.{value.__qualname__}`"
    return f"`{value!r}`"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The Markdown table of every setting."""
    rows = ["| setting | default | what it does |", "| --- | --- | --- |"]
    for cls in configurable_classes():
        for name, trait in sorted(cls.class_own_traits(config=True).items()):
            help_text = _one_line(trait.help or "")
            if not help_text:
                raise ValueError(f"{cls.__name__}.{name} has no help: document it")
            rows.append(f"| `c.{cls.__name__}.{name}` | {_default(name, trait)} | {help_text} |")
    return "\n".join(rows) + "\n"


def replace_in(text: str, table: str) -> str:
    """``text`` with the table between the markers replaced by ``table``."""
    head, sep, rest = text.partition(START)
    if not sep or END not in rest:
        raise ValueError(f"the settings markers are missing: {START} ... {END}")
    _old, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Print the table, or write it into a file between the markers."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_canvas.settings_table")
    parser.add_argument("--write", type=Path, help="replace the table in this file (README.md)")
    args = parser.parse_args(argv)
    table = render()
    if args.write is None:
        sys.stdout.write(table)
        return 0
    args.write.write_text(replace_in(args.write.read_text(encoding="utf-8"), table), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
