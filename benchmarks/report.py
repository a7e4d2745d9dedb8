"""Statistics, ratios against the ZMQ floor, targets, and the results as JSON and Markdown."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

FLOOR = "zmq"

#: What each path is called in the tables.
PATH_LABELS = {
    "zmq": "1. jupyter_client over ZMQ (floor)",
    "kernel_ws": "2. kernel websocket (JupyterLab), TCP_NODELAY by jupyter_canvas",
    "kernel_ws_stock": "2b. kernel websocket, stock jupyter_server (Nagle on)",
    "nbmodel": "3. jupyter-server-nbmodel (REST + poll)",
    "queue_events": "4. `POST /api/queue` + events websocket",
    "queue_wait": "5. `POST /api/queue` + `GET ?wait=`",
}

DOCS_START = "<!-- benchmark-results:start -->"
DOCS_END = "<!-- benchmark-results:end -->"


def interleaved(items: Sequence[T], rounds: int) -> Iterator[tuple[int, list[T]]]:
    """``(round index, order)`` of each round: the items rotated by one more every round, so
    that a drift of the machine's load touches every item alike.
    """
    for index in range(rounds):
        shift = index % len(items)
        yield index, [*items[shift:], *items[:shift]]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p95, p99, max and count of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else math.nan,
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    """``value / floor``, rounded; None when either is missing."""
    if value is None or floor is None or floor == 0 or math.isnan(value) or math.isnan(floor):
        return None
    return round(value / floor, 3)


def add_ratios(results: dict[str, Any]) -> None:
    """Put each path's ratio to the ZMQ floor beside every figure that has one."""
    paths = results["paths"]
    floor = paths.get(FLOOR, {})
    for name, path in paths.items():
        ratios: dict[str, Any] = {}
        for metric, key in (
            ("sequential", "median_ms"),
            ("sequential", "p95_ms"),
            ("first_output", "median_ms"),
            ("observers", "p99_ms"),
            ("drain", "seconds"),
            ("drain", "status_p99_ms"),
        ):
            mine = (path.get(metric) or {}).get(key)
            base = (floor.get(metric) or {}).get(key)
            ratios[f"{metric}.{key}"] = ratio(mine, base)
        mine = (path.get("burst") or {}).get("cells_per_s")
        base = (floor.get("burst") or {}).get("cells_per_s")
        ratios["burst.cells_per_s"] = ratio(mine, base)
        first = (path.get("first_output") or {}).get("median_ms")
        first_floor = (floor.get("first_output") or {}).get("median_ms")
        if first is not None and first_floor is not None:
            ratios["first_output.median_minus_floor_ms"] = round(first - first_floor, 3)
        path["ratios"] = ratios
        del name


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for the queue paths, each with the figure and whether it is met."""
    paths = results["paths"]
    nbmodel_burst = (paths.get("nbmodel", {}).get("burst") or {}).get("cells_per_s")
    targets: list[dict[str, Any]] = []
    for name in ("queue_events", "queue_wait"):
        path = paths.get(name)
        if not path:
            continue
        r = path["ratios"]

        def add(what: str, figure: Any, met: bool | None, target: str, _name: str = name) -> None:
            targets.append(
                {"path": _name, "target": what, "goal": target, "figure": figure, "met": met}
            )

        seq = r.get("sequential.median_ms")
        add(
            "per trivial cell, sequential",
            seq,
            None if seq is None else seq <= 1.15,
            "<= 1.15x ZMQ",
        )
        burst = r.get("burst.cells_per_s")
        add(
            "burst throughput vs ZMQ", burst, None if burst is None else burst >= 0.9, ">= 0.9x ZMQ"
        )
        mine = (path.get("burst") or {}).get("cells_per_s")
        vs_nbmodel = ratio(mine, nbmodel_burst)
        add(
            "burst throughput vs nbmodel",
            vs_nbmodel,
            None if vs_nbmodel is None else vs_nbmodel >= 1.5,
            ">= 1.5x nbmodel",
        )
        if name == "queue_events":
            first = r.get("first_output.median_minus_floor_ms")
            add("first output", first, None if first is None else first <= 1.0, "<= ZMQ + 1 ms")
            lag = (path.get("observers") or {}).get("p99_ms")
            add("100 observers, p99 lag", lag, None if lag is None else lag < 20, "< 20 ms")
        status = (path.get("drain") or {}).get("status_p99_ms")
        add(
            "GET /api/status p99 while 20 kernels drain",
            status,
            None if status is None else status < 50,
            "< 50 ms",
        )
    return targets


# -- Markdown ------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(value: Any, rat: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{_fmt(value, digits)} ({_fmt(rat)}x)" if rat is not None else _fmt(value, digits)


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables: absolute figures with the ratio to ZMQ beside each."""
    meta = results["meta"]
    lines = [
        f"Run `{meta['command']}` on {meta['started_at']} ({meta['mode']} mode): "
        f"{meta['cpu_count']} CPUs, Python {meta['python']}, jupyter_server "
        f"{meta['versions'].get('jupyter_server')}, ipykernel {meta['versions'].get('ipykernel')}, "
        f"jupyter-server-nbmodel {meta['versions'].get('jupyter_server_nbmodel') or 'absent'}; "
        f"load average before/after: {meta['load_before']} / {meta['load_after']}.",
        "",
        "Ratio to the ZMQ floor in parentheses (for throughput, higher is better; "
        "for times, lower is better).",
        "",
        "| path | trivial cell median ms | p95 ms | burst cells/s | first output median ms "
        "| 100 observers p99 lag ms | 20 kernels x 50 cells drain s | `GET /api/status` p99 ms "
        "during drain | server CPU ms per cell |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    failures = []
    for name, path in results["paths"].items():
        if path.get("failed"):
            failures.append(f"- {PATH_LABELS.get(name, name)} failed: {path['failed']}")
        r = path.get("ratios", {})
        seq = path.get("sequential") or {}
        burst = path.get("burst") or {}
        first = path.get("first_output") or {}
        obs = path.get("observers") or {}
        drain = path.get("drain") or {}
        lines.append(
            "| "
            + " | ".join(
                [
                    PATH_LABELS.get(name, name),
                    _cell(seq.get("median_ms"), r.get("sequential.median_ms")),
                    _cell(seq.get("p95_ms"), r.get("sequential.p95_ms")),
                    _cell(burst.get("cells_per_s"), r.get("burst.cells_per_s"), 0),
                    _cell(first.get("median_ms"), r.get("first_output.median_ms")),
                    _cell(obs.get("p99_ms"), r.get("observers.p99_ms")),
                    _cell(drain.get("seconds"), r.get("drain.seconds")),
                    _cell(drain.get("status_p99_ms"), r.get("drain.status_p99_ms")),
                    _fmt(seq.get("server_cpu_ms_per_cell")),
                ]
            )
            + " |"
        )
    if failures:
        lines += ["", "Paths that failed (left out from then on):", "", *failures]
    memory = results.get("memory")
    if memory:
        checkpoints = ", ".join(f"{c['rss_mb']:.1f}" for c in memory["checkpoints"])
        lines += [
            "",
            f"Server memory (RSS) after {memory['entries']:,} finished entries with the default "
            f"retention: {memory['rss_after_mb']:.1f} MB "
            f"(before: {memory['rss_before_mb']:.1f} MB; "
            f"growth {memory['rss_growth_mb']:+.1f} MB; retained entries: {memory['retained']}; "
            f"RSS along the way, MB: {checkpoints}).",
        ]
    flood = results.get("flood")
    if flood:
        lines += [
            "",
            f"Output flood (one cell printing {flood['lines']:,} lines of 200 characters, "
            f"{flood['observers']} events-websocket observers): the entry ended "
            f"`{flood['state']}` in {flood['seconds']} s, server CPU {flood['server_cpu_s']} s; "
            f"`GET /api/status` meanwhile: median {_fmt(flood['status_median_ms'])} ms, "
            f"p99 {_fmt(flood['status_p99_ms'])} ms, max {_fmt(flood['status_max_ms'])} ms.",
        ]
    targets = results.get("targets") or []
    if targets:
        lines += ["", "| target | path | goal | figure | met |", "| --- | --- | --- | --- | --- |"]
        for t in targets:
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            lines.append(
                f"| {t['target']} | {t['path']} | {t['goal']} | {_fmt(t['figure'])} | {met} |"
            )
    return "\n".join(lines) + "\n"


def update_docs(doc: Path, table: str) -> None:
    """Replace the results between the markers of ``docs/benchmarks.md``."""
    text = doc.read_text()
    pattern = re.compile(re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{doc} has no {DOCS_START} ... {DOCS_END} markers")
    doc.write_text(pattern.sub(lambda _m: f"{DOCS_START}\n{table}{DOCS_END}", text))


def publish(
    folder: Path, name: str, results: dict[str, Any] | None, table: str, doc: Path | None
) -> None:
    """Write ``<name>.json`` (unless ``results`` is None: already there) and ``<name>.md`` in
    ``folder``, the table into ``doc`` too if given, and print the table.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if results is not None:
        (folder / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / f"{name}.md").write_text(table)
    if doc is not None:
        update_docs(doc, table)
    print(table)
