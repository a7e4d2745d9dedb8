"""The outputs of one execution, kept the way JupyterLab shows them.

:class:`OutputList` turns IOPub messages into nbformat v4 outputs:

- consecutive stream chunks of one stream name are merged into one output, with ``\\r``
  and ``\\b`` applied the way a terminal does (a progress bar stays one line);
- ``clear_output(wait=True)`` is deferred until the next output arrives;
- ``update_display_data`` replaces every output carrying that display id;
- rich MIME bundles are kept whole;
- the text kept per stream output is capped: past the cap the head and the tail are kept
  and a marker line says how much was cut.

Every change is reported to listeners as a small operation, so a view of the list (the
shared notebook document, a file) can follow it without copying the whole list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Messages on IOPub that produce or change outputs.
OUTPUT_MSG_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "error", "update_display_data", "clear_output"}
)

DEFAULT_STREAM_CAP = 1 << 20  # characters kept per stream output (head + tail)


@dataclass
class OutputChange:
    """One change to an :class:`OutputList`.

    ``kind`` is ``"clear"`` (every output removed), ``"append"`` (``output`` added at
    ``index``) or ``"replace"`` (the output at ``index`` is now ``output``).
    """

    kind: str
    index: int = -1
    output: dict[str, Any] | None = None


Listener = Callable[[OutputChange], None]

#: Receives the whole text of a stream once it outgrows the cap (see :class:`OutputList`).
SpillWriter = Callable[[str], None]
#: Given an output's index, opens a spill and says where it can be fetched.
SpillFactory = Callable[[int], tuple[SpillWriter, str]]
#: Given an output's index and the output, what the list keeps of it (the output itself, or
#: a reference to where it is kept whole: see :mod:`jupyter_canvas.queue.blobs`).
Offload = Callable[[int, dict[str, Any]], dict[str, Any]]

_CR_BS = re.compile(r"[\r\b]")


def _overlay_line(line: str) -> str:
    """Apply ``\\r`` and ``\\b`` within one line (no ``\\n``) as a terminal would.

    ``\\r`` moves the cursor to the start of the line and the characters that follow
    overwrite what was there; ``\\b`` moves the cursor back one character. A trailing
    ``\\r`` is kept, so that the next chunk overwrites the line.
    """
    if not _CR_BS.search(line):
        return line
    buf: list[str] = []
    pos = 0
    trailing_cr = line.endswith("\r")
    for ch in line:
        if ch == "\r":
            pos = 0
        elif ch == "\b":
            pos = max(0, pos - 1)
        else:
            if pos < len(buf):
                buf[pos] = ch
            else:
                buf.append(ch)
            pos += 1
    text = "".join(buf)
    return text + "\r" if trailing_cr else text


def apply_terminal_controls(text: str) -> str:
    """Apply ``\\r`` and ``\\b`` to every line of ``text`` (``\\r\\n`` counts as ``\\n``)."""
    text = text.replace("\r\n", "\n")
    if not _CR_BS.search(text):
        return text
    return "\n".join(_overlay_line(line) for line in text.split("\n"))


class _StreamText:
    """The text of one stream output, capped to head + tail.

    Once the text outgrows the cap, everything received is also handed to a spill (when
    there is one), so the whole stream can be fetched later.
    """

    def __init__(self, cap: int, open_spill: Callable[[], tuple[SpillWriter, str]] | None) -> None:
        self.cap = cap
        self.head = ""
        self.tail = ""
        self.cut = 0  # characters dropped between head and tail
        self.total = 0  # characters received
        self._open_spill = open_spill
        self.spill: SpillWriter | None = None
        self.where = ""

    def _start_spill(self, text_so_far: str) -> None:
        if self.spill is None and self._open_spill is not None:
            self.spill, self.where = self._open_spill()
            self.spill(text_so_far)

    def append(self, chunk: str) -> None:
        if len(chunk) > self.cap:
            # Only the start and the end of a huge chunk can be kept: never process the
            # middle (a 50 MB print must not stall the server).
            keep = self.cap // 2
            self.append(chunk[:keep])
            middle = chunk[keep:-keep]
            self.total += len(middle)
            self._drop_into_cut(middle)
            self.append(chunk[-keep:])
            return
        if self.spill is not None:
            self.spill(chunk)
        self.total += len(chunk)
        if self.cut == 0 and not self.tail:
            self.head = self._combine(self.head, chunk)
            if len(self.head) > self.cap:
                self._start_spill(self.head)
                half = self.cap // 2
                # Cut at a line break near the middle where there is one, so the
                # marker stands on a line of its own.
                split = self.head.rfind("\n", 0, half)
                split = split + 1 if split > half // 2 else half
                rest = self.head[split:]
                self.head = self.head[:split]
                self.tail = rest[-(self.cap - split) :]
                self.cut = len(rest) - len(self.tail)
            return
        self.tail = self._combine(self.tail, chunk)
        limit = self.cap - len(self.head)
        if len(self.tail) > limit:
            drop = len(self.tail) - limit
            self.tail = self.tail[drop:]
            self.cut += drop

    def _drop_into_cut(self, middle: str) -> None:
        """Count ``middle`` as cut between what is kept (it is only spilled, never stored)."""
        if self.cut == 0 and not self.tail:
            self._start_spill(self.head)
            # Everything so far is the head: from now on, what comes is the tail.
            half = self.cap // 2
            if len(self.head) > half:
                self.cut += len(self.head) - half
                self.head = self.head[:half]
        if self.spill is not None:
            self.spill(middle)
        self.cut += len(middle)
        self.tail = ""

    @staticmethod
    def _combine(existing: str, chunk: str) -> str:
        # Only the last line of what we have can still be overwritten.
        last_nl = existing.rfind("\n")
        start = last_nl + 1
        return existing[:start] + apply_terminal_controls(existing[start:] + chunk)

    def text(self) -> str:
        if not self.cut and not self.tail:
            return self.head
        if not self.cut:
            return self.head + self.tail
        where = f"; the whole stream: {self.where}" if self.where else ""
        return (
            f"{self.head}\n[jupyter_canvas: {self.cut} characters of this stream were cut "
            f"here; {self.total} received in all{where}]\n{self.tail}"
        )


class OutputList:
    """The nbformat outputs of one execution, with the fidelity JupyterLab shows."""

    def __init__(
        self, stream_cap: int = DEFAULT_STREAM_CAP, spill_factory: SpillFactory | None = None
    ) -> None:
        self._outputs: list[dict[str, Any]] = []
        self._streams: dict[int, _StreamText] = {}
        self._display_index: dict[str, list[int]] = {}
        self._clear_pending = False
        self._listeners: list[Listener] = []
        self.stream_cap = stream_cap
        #: Where the whole text of an over-long stream goes (None: it is only cut).
        self.spill_factory = spill_factory
        #: What is kept of a rich output (None: it is kept whole).
        self.offload: Offload | None = None

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._outputs)

    def to_json(self) -> list[dict[str, Any]]:
        """Return the outputs as nbformat v4 dicts (a shallow copy of the list)."""
        return list(self._outputs)

    def at(self, index: int) -> dict[str, Any] | None:
        """The output at ``index`` (negative counts from the end), or None."""
        try:
            return self._outputs[index]
        except IndexError:
            return None

    @property
    def truncated(self) -> bool:
        """Whether any stream output had text cut."""
        return any(s.cut for s in self._streams.values())

    # -- listening -------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every :class:`OutputChange` from now on."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, change: OutputChange) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- changing --------------------------------------------------------------------
    def clear(self) -> None:
        """Remove every output now."""
        self._clear_pending = False
        self._outputs.clear()
        self._streams.clear()
        self._display_index.clear()
        self._emit(OutputChange("clear"))

    def _flush_pending_clear(self) -> None:
        if self._clear_pending:
            self.clear()

    def _append(self, output: dict[str, Any]) -> None:
        if self.offload is not None:
            output = self.offload(len(self._outputs), output)
        self._outputs.append(output)
        self._emit(OutputChange("append", len(self._outputs) - 1, output))

    def apply(self, msg_type: str, content: dict[str, Any]) -> bool:
        """Apply one IOPub message; return whether it was an output message."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self.clear()
            return True
        if msg_type == "update_display_data":
            self._update_display(content)
            return True
        output = message_to_output(msg_type, content)
        if output is None:
            return False
        self._flush_pending_clear()
        if output["output_type"] == "stream":
            self._add_stream(output["name"], output["text"])
            return True
        display_id = (content.get("transient") or {}).get("display_id")
        self._append(output)
        if display_id:
            self._display_index.setdefault(display_id, []).append(len(self._outputs) - 1)
        return True

    def _add_stream(self, name: str, text: str) -> None:
        last = len(self._outputs) - 1
        if last >= 0 and last in self._streams and self._outputs[last]["name"] == name:
            stream = self._streams[last]
            stream.append(text)
            output = {"output_type": "stream", "name": name, "text": stream.text()}
            self._outputs[last] = output
            self._emit(OutputChange("replace", last, output))
            return
        index = len(self._outputs)
        factory = self.spill_factory
        stream = _StreamText(
            self.stream_cap, (lambda: factory(index)) if factory is not None else None
        )
        stream.append(text)
        self._outputs.append({"output_type": "stream", "name": name, "text": stream.text()})
        self._streams[len(self._outputs) - 1] = stream
        self._emit(OutputChange("append", len(self._outputs) - 1, self._outputs[-1]))

    def _update_display(self, content: dict[str, Any]) -> None:
        display_id = (content.get("transient") or {}).get("display_id")
        self.update_display(display_id or "", content)

    def update_display(self, display_id: str, content: dict[str, Any]) -> bool:
        """Give every output shown with ``display_id`` the message's data and metadata.

        Returns whether any output changed. A pending ``clear_output(wait=True)`` stays
        pending: an update is not a new output.
        """
        indexes = self._display_index.get(display_id, [])
        for index in indexes:
            old = self._outputs[index]
            new = dict(old)
            new["data"] = content.get("data", {})
            new["metadata"] = content.get("metadata", {})
            if self.offload is not None:
                new = self.offload(index, new)
            self._outputs[index] = new
            self._emit(OutputChange("replace", index, new))
        return bool(indexes)

    @property
    def shows_display_ids(self) -> bool:
        """Whether some output here carries a display id (a later update may change it)."""
        return bool(self._display_index)


def message_to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """Convert one IOPub output message to an nbformat v4 output dict, or None."""
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": content.get("name", "stdout"),
            "text": content.get("text", ""),
        }
    if msg_type == "display_data":
        return {
            "output_type": "display_data",
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
        }
    if msg_type == "execute_result":
        return {
            "output_type": "execute_result",
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
            "execution_count": content.get("execution_count"),
        }
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": content.get("traceback", []),
        }
    return None
